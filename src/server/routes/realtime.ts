// GET /v1/realtime?intent=transcription (WebSocket): OpenAI's Realtime API transcription session.
// Client events: transcription_session.update, input_audio_buffer.append / .commit / .clear.
// Server events: transcription_session.created / .updated, input_audio_buffer.speech_started /
// .speech_stopped / .committed / .cleared, conversation.item.input_audio_transcription.delta (the
// stable, committed part of the partial hypothesis, while the person is still speaking) and
// .completed (the final of each turn), and error. Audio is base64 pcm16: 24 kHz mono for
// "pcm16" (OpenAI's format), 16 kHz for earshot's "pcm16_16khz". The server closes a session
// with 1008 after --stream-idle-timeout without audio, and with 1001 when it shuts down; either
// way the turn in progress is finished first (its .completed event).
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import { StreamResampler } from '../../audio/resample.ts';
import { EarshotError } from '../../errors.ts';
import type { StreamEvent, StreamSession } from '../../streaming/stream-session.ts';
import type { ServerContext } from '../context.ts';
import { toHttpError } from '../http-errors.ts';
import {
  clientFault,
  CLOSE_POLICY,
  CLOSE_TRY_AGAIN,
  messageBytes,
  openSession,
  openStream,
  parseClientJson,
  sendJson,
} from './stream-common.ts';

const FORMAT_RATES = { pcm16: 24000, pcm16_16khz: 16000 } as const;
type AudioFormat = keyof typeof FORMAT_RATES;

const id = (prefix: string): string => `${prefix}_${randomBytes(10).toString('hex')}`;

const turnDetectionSchema = z
  .object({
    type: z.literal('server_vad'),
    threshold: z.number().gt(0).max(1).optional(),
    prefix_padding_ms: z.number().int().min(0).max(2000).optional(),
    silence_duration_ms: z.number().int().min(100).max(10000).optional(),
  })
  .nullable();

const updateSchema = z.object({
  type: z.literal('transcription_session.update'),
  event_id: z.string().max(256).optional(),
  session: z.object({
    input_audio_format: z.enum(['pcm16', 'pcm16_16khz']).optional(),
    input_audio_transcription: z
      .object({
        model: z.string().max(256).optional(),
        language: z.string().max(64).nullable().optional(),
        prompt: z.string().max(4000).nullable().optional(),
      })
      .nullable()
      .optional(),
    turn_detection: turnDetectionSchema.optional(),
  }),
});

const appendSchema = z.object({ type: z.literal('input_audio_buffer.append'), event_id: z.string().max(256).optional(), audio: z.string() });

interface Settings {
  format: AudioFormat;
  model: string;
  language: string | null;
  prompt: string;
  turnDetection: { threshold: number; prefixPaddingMs: number; silenceMs: number } | null;
}

