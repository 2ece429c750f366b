// /v1/realtime as OpenAI's own SDK sees it: `OpenAIRealtimeWS` from the installed `openai` package,
// its baseURL pointed at earshot over TLS (wss://, a certificate made here), in both protocols:
// today's (the SDK connects with ?model= and speaks `session.update`) and the beta one (its events
// sent through the SDK's send). English test model with random weights: events, their order and
// their fields, not words.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { RealtimeTranscriptionSessionCreateRequest, SessionUpdateEvent } from 'openai/resources/realtime/realtime';
import { resample } from '../../src/audio/resample.ts';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { WorkQueue } from '../../src/engine/work-queue.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { clip, SR, withPauses } from '../streaming/support.ts';
import { isolateHome, modelDir, occupy, startTestServer, until } from './helpers.ts';
import { aLaw, muLaw, openSdk, selfSigned, type SdkClient } from './realtime-sdk-client.ts';
import { pace, s16le } from './stream-client.ts';

const KEY = 'sk-test-realtime';
/** earshot's 16 kHz audio/pcm, beyond the SDK's type (24000 only). */
const PCM16K = 16000 as 24000;
let dir: string;
let cert: string;
let server: RunningServer;

before(async () => {
  isolateHome();
  dir = mkdtempSync(join(tmpdir(), 'earshot-realtime-sdk-'));
  const tls = selfSigned(dir);
  cert = tls.cert;
  server = await startTestServer({ model: modelDir('english'), apiKeys: [KEY], tlsCert: tls.cert, tlsKey: tls.key, streamPartialIntervalMs: 300 });
});
after(async () => {
  await server?.app.close();
  await unloadAll();
  rmSync(dir, { recursive: true, force: true });
});

const open = (opts: { model?: string; headers?: Record<string, string> } = {}, s: RunningServer = server): Promise<SdkClient> => openSdk(s.url, KEY, cert, opts);
const transcriptionSession = (session: unknown): RealtimeTranscriptionSessionCreateRequest => {
  const s = session as RealtimeTranscriptionSessionCreateRequest;
  assert.equal(s.type, 'transcription');
  return s;
};
const update = (c: SdkClient, input: NonNullable<RealtimeTranscriptionSessionCreateRequest['audio']>['input'], eventId?: string): void => {
  const event: SessionUpdateEvent = { type: 'session.update', session: { type: 'transcription', audio: { input: input! } }, ...(eventId ? { event_id: eventId } : {}) };
  c.rt.send(event);
};
const append = (c: SdkClient, bytes: Buffer): void => c.rt.send({ type: 'input_audio_buffer.append', audio: bytes.toString('base64') });
/** The id an event is about: item_id, or the item's own id. */
const itemOf = (e: Record<string, any>): string | undefined => e.item_id ?? e.item?.id;

