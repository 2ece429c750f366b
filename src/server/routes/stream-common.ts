// What the two streaming WebSocket endpoints (/v1/realtime, /v1/stream) share: the API key of a
// browser (which cannot set an Authorization header on a WebSocket), admission against
// `maxStreams`, careful parsing of client JSON, the per-stream metrics hooks, and building a
// StreamSession from the server's settings.
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { EarshotError, isEarshotError } from '../../errors.ts';
import { StreamSession, type StreamEvent, type StreamSessionOptions } from '../../streaming/stream-session.ts';
import { loadSileroVad } from '../../streaming/vad.ts';
import type { ServerContext } from '../context.ts';

/** Browsers put the key in a subprotocol, as OpenAI's own browser clients do. */
export const KEY_PROTOCOL_PREFIX = 'openai-insecure-api-key.';
/** Deepest JSON a client message may nest. */
const MAX_JSON_DEPTH = 16;
/** WebSocket close codes. */
export const CLOSE_NORMAL = 1000;
export const CLOSE_POLICY = 1008;
export const CLOSE_TOO_BIG = 1009;
export const CLOSE_SERVER_ERROR = 1011;
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

const active = new WeakMap<ServerContext, { n: number }>();

/** Takes a stream slot; undefined when `maxStreams` are already open. The returned function gives it back (once). */
export function admit(ctx: ServerContext): (() => void) | undefined {
  let a = active.get(ctx);
  if (!a) active.set(ctx, (a = { n: 0 }));
  if (a.n >= ctx.config.maxStreams) return undefined;
  a.n++;
  ctx.metrics.streamsActive.set(a.n);
  let released = false;
  const slot = a;
  return () => {
    if (released) return;
    released = true;
    slot.n--;
    ctx.metrics.streamsActive.set(slot.n);
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
