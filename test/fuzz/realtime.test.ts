// Fuzzing the Realtime API's client events: the JSON parser every WebSocket message goes through
// (parseClientJson, 10^4 inputs), then whole /v1/realtime sessions over a real socket fed random
// JSON, random text, random bytes and valid events (session updates of both protocols, audio appends, commits,
// clears) damaged by the shared mutator. The server must only ever answer with its documented
// events, refusals being `error` events of the client's kind (never a server_error), and the
// session must stay open and keep answering in order.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import WebSocket from 'ws';
import { isEarshotError } from '../../src/errors.ts';
import { parseClientJson } from '../../src/server/routes/stream-common.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { isolateHome, modelDir, startTestServer } from '../server/helpers.ts';
import { fuzzParams, mutated } from './support.ts';

const SERVER_EVENTS = new Set([
  'error',
  'transcription_session.created',
  'transcription_session.updated',
  'input_audio_buffer.speech_started',
  'input_audio_buffer.speech_stopped',
  'input_audio_buffer.committed',
  'input_audio_buffer.cleared',
  'conversation.item.input_audio_transcription.delta',
  'conversation.item.input_audio_transcription.completed',
  'conversation.item.input_audio_transcription.failed',
  // Today's (GA) protocol, once a session.update has been sent.
  'session.updated',
  'conversation.item.added',
  'conversation.item.done',
]);

const deep = fc.integer({ min: 1, max: 400 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`);
const deepObject = fc.integer({ min: 1, max: 200 }).map((n) => `{"type":"x","a":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`);

test('parseClientJson: an object with a string type, or a typed invalid_argument error', () => {
  fc.assert(
    fc.property(fc.oneof(fc.json(), fc.string(), deep, deepObject, fc.json().map((j) => `{"type":"t","v":${j}}`)), (text) => {
      try {
        const v = parseClientJson(text);
        assert.equal(typeof v.type, 'string');
        assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v));
      } catch (e) {
        assert.ok(isEarshotError(e), `untyped ${(e as Error)?.stack ?? e}`);
        assert.equal(e.kind, 'invalid_argument');
      }
    }),
    fuzzParams(),
  );
});

let server: RunningServer;
before(async () => {
  isolateHome();
  server = await startTestServer({ model: modelDir('english'), sampleLen: 2, streamMaxMessageBytes: 4096 });
});
after(async () => server.app.close());

const pcm = Buffer.from(Int16Array.from({ length: 240 }, (_, i) => Math.round(8000 * Math.sin(i / 3))).buffer).toString('base64');
const validEvents = fc.constantFrom<object>(
  { type: 'transcription_session.update', session: { input_audio_format: 'pcm16_16khz' } },
  { type: 'transcription_session.update', session: { turn_detection: null } },
  { type: 'transcription_session.update', session: { turn_detection: { type: 'server_vad', threshold: 0.5, silence_duration_ms: 200 } } },
  { type: 'transcription_session.update', session: { input_audio_transcription: { model: 'whisper-1', language: 'en', prompt: 'hi' } } },
  { type: 'session.update', session: { type: 'transcription', audio: { input: { format: { type: 'audio/pcmu' } } } } },
  { type: 'session.update', session: { type: 'transcription', audio: { input: { format: { type: 'audio/pcm', rate: 16000 }, turn_detection: null } } } },
  { type: 'session.update', session: { type: 'transcription', audio: { input: { turn_detection: { type: 'semantic_vad', eagerness: 'high' }, noise_reduction: null } } } },
  { type: 'session.update', session: { type: 'transcription', audio: { input: { transcription: { model: 'whisper-1', language: 'en' } } } } },
  { type: 'input_audio_buffer.append', audio: pcm },
  { type: 'input_audio_buffer.append', audio: pcm, event_id: 'e1' },
  { type: 'input_audio_buffer.commit' },
  { type: 'input_audio_buffer.clear' },
);
const message: fc.Arbitrary<{ data: string | Buffer; binary: boolean }> = fc.oneof(
  { weight: 2, arbitrary: fc.json().map((data) => ({ data, binary: false })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 80 }).map((data) => ({ data, binary: false })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => ({ data: Buffer.from(b), binary: true })) },
  { weight: 2, arbitrary: validEvents.map((e) => ({ data: JSON.stringify(e), binary: false })) },
  {
    weight: 4,
    arbitrary: validEvents.chain((e) => mutated(Buffer.from(JSON.stringify(e)), 3)).map((b) => ({ data: Buffer.from(b).toString('utf8'), binary: false })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ type: fc.constantFrom('transcription_session.update', 'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear'), extra: fc.object({ maxDepth: 3 }) })
      .map(({ type, extra }) => ({ data: JSON.stringify({ ...extra, type, session: extra }), binary: false })),
  },
  { weight: 1, arbitrary: fc.constant({ data: 'x'.repeat(5000), binary: false }) },
);

interface ServerEvent {
  type: string;
  error?: { type: string; code: string; event_id: string | null };
}

/** Sends `messages` on one session, then a sentinel, and returns every event up to the sentinel's answer. */
function session(messages: Array<{ data: string | Buffer; binary: boolean }>): Promise<{ events: ServerEvent[]; closed: number | undefined }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/realtime?intent=transcription`);
    const events: ServerEvent[] = [];
    let closed: number | undefined;
    const timer = setTimeout(() => (ws.terminate(), reject(new Error(`no answer to the sentinel; events: ${JSON.stringify(events.slice(-5))}`))), 10_000);
    ws.on('message', (raw) => {
      const e = JSON.parse(String(raw)) as ServerEvent;
      events.push(e);
      if (e.type === 'error' && e.error?.event_id === 'sentinel') {
        clearTimeout(timer);
        ws.close(1000);
      }
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      if (closed === undefined) closed = code;
      resolve({ events, closed });
    });
    ws.on('error', reject);
    ws.on('open', () => {
      for (const m of messages) ws.send(m.data, { binary: m.binary });
      ws.send(JSON.stringify({ type: 'earshot.fuzz.sentinel', event_id: 'sentinel' }));
    });
  });
}

test('/v1/realtime: fuzzed client events only ever get documented events and client-kind errors; the session stays usable', { timeout: 240_000 }, async () => {
  let errors = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 20 }), async (messages) => {
      const { events, closed } = await session(messages);
      assert.equal(events[0]?.type, 'transcription_session.created');
      // Turns finished by a settings change may still complete after it: the sentinel need not be last.
      assert.ok(events.some((e) => e.error?.event_id === 'sentinel'), 'the session answered the sentinel');
      assert.equal(closed, 1000, 'closed by the client, not by the server');
      for (const e of events) {
        assert.ok(SERVER_EVENTS.has(e.type), `unexpected event ${e.type}`);
        if (e.type === 'error') {
          errors++;
          assert.notEqual(e.error?.type, 'server_error', JSON.stringify(e));
          assert.notEqual(e.error?.code, 'internal_error', JSON.stringify(e));
        }
      }
    }),
    // One session per run, up to 20 messages each: 10^4 messages in CI.
    fuzzParams(1 / 20),
  );
  assert.ok(errors > 0);
});