test('GA over wss (?model=, 24 kHz audio/pcm, server_vad): session events, per item started < deltas < stopped < committed < added < done < completed with usage', async () => {
  assert.match(server.url, /^https:/);
  const joined = await withPauses(['goforward', 'harvard_spk1_snt1'], 1);
  const c = await open();
  assert.match(c.rt.url.toString(), /^wss:\/\/127\.0\.0\.1:\d+\/v1\/realtime\?model=whisper-1$/);
  const created = await c.next('session.created');
  const cs = transcriptionSession(created.session);
  assert.deepEqual(cs.audio?.input?.format, { type: 'audio/pcm', rate: 24000 });
  assert.equal(cs.audio?.input?.transcription?.model, 'whisper-1', 'a model the server serves, named in the URL, is the transcription model');
  assert.equal(cs.audio?.input?.turn_detection?.type, 'server_vad');
  update(c, {
    format: { type: 'audio/pcm', rate: 24000 },
    transcription: { model: 'whisper-1', language: 'en', prompt: 'go forward' },
    turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 },
    noise_reduction: { type: 'near_field' },
  });
  const input = transcriptionSession((await c.next('session.updated')).session).audio!.input!;
  assert.deepEqual(input.transcription, { model: 'whisper-1', language: 'en', prompt: 'go forward' });
  assert.deepEqual(input.turn_detection, { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 });
  assert.deepEqual(input.noise_reduction, { type: 'near_field' }, 'accepted (and ignored)');

  await pace(resample(joined.samples, SR, 24000), 24000, 1, (x) => append(c, s16le(x)));
  const completed = () => c.of('conversation.item.input_audio_transcription.completed');
  await until(() => c.of('input_audio_buffer.committed').length >= 2 && completed().length === c.of('input_audio_buffer.committed').length, 20000);
  assert.deepEqual(c.errors.map((e) => e.message), []);

  const rank: Record<string, number> = {
    'input_audio_buffer.speech_started': 0,
    'conversation.item.input_audio_transcription.delta': 1,
    'input_audio_buffer.speech_stopped': 2,
    'input_audio_buffer.committed': 3,
    'conversation.item.added': 4,
    'conversation.item.done': 5,
    'conversation.item.input_audio_transcription.completed': 6,
  };
  const byItem = new Map<string, string[]>();
  for (const e of c.events) {
    const item = itemOf(e);
    if (item) byItem.set(item, [...(byItem.get(item) ?? []), e.type]);
  }
  for (const [item, types] of byItem) {
    const once = types.filter((t) => t !== 'conversation.item.input_audio_transcription.delta');
    assert.deepEqual(once, Object.keys(rank).filter((t) => t !== 'conversation.item.input_audio_transcription.delta'), `${item}: ${types.join(' ')}`);
    for (let i = 1; i < types.length; i++) assert.ok(rank[types[i - 1]!]! <= rank[types[i]!]!, `${item}: ${types.join(' ')}`);
  }
  // The user item: its id is the committed one, chained through previous_item_id.
  const committed = c.of('input_audio_buffer.committed');
  const added = c.of('conversation.item.added');
  const done = c.of('conversation.item.done');
  assert.equal(committed[0]!.previous_item_id, null);
  for (let i = 0; i < committed.length; i++) {
    for (const e of [added[i]!, done[i]!]) {
      assert.equal(e.item.id, committed[i]!.item_id);
      assert.equal(e.previous_item_id, i === 0 ? null : committed[i - 1]!.item_id);
      assert.deepEqual(e.item.type === 'message' && e.item.role === 'user' && e.item.content.map((p) => p.type), ['input_audio']);
    }
  }
  // usage: the turn's audio, from its start to its end on the stream's time line.
  const started = c.of('input_audio_buffer.speech_started');
  const stopped = c.of('input_audio_buffer.speech_stopped');
  completed().forEach((e, i) => {
    assert.equal(e.content_index, 0);
    assert.equal(typeof e.transcript, 'string');
    assert.equal(e.usage.type, 'duration');
    const seconds = e.usage.type === 'duration' ? e.usage.seconds : NaN;
    assert.ok(Math.abs(seconds - (stopped[i]!.audio_end_ms - started[i]!.audio_start_ms) / 1000) < 0.01, `${seconds} s`);
    const [c0, c1] = joined.clips[i]!;
    assert.ok(seconds > (c1 - c0) / 2 && seconds < c1 - c0 + 1.5, `${seconds} s for a ${c1 - c0} s clip`);
  });
  const deltas = c.of('conversation.item.input_audio_transcription.delta');
  assert.ok(deltas.length > 0, 'deltas while the person speaks');
  for (const d of deltas) assert.ok(byItem.has(d.item_id) && typeof d.delta === 'string' && d.delta !== '');
  // What the deltas said is never taken back: together they begin the item's transcript.
  for (const e of completed()) {
    const said = deltas.filter((d) => d.item_id === e.item_id).map((d) => d.delta).join('');
    assert.ok(e.transcript.startsWith(said), `deltas ${JSON.stringify(said)} vs transcript ${JSON.stringify(e.transcript)}`);
  }
  c.rt.close();
});

