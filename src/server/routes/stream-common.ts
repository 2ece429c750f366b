// What the two streaming WebSocket endpoints (/v1/realtime, /v1/stream) share: the API key of a
// browser (which cannot set an Authorization header on a WebSocket), admission against
// `maxStreams`, careful parsing of client JSON, the per-stream metrics hooks, building a
// StreamSession from the server's settings, and the bounds on a stream's life: the idle timeout
// (no audio for --stream-idle-timeout: close 1008), the frame cap (ws closes 1009), and the
// graceful end on shutdown (each open stream gets the final of the audio it has, its end event and
// close 1001, within --shutdown-timeout).
import type { WebsocketPluginOptions } from '@fastify/websocket';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { EarshotError, isEarshotError } from '../../errors.ts';
import { StreamSession, type StreamEvent, type StreamSessionOptions } from '../../streaming/stream-session.ts';
import { loadSileroVad } from '../../vad/silero.ts';
import type { ServerContext } from '../context.ts';

/** Browsers put the key in a subprotocol, as OpenAI's own browser clients do. */
export const KEY_PROTOCOL_PREFIX = 'openai-insecure-api-key.';
/** Deepest JSON a client message may nest. */
const MAX_JSON_DEPTH = 16;
/** WebSocket close codes. */
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_POLICY = 1008;
export const CLOSE_TRY_AGAIN = 1013;

export const STREAM_PATHS = new Set(['/v1/realtime', '/v1/stream']);

/**
 * The `Authorization` value a streaming upgrade carries in place of the header: `?api_key=<key>`,
 * or a `openai-insecure-api-key.<key>` subprotocol. Undefined for anything else.
 */
export function streamAuthorization(request: FastifyRequest): string | undefined {
  if (!STREAM_PATHS.has(request.url.split('?')[0]!)) return undefined;
  const q = request.query as Record<string, unknown> | undefined;
  if (typeof q?.api_key === 'string' && q.api_key !== '') return `Bearer ${q.api_key}`;
  const protocols = String(request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const token = protocols.find((p) => p.startsWith(KEY_PROTOCOL_PREFIX));
  return token ? `Bearer ${token.slice(KEY_PROTOCOL_PREFIX.length)}` : undefined;
}

/** ws `handleProtocols`: answers with a protocol other than the key when the client offered one (browsers need an answer). */
export function chooseProtocol(protocols: Set<string>): string | false {
  const list = [...protocols];
  return list.find((p) => !p.startsWith(KEY_PROTOCOL_PREFIX)) ?? list[0] ?? false;
}

/** An open stream as the server sees it: how to end it early (idle timeout, shutdown). */
export interface OpenStream {
  /**
   * Finalises the audio the stream has, sends its end event, and closes it with `code`; resolves
   * once the close frame is on its way. Calling it again returns the same promise.
   */
  finish(code: number, reason: string): Promise<void>;
  /** Closes with `code` at once, finals or not (a shutdown past its deadline). */
  abandon(code: number, reason: string): void;
}

interface Streams {
  open: Set<OpenStream>;
}
const streams = new WeakMap<ServerContext, Streams>();

function streamsOf(ctx: ServerContext): Streams {
  let s = streams.get(ctx);
  if (!s) streams.set(ctx, (s = { open: new Set() }));
  return s;
}

/** Takes a stream slot; undefined when `maxStreams` are already open. The returned function gives it back (once). */
export function admit(ctx: ServerContext, stream: OpenStream): (() => void) | undefined {
  const { open } = streamsOf(ctx);
  if (open.size >= ctx.config.maxStreams) return undefined;
  open.add(stream);
  ctx.metrics.streamsActive.set(open.size);
  return () => {
    if (!open.delete(stream)) return;
    ctx.metrics.streamsActive.set(open.size);
  };
}

/**
 * Ends every open stream of the server gracefully (final, end event, close 1001), waiting at most
 * `deadlineMs`; streams still finishing then are closed 1001 at once.
 */
export async function finishAllStreams(ctx: ServerContext, deadlineMs: number): Promise<void> {
  const open = [...streamsOf(ctx).open];
  if (open.length === 0) return;
  ctx.metrics.streamCloses.inc({ reason: 'shutdown' }, open.length);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), deadlineMs)));
  const all = Promise.allSettled(open.map((s) => s.finish(CLOSE_GOING_AWAY, 'server shutting down')));
  const late = (await Promise.race([all, deadline])) === 'late';
  clearTimeout(timer);
  if (late) for (const s of open) s.abandon(CLOSE_GOING_AWAY, 'server shutting down');
}

/**
 * The stream's idle timeout: `onIdle` runs once when no audio has come for `ms`. `audio()` marks
 * audio received, `stop()` ends the watch (the stream is ending anyway).
 */