export function realtimeRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/realtime', { websocket: true }, (socket: WebSocket, request: FastifyRequest) => {
    const sessionId = id('sess');
    const send = (type: string, fields: object = {}): void => sendJson(socket, { event_id: id('event'), type, ...fields });
    // The HTTP error body's type, code and message (internal details stay in the log), as an event.
    const sendError = (e: unknown, clientEventId: string | null = null, param: string | null = null): void => {
      const { type, code, message } = toHttpError(e).body.error;
      send('error', { error: { type, code, message, param, event_id: clientEventId } });
    };

    const intent = (request.query as Record<string, unknown>).intent;
    if (intent !== 'transcription') {
      sendError(new EarshotError('invalid_argument', 'unsupported_intent', 'earshot serves transcription sessions only: connect to /v1/realtime?intent=transcription'), null, 'intent');
      socket.close(CLOSE_POLICY, 'intent=transcription required');
      return;
    }
    let session: StreamSession | undefined;
    let resampler: StreamResampler | undefined;
    let chain: Promise<void> = Promise.resolve();
    /** Sessions replaced by an update, still finishing their turns. */
    const ending = new Set<Promise<void>>();
    /** Set once the server ends the stream (idle timeout, shutdown): later events are ignored. */
    let finishing: Promise<void> | undefined;
    const finish = (code: number, reason: string): Promise<void> =>
      (finishing ??= chain = chain.then(async () => {
        idle?.stop();
        try {
          if (session) {
            if (resampler) session.push(resampler.end());
            await session.end();
          }
          await Promise.all(ending);
        } catch (e) {
          request.log[clientFault(e) ? 'info' : 'error']({ err: e }, 'realtime end failed');
          sendError(e);
        }
        if (socket.readyState === socket.OPEN) socket.close(code, reason);
      }));
    const idle = openStream(ctx, socket, { sendError, finish, onClose: () => session?.close() });
    if (!idle) return;
    try {
      ctx.host.ready();
    } catch (e) {
      sendError(e);
      socket.close(CLOSE_TRY_AGAIN, 'model not ready');
      return;
    }

    const settings: Settings = {
      format: 'pcm16',
      model: ctx.host.id,
      language: null,
      prompt: '',
      turnDetection: { threshold: 0.5, prefixPaddingMs: 300, silenceMs: ctx.config.streamSilenceMs },
    };
    const sessionObject = () => ({
      id: sessionId,
      object: 'realtime.transcription_session',
      input_audio_format: settings.format,
      input_audio_transcription: { model: settings.model, language: settings.language, prompt: settings.prompt },
      turn_detection: settings.turnDetection && {
        type: 'server_vad',
        threshold: settings.turnDetection.threshold,
        prefix_padding_ms: settings.turnDetection.prefixPaddingMs,
        silence_duration_ms: settings.turnDetection.silenceMs,
      },
      input_audio_noise_reduction: null,
      include: null,
      modalities: ['text'],
    });

    /** Seconds of audio before the current session (settings changed mid-stream start a new one). */
    let offsetS = 0;
    let generation = 0;
    let previousItemId: string | null = null;

    const start = async (): Promise<StreamSession> => {
      const gen = ++generation;
      const offset = offsetS;
      const manual = settings.turnDetection === null;
      const itemIds = new Map<number, string>();
      const itemId = (n: number): string => {
        let v = itemIds.get(n);
        if (!v) itemIds.set(n, (v = id('item')));
        return v;
      };
      const ms = (s: number): number => Math.round((offset + s) * 1000);
      const emit = (e: StreamEvent): void => {
        switch (e.type) {
          case 'speech_started':
            if (!manual) send('input_audio_buffer.speech_started', { audio_start_ms: ms(e.start), item_id: itemId(e.item) });
            break;
          case 'partial':
            if (e.delta !== '') send('conversation.item.input_audio_transcription.delta', { item_id: itemId(e.item), content_index: 0, delta: e.delta });
            break;
          case 'speech_stopped': {
            const item = itemId(e.item);
            if (!manual) send('input_audio_buffer.speech_stopped', { audio_end_ms: ms(e.end), item_id: item });
            send('input_audio_buffer.committed', { previous_item_id: previousItemId, item_id: item });
            previousItemId = item;
            break;
          }
          case 'final':
            if (ctx.config.logContent) request.log.info({ text: e.text }, 'realtime transcript');
            send('conversation.item.input_audio_transcription.completed', { item_id: itemId(e.item), content_index: 0, transcript: e.text });
            break;
          case 'error':
            request.log[clientFault(e.error) ? 'info' : 'error']({ err: e.error, generation: gen }, 'realtime stream error');
            sendError(e.error);
            break;
        }
      };
      const t = settings.turnDetection;
      ctx.host.ready();
      const s = await openSession(ctx, settings.model, emit, {
        ...(settings.language ? { language: settings.language } : {}),
        ...(settings.prompt ? { prompt: settings.prompt } : {}),
        vad: t !== null,
        ...(t ? { threshold: t.threshold, prefixPaddingMs: t.prefixPaddingMs, silenceMs: t.silenceMs } : {}),
      });
      resampler = FORMAT_RATES[settings.format] === 16000 ? undefined : new StreamResampler(FORMAT_RATES[settings.format], 16000);
      return s;
    };

    const update = async (msg: Record<string, unknown>, eventId: string | null): Promise<void> => {
      const parsed = updateSchema.safeParse(msg);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const param = issue.path.join('.');
        const e = new EarshotError('invalid_argument', 'invalid_value', `invalid ${param || 'event'}: ${issue.message}`);
        return sendError(e, eventId, param || null);
      }
      const next: Settings = { ...settings };
      const s = parsed.data.session;
      if (s.input_audio_format !== undefined) next.format = s.input_audio_format;
      const tr = s.input_audio_transcription;
      if (tr) {
        if (tr.model !== undefined && tr.model !== '' && !ctx.host.serves(tr.model)) {
          const e = new EarshotError('model_not_found', 'model_not_found', `the model "${tr.model}" does not exist on this server: it serves "${ctx.host.id}"`);
          return sendError(e, eventId, 'session.input_audio_transcription.model');
        }
        if (tr.language !== undefined) next.language = tr.language || null;
        if (tr.prompt !== undefined) next.prompt = tr.prompt ?? '';
        if (tr.model !== undefined && tr.model !== '') next.model = tr.model;
      }
      if (s.turn_detection !== undefined) {
        const t = s.turn_detection;
        const was = settings.turnDetection ?? { threshold: 0.5, prefixPaddingMs: 300, silenceMs: ctx.config.streamSilenceMs };
        next.turnDetection = t && {
          threshold: t.threshold ?? was.threshold,
          prefixPaddingMs: t.prefix_padding_ms ?? was.prefixPaddingMs,
          silenceMs: t.silence_duration_ms ?? was.silenceMs,
        };
      }
      const previous = { ...settings };
      Object.assign(settings, next);
      // New settings take effect from the next audio: the current session's turns are finished first.
      const old = session;
      try {
        if (old && old.samplesReceived > 0) {
          offsetS += old.samplesReceived / 16000;
          const done = old.end().finally(() => {
            old.close();
            ending.delete(done);
          });
          ending.add(done);
        } else {
          old?.close();
        }
        session = await start();
      } catch (e) {
        Object.assign(settings, previous);
        return sendError(e, eventId, 'session');
      }
      send('transcription_session.updated', { session: sessionObject() });
    };

    const handle = async (data: Buffer, isBinary: boolean): Promise<void> => {
      if (data.length > ctx.config.streamMaxMessageBytes) {
        throw new EarshotError('payload_too_large', 'message_too_large', `a message may be at most ${ctx.config.streamMaxMessageBytes} bytes`);
      }
      if (isBinary) throw new EarshotError('invalid_argument', 'binary_not_supported', 'send JSON events (audio goes base64 in input_audio_buffer.append)');
      const msg = parseClientJson(data.toString('utf8'));
      const eventId = typeof msg.event_id === 'string' ? msg.event_id.slice(0, 256) : null;
      try {
        switch (msg.type) {
          case 'transcription_session.update':
            return await update(msg, eventId);
          case 'input_audio_buffer.append': {
            const a = appendSchema.safeParse(msg);
            if (!a.success) throw new EarshotError('invalid_argument', 'invalid_value', 'input_audio_buffer.append needs "audio": base64 pcm16');
            const bytes = Buffer.from(a.data.audio, 'base64');
            if (bytes.length % 2 !== 0) throw new EarshotError('invalid_audio', 'bad_audio_frame', 'pcm16 audio must be a whole number of 2-byte samples');
            const pcm = new Int16Array(new Uint8Array(bytes).buffer);
            let samples: Float32Array = new Float32Array(pcm.length);
            for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i]! / 32768;
            session ??= await start();
            if (resampler) samples = resampler.push(samples);
            session.push(samples);
            idle.audio();
            return;
          }
          case 'input_audio_buffer.commit':
            session ??= await start();
            await session.commit();
            return;
          case 'input_audio_buffer.clear':
            await session?.clear();
            send('input_audio_buffer.cleared');
            return;
          default:
            throw new EarshotError('invalid_argument', 'unknown_event', `unknown or unsupported client event "${msg.type.slice(0, 64)}"`);
        }
      } catch (e) {
        sendError(e, eventId);
      }
    };

    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (finishing) return;
      const bytes = messageBytes(data);
      chain = chain.then(() =>
        handle(bytes, isBinary).catch((e: unknown) => {
          request.log[clientFault(e) ? 'info' : 'error']({ err: e }, 'realtime event refused');
          sendError(e);
        }),
      );
    });
    send('transcription_session.created', { session: sessionObject() });
  });
}