test('GA: audio/pcmu with semantic_vad (mapped to server VAD); a ?model= the server does not serve opens a session on its default model', async () => {
  const joined = await withPauses(['goforward'], 1);
  const c = await open({ model: 'gpt-realtime' });
  const cs = transcriptionSession((await c.next('session.created')).session);
  assert.equal(cs.audio?.input?.transcription?.model, server.ctx.host.id);
  update(c, { format: { type: 'audio/pcmu' }, turn_detection: { type: 'semantic_vad', eagerness: 'high' } });
  const input = transcriptionSession((await c.next('session.updated')).session).audio!.input!;
  assert.deepEqual(input.format, { type: 'audio/pcmu' });
  assert.deepEqual(input.turn_detection, { type: 'semantic_vad', eagerness: 'high' });
  await pace(resample(joined.samples, SR, 8000), 8000, 3, (x) => append(c, muLaw(x)));
  await c.next('conversation.item.input_audio_transcription.completed', 15000);
  // The VAD heard the speech where it is: the 8 kHz mu-law bytes were read as such.
  const [c0, c1] = joined.clips[0]!;
  const started = c.of('input_audio_buffer.speech_started');
  const stopped = c.of('input_audio_buffer.speech_stopped');
  assert.equal(started.length, 1, c.events.map((e) => e.type).join(' '));
  assert.ok(started[0]!.audio_start_ms >= c0 * 1000 - 700 && started[0]!.audio_start_ms <= c0 * 1000 + 700, `speech at ${started[0]!.audio_start_ms} ms, clip at ${c0} s`);
  assert.ok(stopped[0]!.audio_end_ms >= c1 * 1000 - 700 && stopped[0]!.audio_end_ms <= c1 * 1000 + 1000, `end at ${stopped[0]!.audio_end_ms} ms, clip ends at ${c1} s`);
  assert.equal(c.of('conversation.item.added').length, 1);
  assert.deepEqual(c.errors.map((e) => e.message), []);
  c.rt.close();
});

test('GA manual turns: audio/pcma and the 16 kHz audio/pcm variant, each commit gets committed, added, done and completed with its duration', async () => {
  const speech = await clip('goforward');
  const c = await open();
  await c.next('session.created');
  update(c, { format: { type: 'audio/pcma' }, turn_detection: null });
  const input = transcriptionSession((await c.next('session.updated')).session).audio!.input!;
  assert.equal(input.turn_detection, null);
  assert.deepEqual(input.format, { type: 'audio/pcma' });
  append(c, aLaw(resample(speech.subarray(0, 1.5 * SR), SR, 8000)));
  c.rt.send({ type: 'input_audio_buffer.commit' });
  const first = await c.next('conversation.item.input_audio_transcription.completed');
  // Resampling holds back a few ms of the 1.5 s until the stream ends.
  assert.ok(first.usage.type === 'duration' && Math.abs(first.usage.seconds - 1.5) < 0.05, JSON.stringify(first.usage));

  update(c, { format: { type: 'audio/pcm', rate: PCM16K } });
  await until(() => c.of('session.updated').length === 2);
  assert.deepEqual(transcriptionSession(c.of('session.updated')[1]!.session).audio!.input!.format, { type: 'audio/pcm', rate: 16000 });
  append(c, s16le(speech.subarray(0, SR)));
  c.rt.send({ type: 'input_audio_buffer.commit' });
  await until(() => c.of('conversation.item.input_audio_transcription.completed').length === 2);
  const second = c.of('conversation.item.input_audio_transcription.completed')[1]!;
  assert.deepEqual(second.usage, { type: 'duration', seconds: 1 });
  const committed = c.of('input_audio_buffer.committed');
  assert.deepEqual(committed.map((e) => e.previous_item_id), [null, committed[0]!.item_id]);
  assert.deepEqual(c.of('conversation.item.done').map((e) => e.item.id), committed.map((e) => e.item_id));
  assert.equal(c.of('input_audio_buffer.speech_started').length, 0, 'no VAD events without turn detection');
  assert.deepEqual(c.errors.map((e) => e.message), []);
  c.rt.close();
});

test('GA errors come as OpenAI error events (the SDK raises them with their fields), and the session goes on', async () => {
  const c = await open();
  await c.next('session.created');
  c.rt.send({ type: 'session.update', event_id: 'e1', session: { type: 'realtime' } });
  update(c, { format: { type: 'audio/pcm', rate: 44100 as 24000 } }, 'e2');
  update(c, { transcription: { model: 'no-such-model' } }, 'e3');
  c.rt.send({ type: 'response.create', event_id: 'e4' });
  c.rt.send({ type: 'input_audio_buffer.commit', event_id: 'e5' });
  append(c, Buffer.alloc(3));
  await until(() => c.errors.length >= 6);
  assert.deepEqual(
    c.errors.map((e) => [e.error?.type, e.error?.code, e.error?.param, e.error?.event_id]),
    [
      ['invalid_request_error', 'invalid_value', 'session.type', 'e1'],
      ['invalid_request_error', 'invalid_value', 'session.audio.input.format.rate', 'e2'],
      ['invalid_request_error', 'model_not_found', 'session.audio.input.transcription.model', 'e3'],
      ['invalid_request_error', 'unknown_event', null, 'e4'],
      ['invalid_request_error', 'input_audio_buffer_commit_empty', null, 'e5'],
      ['invalid_request_error', 'bad_audio_frame', null, null],
    ],
  );
  for (const e of c.errors) assert.ok(typeof e.error?.message === 'string' && e.error.message.length > 0);
  assert.match(c.errors[2]!.error!.message, /whisper-1/, 'the names that work');
  assert.equal(c.of('session.updated').length, 0);
  update(c, { turn_detection: null });
  await c.next('session.updated');
  c.rt.close();
});