export function idleTimeout(ms: number, onIdle: () => void): { audio(): void; stop(): void } {
  let last = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const arm = (wait: number): void => {
    timer = setTimeout(() => {
      const quiet = performance.now() - last;
      if (quiet >= ms) {
        timer = undefined;
        onIdle();
      } else arm(ms - quiet);
    }, wait);
    timer.unref();
  };
  arm(ms);
  return {
    audio: () => {
      last = performance.now();
    },
    stop: () => {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

/**
 * The opening both stream routes share: a slot among --max-streams (refused: an error event and
 * close 1013, and undefined here), the idle watch (no audio for --stream-idle-timeout: an error
 * event, then `finish` with 1008), and both let go when the socket closes (after `onClose`).
 */
export function openStream(
  ctx: ServerContext,
  socket: WebSocket,
  on: { sendError(e: unknown): void; finish(code: number, reason: string): Promise<void>; onClose(): void },
): { audio(): void; stop(): void } | undefined {
  const release = admit(ctx, {
    finish: on.finish,
    abandon: (code, reason) => {
      if (socket.readyState === socket.OPEN) socket.close(code, reason);
    },
  });
  if (!release) {
    on.sendError(tooManyStreams(ctx.config.maxStreams));
    socket.close(CLOSE_TRY_AGAIN, 'too many streams');
    return undefined;
  }
  const idleS = ctx.config.streamIdleTimeoutS;
  const idle = idleTimeout(idleS * 1000, () => {
    ctx.metrics.streamCloses.inc({ reason: 'idle_timeout' });
    on.sendError(idleError(idleS));
    void on.finish(CLOSE_POLICY, `no audio for ${idleS} s`);
  });
  socket.on('close', () => {
    idle.stop();
    on.onClose();
    release();
  });
  return idle;
}

export function idleError(seconds: number): EarshotError {
  return new EarshotError('invalid_argument', 'idle_timeout', `no audio for ${seconds} s: the stream is closed (send audio, even silence, to keep it open)`);
}

/**
 * The WebSocket plugin's options: the frame cap, the subprotocol answer, what a socket error
 * does, and the graceful end of the streams when the app closes.
 */
export function websocketOptions(ctx: ServerContext): WebsocketPluginOptions {
  const { config, metrics } = ctx;
  const shutdownS = config.shutdownTimeoutS;
  return {
    // ws closes (1009) beyond 4x the message cap; up to that, an oversized message gets an error event.
    options: { maxPayload: 4 * config.streamMaxMessageBytes, handleProtocols: chooseProtocol },
    errorHandler(error, socket, request) {
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('WS_ERR_')) {
        // A protocol error of the client's (a frame over maxPayload, a bad opcode…): ws has already
        // queued the close frame with its code (1009, 1002…) and ends the socket once it is out.
        // Terminating here would reset the connection before the client reads it (it saw 1006).
        if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') metrics.streamCloses.inc({ reason: 'message_too_big' });
        request.log.info({ code, message: error.message }, 'stream closed on a protocol error');
        return;
      }
      request.log.info({ err: error }, 'stream socket error');
      socket.terminate();
    },
    // Leaves a little of the shutdown deadline for the close handshakes and the exit.
    async preClose(this: FastifyInstance) {
      await finishAllStreams(ctx, Math.max(0, shutdownS * 1000 - Math.min(1000, shutdownS * 100)));
      for (const client of this.websocketServer.clients) {
        if (client.readyState === client.OPEN) client.close(CLOSE_GOING_AWAY, 'server shutting down');
      }
      this.websocketServer.close();
    },
  };
}

export function tooManyStreams(max: number): EarshotError {
  return new EarshotError('overloaded', 'max_streams', `the server already has ${max} open stream(s), its limit; try again later`);
}

/** Whether `text` nests arrays/objects deeper than `max` (strings skipped), without parsing it. */
function tooDeep(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}

/** A client's JSON text message as an object with a string `type`, or a typed error saying what is wrong. */
export function parseClientJson(text: string): { type: string } & Record<string, unknown> {
  if (tooDeep(text, MAX_JSON_DEPTH)) throw new EarshotError('invalid_argument', 'invalid_json', `the message nests deeper than ${MAX_JSON_DEPTH} levels`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new EarshotError('invalid_argument', 'invalid_json', `the message is not valid JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v) || typeof (v as { type?: unknown }).type !== 'string') {
    throw new EarshotError('invalid_argument', 'invalid_event', 'a message must be a JSON object with a string "type"');
  }
  return v as { type: string } & Record<string, unknown>;
}

/** A ws message as text (for JSON) or bytes. */
export function messageBytes(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}

/** A StreamSession over the server's model with the server's stream settings, reporting to its metrics. */
export async function openSession(
  ctx: ServerContext,
  model: string | undefined,
  emit: (e: StreamEvent) => void,
  options: StreamSessionOptions,
): Promise<StreamSession> {
  const { config, metrics } = ctx;
  const vad = await loadSileroVad();
  // The stream holds the model it names for as long as it is open, so an idle unload or a hot
  // swap never takes it away mid-stream; closing the session lets go.
  const lease = await ctx.host.lease(model);
  try {
    return new StreamSession(lease.whisper, vad, emit, {
      silenceMs: config.streamSilenceMs,
      partialIntervalMs: config.streamPartialIntervalMs,
      sampleLen: config.sampleLen,
      ...options,
      observer: {
        finalLatency: (s) => metrics.streamFinalLatency.observe(s),
        partialInterval: (s) => metrics.streamPartialInterval.observe(s),
        partialDropped: () => metrics.streamPartialsDropped.inc(),
      },
      onClose: () => lease.release(),
    });
  } catch (e) {
    lease.release();
    throw e;
  }
}

/** Sends when the socket is still open (a client may vanish at any moment). */
export function sendJson(socket: WebSocket, event: object): void {
  if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(event));
}

/** Whether an error is the client's (logged at info) rather than ours. */
export function clientFault(e: unknown): boolean {
  return isEarshotError(e) && e.kind !== 'internal';
}
