// One /v1/realtime connection, whichever protocol it speaks: the client's events (an update in
// either dialect, input_audio_buffer.append / .commit / .clear) drive a StreamSession, and the
// session's events go back as OpenAI's server events. The dialect of the latest update (or of the
// connection, before any) names the session events and adds GA's user items; the turn events are
// the same in both. A settings change after audio finishes the turns in progress and starts a new
// stream session for what follows, on the same time line.
import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import { EarshotError } from '../../errors.ts';
import type { StreamEvent, StreamSession } from '../../streaming/stream-session.ts';
import type { ServerContext } from '../context.ts';
import { toHttpError } from '../http-errors.ts';
import { clientFault, CLOSE_TRY_AGAIN, messageBytes, openSession, openStream, parseClientJson, sendJson } from '../routes/stream-common.ts';
import { betaDialect } from './beta-protocol.ts';
import { gaDialect, userAudioItem } from './ga-protocol.ts';
import { InputAudio } from './input-audio.ts';
import type { Dialect } from './protocol.ts';
import { eventIdField, parseEvent } from './protocol.ts';
import { applyPatch, defaultSettings, sessionOptions, type RealtimeSettings } from './settings.ts';

const DIALECTS = new Map<string, Dialect>([betaDialect, gaDialect].map((d) => [d.updateType, d]));
const SR = 16000;

const appendSchema = z.object({ type: z.literal('input_audio_buffer.append'), event_id: eventIdField, audio: z.string() });

const id = (prefix: string): string => `${prefix}_${randomBytes(10).toString('hex')}`;

/** Refuses a connection: `e` as an error event, then close `code`. */
export function refuseRealtime(socket: WebSocket, e: EarshotError, code: number, reason: string): void {
  const { type, code: errorCode, message, param } = toHttpError(e).body.error;
  sendJson(socket, { event_id: id('event'), type: 'error', error: { type, code: errorCode, message, param, event_id: null } });
  socket.close(code, reason);
}

/** Serves one accepted /v1/realtime socket; `model` is the transcription model it starts with. */
export function serveRealtime(ctx: ServerContext, socket: WebSocket, log: FastifyBaseLogger, opening: { dialect: Dialect; model: string }): void {
  const sessionId = id('sess');
  let dialect = opening.dialect;
  const send = (type: string, fields: object = {}): void => sendJson(socket, { event_id: id('event'), type, ...fields });
  /** OpenAI's error body (type, code, message, param) of `e`; internal details stay in the log. */
  const errorBody = (e: unknown, param: string | null = null): { type: string; code: string; message: string; param: string | null } => {
    const { type, code, message, param: own } = toHttpError(e).body.error;
    return { type, code, message, param: param ?? own };
  };
  const sendError = (e: unknown, clientEventId: string | null = null, param: string | null = null): void =>
    send('error', { error: { ...errorBody(e, param), event_id: clientEventId } });

  let session: StreamSession | undefined;
  let input: InputAudio | undefined;
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
          if (input) session.push(input.end());
          await session.end();
        }
        await Promise.all(ending);
      } catch (e) {
        log[clientFault(e) ? 'info' : 'error']({ err: e }, 'realtime end failed');
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

  const baseSilenceMs = ctx.config.streamSilenceMs;
  let settings: RealtimeSettings = defaultSettings(opening.model, baseSilenceMs);
  /** Seconds of audio before the current stream session (settings changed mid-stream start a new one). */
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
    /** Items whose audio has ended: an error about one of them is its transcription's failure. */
    const stopped = new Set<number>();
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
          stopped.add(e.item);
          if (!manual) send('input_audio_buffer.speech_stopped', { audio_end_ms: ms(e.end), item_id: item });
          send('input_audio_buffer.committed', { previous_item_id: previousItemId, item_id: item });
          if (dialect.itemEvents) {
            send('conversation.item.added', { previous_item_id: previousItemId, item: userAudioItem(item) });
            send('conversation.item.done', { previous_item_id: previousItemId, item: userAudioItem(item) });
          }
          previousItemId = item;
          break;
        }
        case 'final':
          if (ctx.config.logContent) log.info({ text: e.text }, 'realtime transcript');
          send('conversation.item.input_audio_transcription.completed', {
            item_id: itemId(e.item),
            content_index: 0,
            transcript: e.text,
            usage: { type: 'duration', seconds: Math.round((e.end - e.start) * 1000) / 1000 },
          });
          break;
        case 'error':
          log[clientFault(e.error) ? 'info' : 'error']({ err: e.error, generation: gen }, 'realtime stream error');
          if (e.item !== null && stopped.has(e.item)) {
            const { type, code, message, param } = errorBody(e.error);
            send('conversation.item.input_audio_transcription.failed', { item_id: itemId(e.item), content_index: 0, error: { type, code, message, param } });
          } else sendError(e.error);
          break;
      }
    };
    ctx.host.ready();
    const s = await openSession(ctx, settings.model, emit, sessionOptions(settings));
    input = new InputAudio(settings.format);
    return s;
  };

  const update = async (d: Dialect, msg: Record<string, unknown>, eventId: string | null): Promise<void> => {
    const next = applyPatch(settings, d.parseUpdate(msg), baseSilenceMs);
    try {
      ctx.host.get(next.model); // model_not_found, with the names that work
    } catch (e) {
      return sendError(e, eventId, d.modelParam);
    }
    const previous = settings;
    settings = next;
    // New settings take effect from the next audio: the current session's turns are finished first.
    const old = session;
    try {
      if (old && old.samplesReceived > 0) {
        offsetS += old.samplesReceived / SR;
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
      settings = previous;
      return sendError(e, eventId, 'session');
    }
    dialect = d;
    send(d.updatedType, { session: d.sessionObject(sessionId, settings) });
  };

  const handle = async (data: Buffer, isBinary: boolean): Promise<void> => {
    if (data.length > ctx.config.streamMaxMessageBytes) {
      throw new EarshotError('payload_too_large', 'message_too_large', `a message may be at most ${ctx.config.streamMaxMessageBytes} bytes`);
    }
    if (isBinary) throw new EarshotError('invalid_argument', 'binary_not_supported', 'send JSON events (audio goes base64 in input_audio_buffer.append)');
    const msg = parseClientJson(data.toString('utf8'));
    const eventId = typeof msg.event_id === 'string' ? msg.event_id.slice(0, 256) : null;
    try {
      const d = DIALECTS.get(msg.type);
      if (d) return await update(d, msg, eventId);
      switch (msg.type) {
        case 'input_audio_buffer.append': {
          let audio: string;
          try {
            audio = parseEvent(appendSchema, msg).audio;
          } catch {
            throw new EarshotError('invalid_argument', 'invalid_value', 'input_audio_buffer.append needs "audio": base64 audio in the session\'s format', { param: 'audio' });
          }
          session ??= await start();
          session.push(input!.push(audio));
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
        log[clientFault(e) ? 'info' : 'error']({ err: e }, 'realtime event refused');
        sendError(e);
      }),
    );
  });
  send(dialect.createdType, { session: dialect.sessionObject(sessionId, settings) });
}