test('beta through the SDK: OpenAI-Beta: realtime=v1 opens transcription_session.created; a ?model= session answers a beta update in kind; g711_ulaw; completed has usage, no items', async () => {
  const speech = await clip('goforward');
  const c = await open({ headers: { 'OpenAI-Beta': 'realtime=v1' } });
  const created = await c.nextNamed('transcription_session.created');
  assert.equal(created.session.object, 'realtime.transcription_session');
  assert.equal(created.session.input_audio_format, 'pcm16');
  assert.equal(c.of('session.created').length, 0);
  c.sendRaw({ type: 'transcription_session.update', session: { input_audio_format: 'g711_ulaw', input_audio_transcription: { model: 'whisper-1' }, turn_detection: null } });
  const updated = await c.nextNamed('transcription_session.updated');
  assert.equal(updated.session.input_audio_format, 'g711_ulaw');
  assert.equal(updated.session.turn_detection, null);
  append(c, muLaw(resample(speech.subarray(0, SR), SR, 8000)));
  c.rt.send({ type: 'input_audio_buffer.commit' });
  const done = await c.next('conversation.item.input_audio_transcription.completed');
  assert.equal((await c.next('input_audio_buffer.committed')).item_id, done.item_id);
  assert.ok(done.usage.type === 'duration' && Math.abs(done.usage.seconds - 1) < 0.05, JSON.stringify(done.usage));
  assert.equal(c.of('conversation.item.added').length, 0, 'the beta protocol has no conversation items');
  c.rt.close();

  const m = await open();
  await m.next('session.created');
  m.sendRaw({ type: 'transcription_session.update', session: { input_audio_format: 'pcm16_16khz' } });
  assert.equal((await m.nextNamed('transcription_session.updated')).session.input_audio_format, 'pcm16_16khz');
  assert.deepEqual(m.errors.map((e) => e.message), []);
  m.rt.close();
});

test('a turn whose transcription fails gets …transcription.failed (no completed), and the next turn completes', async () => {
  const speech = await clip('goforward');
  const c = await open();
  await c.next('session.created');
  update(c, { format: { type: 'audio/pcm', rate: PCM16K }, turn_detection: null });
  await c.next('session.updated');
  append(c, s16le(speech.subarray(0, SR)));
  await until(() => server.ctx.host.ready().queue.stats().running === 0);
  // The model is busy with work of the test's own and its queue is full: the final cannot run.
  const hold = fill(server.ctx.host.ready().queue);
  c.rt.send({ type: 'input_audio_buffer.commit' });
  const failed = await c.next('conversation.item.input_audio_transcription.failed', 30000);
  hold.release();
  await hold.done;
  assert.equal(failed.item_id, (await c.next('input_audio_buffer.committed')).item_id);
  assert.equal(failed.content_index, 0);
  assert.equal(failed.error.type, 'rate_limit_error');
  assert.equal(failed.error.code, 'queue_full');
  assert.ok(failed.error.message);
  assert.equal(c.of('conversation.item.input_audio_transcription.completed').length, 0);
  assert.equal(c.errors.length, 0, 'a failed transcription is not an error event');
  append(c, s16le(speech.subarray(0, SR)));
  c.rt.send({ type: 'input_audio_buffer.commit' });
  const ok = await c.next('conversation.item.input_audio_transcription.completed', 15000);
  assert.notEqual(ok.item_id, failed.item_id);
  c.rt.close();
});

/** Every running slot and every waiting place of `queue` taken by jobs of the test's own, until `release()`. */
function fill(queue: WorkQueue<unknown>): { release: () => void; done: Promise<void> } {
  const running = occupy(queue);
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const waiting = Array.from({ length: queue.maxWaiting }, () => queue.run(() => gate));
  assert.ok(queue.full);
  return {
    release: () => {
      running.release();
      open();
    },
    done: Promise.all([running.done, ...waiting]).then(() => {}),
  };
}
