// GET /v1/stream (WebSocket): earshot's minimal native streaming protocol. The client sends
// `{"type":"start","format":"s16le"|"f32le","sample_rate":N,"language"?,"prompt"?,"partial_interval_ms"?}`,
// then binary frames of mono audio, then `{"type":"end"}`. The server answers `{"type":"ready"}`,
// then `{"type":"partial","text","committed","tentative"}` while someone speaks and
// `{"type":"final","text","start","end","segments"}` at each end of speech, and after "end" the
// last final, `{"type":"done"}` and close 1000. Problems are `{"type":"error","code","message"}`.
// The server ends a stream the same way (last final, done) with close 1008 after
// --stream-idle-timeout without audio, and with close 1001 when it shuts down.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import { StreamResampler } from '../../audio/resample.ts';
import { EarshotError, isEarshotError } from '../../errors.ts';
import type { StreamEvent } from '../../streaming/stream-session.ts';
import type { StreamSession } from '../../streaming/stream-session.ts';
import type { ServerContext } from '../context.ts';
import {
  clientFault,
  CLOSE_NORMAL,
  CLOSE_TRY_AGAIN,
  messageBytes,
  openSession,
  openStream,
  parseClientJson,
  sendJson,
} from './stream-common.ts';

const startSchema = z.object({
  type: z.literal('start'),
  format: z.enum(['s16le', 'f32le']),
  sample_rate: z.number().int().min(8000).max(192000),
  language: z.string().max(64).optional(),
  prompt: z.string().max(4000).optional(),
  partial_interval_ms: z.number().int().min(100).max(60000).optional(),
});

function errorEvent(e: unknown): { type: 'error'; code: string; message: string } {
  if (isEarshotError(e)) return { type: 'error', code: e.code, message: e.message };
  return { type: 'error', code: 'internal_error', message: 'internal server error' };
}

/** Mono samples from one binary frame. */
function samplesOf(bytes: Buffer, format: 's16le' | 'f32le'): Float32Array {
  const width = format === 's16le' ? 2 : 4;
  if (bytes.length % width !== 0) {
    throw new EarshotError('invalid_audio', 'bad_audio_frame', `a ${format} frame must be a multiple of ${width} bytes, got ${bytes.length}`);
  }
  const copy = new Uint8Array(bytes).buffer; // aligned
  if (format === 'f32le') return new Float32Array(copy);
  const pcm = new Int16Array(copy);
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i]! / 32768;
  return out;
}

export function streamRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/stream', { websocket: true }, (socket: WebSocket, request: FastifyRequest) => {
    let session: StreamSession | undefined;
    let format: 's16le' | 'f32le' = 's16le';
    let resampler: StreamResampler | undefined;
    let state: 'new' | 'started' | 'ending' = 'new';
    /** Messages are handled one after another, in order (starting a session is async). */
    let chain: Promise<void> = Promise.resolve();
    /** Set once the server ends the stream (idle timeout, shutdown): later messages are ignored. */
    let finishing: Promise<void> | undefined;

    /** The end of the audio: its last final, then done (the same as the client's "end"). */
    const endAudio = async (): Promise<void> => {
      state = 'ending';
      idle?.stop();
      if (session) {
        if (resampler) session.push(resampler.end());
        await session.end();
      }
      sendJson(socket, { type: 'done' });
    };
    const finish = (code: number, reason: string): Promise<void> =>
      (finishing ??= chain = chain.then(async () => {
        try {
          if (state === 'started') await endAudio();
        } catch (e) {
          request.log[clientFault(e) ? 'info' : 'error']({ err: e }, 'stream end failed');
          sendJson(socket, errorEvent(e));
        }
        if (socket.readyState === socket.OPEN) socket.close(code, reason);
      }));
    const idle = openStream(ctx, socket, { sendError: (e) => sendJson(socket, errorEvent(e)), finish, onClose: () => session?.close() });
    if (!idle) return;

    const emit = (e: StreamEvent): void => {
      if (e.type === 'partial') sendJson(socket, { type: 'partial', text: e.committed + e.tentative, committed: e.committed, tentative: e.tentative });
      else if (e.type === 'final') {
        if (ctx.config.logContent) request.log.info({ text: e.text }, 'stream final');
        sendJson(socket, { type: 'final', text: e.text, start: e.start, end: e.end, segments: e.segments });
      } else if (e.type === 'error') {
        request.log[clientFault(e.error) ? 'info' : 'error']({ err: e.error }, 'stream error');
        sendJson(socket, errorEvent(e.error));
      }
    };

    const handle = async (data: Buffer, isBinary: boolean): Promise<void> => {
      if (data.length > ctx.config.streamMaxMessageBytes) {
        throw new EarshotError('payload_too_large', 'message_too_large', `a message may be at most ${ctx.config.streamMaxMessageBytes} bytes`);
      }
      if (isBinary) {
        if (state !== 'started' || !session) throw new EarshotError('invalid_argument', 'not_started', 'send {"type":"start", …} before audio, and no audio after "end"');
        let samples = samplesOf(data, format);
        if (resampler) samples = resampler.push(samples);
        session.push(samples);
        idle.audio();
        return;
      }
      const msg = parseClientJson(data.toString('utf8'));
      if (msg.type === 'start') {
        if (state !== 'new') throw new EarshotError('invalid_argument', 'already_started', 'the stream has already started');
        const parsed = startSchema.safeParse(msg);
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          throw new EarshotError('invalid_argument', 'bad_start', `bad start message: ${issue.path.join('.') || 'message'}: ${issue.message}`);
        }
        const s = parsed.data;
        ctx.host.ready(); // a clear not_ready error (and close 1013) while the model loads
        session = await openSession(ctx, undefined, emit, {
          ...(s.language !== undefined ? { language: s.language } : {}),
          ...(s.prompt !== undefined ? { prompt: s.prompt } : {}),
          ...(s.partial_interval_ms !== undefined ? { partialIntervalMs: s.partial_interval_ms } : {}),
        });
        format = s.format;
        resampler = s.sample_rate === 16000 ? undefined : new StreamResampler(s.sample_rate, 16000);
        state = 'started';
        request.log.info({ format, sampleRate: s.sample_rate }, 'stream started');
        sendJson(socket, { type: 'ready' });
      } else if (msg.type === 'end') {
        if (state !== 'started' || !session) throw new EarshotError('invalid_argument', 'not_started', 'the stream has not started');
        await endAudio();
        socket.close(CLOSE_NORMAL);
      } else {
        throw new EarshotError('invalid_argument', 'unknown_message', `unknown message type "${msg.type.slice(0, 64)}": expected "start" or "end"`);
      }
    };

    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (finishing) return;
      const bytes = messageBytes(data);
      chain = chain.then(() =>
        handle(bytes, isBinary).catch((e: unknown) => {
          request.log[clientFault(e) ? 'info' : 'error']({ err: e }, 'stream message refused');
          sendJson(socket, errorEvent(e));
          if (isEarshotError(e) && e.kind === 'not_ready') socket.close(CLOSE_TRY_AGAIN, 'model not ready');
        }),
      );
    });
  });
}
