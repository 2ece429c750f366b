// /v1/realtime?intent=transcription, OpenAI's Realtime transcription events, over a real server
// with an API key (port 0, English test model with random weights: events and their order, not words).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { resample } from '../../src/audio/resample.ts';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { clip, SR, withPauses } from '../streaming/support.ts';
import { isolateHome, modelDir, startTestServer, until } from './helpers.ts';
import { connect, pace, s16le, wsUrl, type Client } from './stream-client.ts';

const KEY = 'test-key-1';
let server: RunningServer;
let url: string;

before(async () => {
  isolateHome();
  server = await startTestServer({ model: modelDir('english'), apiKeys: [KEY], streamPartialIntervalMs: 300 });
  url = wsUrl(server.url, '/v1/realtime?intent=transcription');
});
after(async () => {
  await server.app.close();
  await unloadAll();
});

const auth = { headers: { authorization: `Bearer ${KEY}` } };
const append = (c: Client, x: Float32Array): void => c.ws.send(JSON.stringify({ type: 'input_audio_buffer.append', audio: s16le(x).toString('base64') }));
const ofType = (c: Client, type: string) => c.received.filter((r) => r.msg.type === type);

test('server VAD at 1.5x real time (24 kHz pcm16): per item speech_started < deltas < speech_stopped < committed < completed', async () => {
  const joined = await withPauses(['goforward', 'harvard_spk1_snt1'], 1);
  const audio24 = resample(joined.samples, SR, 24000);
  const c = await connect(url, auth);
  const created = await c.next('transcription_session.created');
  assert.equal(created.session.object, 'realtime.transcription_session');
  assert.equal(created.session.input_audio_format, 'pcm16');
  assert.equal(created.session.turn_detection.type, 'server_vad');
  c.ws.send(JSON.stringify({
    type: 'transcription_session.update',
    session: { input_audio_format: 'pcm16', input_audio_transcription: { model: 'whisper-1', language: 'en' }, turn_detection: { type: 'server_vad', silence_duration_ms: 500 } },
  }));
  const updated = await c.next('transcription_session.updated');
  assert.equal(updated.session.input_audio_transcription.language, 'en');
  assert.equal(updated.session.turn_detection.silence_duration_ms, 500);
  await pace(audio24, 24000, 1.5, (x) => append(c, x));
  const audioDone = performance.now();
  await until(() => ofType(c, 'input_audio_buffer.committed').length >= 2 && ofType(c, 'conversation.item.input_audio_transcription.completed').length === ofType(c, 'input_audio_buffer.committed').length, 15000);
  for (const { msg } of c.received) {
    assert.match(msg.event_id, /^event_/);
    assert.notEqual(msg.type, 'error', JSON.stringify(msg));
  }
  const byItem = new Map<string, string[]>();
  for (const { msg } of c.received) if (msg.item_id) byItem.set(msg.item_id, [...(byItem.get(msg.item_id) ?? []), msg.type]);
  const rank: Record<string, number> = {
    'input_audio_buffer.speech_started': 0,
    'conversation.item.input_audio_transcription.delta': 1,
    'input_audio_buffer.speech_stopped': 2,
    'input_audio_buffer.committed': 3,
    'conversation.item.input_audio_transcription.completed': 4,
  };
  for (const [item, types] of byItem) {
    assert.equal(types[0], 'input_audio_buffer.speech_started', `${item}: ${types.join(' ')}`);
    assert.equal(types.at(-1), 'conversation.item.input_audio_transcription.completed', `${item}: ${types.join(' ')}`);
    for (let i = 1; i < types.length; i++) assert.ok(rank[types[i - 1]!]! <= rank[types[i]!]!, `${item}: ${types.join(' ')}`);
  }
  // Times are on the stream's time line, in ms, and each item lies around a clip.
  for (const { msg } of ofType(c, 'input_audio_buffer.speech_started')) {
    assert.ok(joined.clips.some(([c0, c1]) => msg.audio_start_ms >= c0 * 1000 - 700 && msg.audio_start_ms <= c1 * 1000));
  }
  // committed chains items through previous_item_id.
  const committed = ofType(c, 'input_audio_buffer.committed').map((r) => r.msg);
  assert.equal(committed[0]!.previous_item_id, null);
  for (let i = 1; i < committed.length; i++) assert.equal(committed[i]!.previous_item_id, committed[i - 1]!.item_id);
  for (const { msg } of ofType(c, 'conversation.item.input_audio_transcription.completed')) {
    assert.equal(msg.content_index, 0);
    assert.equal(typeof msg.transcript, 'string');
  }
  // Partials are the point: text arrives while audio is still being sent.
  const deltas = ofType(c, 'conversation.item.input_audio_transcription.delta');
  assert.ok(deltas.length > 0 && deltas[0]!.at < audioDone, 'a delta should arrive before the audio ends');
  for (const { msg } of deltas) assert.ok(typeof msg.delta === 'string' && msg.delta.length > 0 && msg.content_index === 0);
  c.ws.close();
});

test('manual turns (turn_detection null, 16 kHz): commit, empty commit, clear', async () => {
  const speech = await clip('goforward');
  const c = await connect(url, auth);
  c.ws.send(JSON.stringify({ type: 'transcription_session.update', session: { input_audio_format: 'pcm16_16khz', turn_detection: null } }));
  const updated = await c.next('transcription_session.updated');
  assert.equal(updated.session.turn_detection, null);
  append(c, speech.subarray(0, SR));
  c.ws.send(JSON.stringify({ type: 'input_audio_buffer.commit' }));
  const done = await c.next('conversation.item.input_audio_transcription.completed');
  const committed = await c.next('input_audio_buffer.committed');
  assert.equal(committed.item_id, done.item_id);
  assert.equal(committed.previous_item_id, null);
  c.ws.send(JSON.stringify({ type: 'input_audio_buffer.commit', event_id: 'ev-1' }));
  const err = await c.next('error');
  assert.equal(err.error.code, 'input_audio_buffer_commit_empty');
  assert.equal(err.error.event_id, 'ev-1');
  assert.equal(err.error.type, 'invalid_request_error');
  append(c, speech.subarray(SR, 2 * SR));
  c.ws.send(JSON.stringify({ type: 'input_audio_buffer.clear' }));
  await c.next('input_audio_buffer.cleared');
  assert.equal(ofType(c, 'input_audio_buffer.speech_started').length, 0, 'no VAD events without turn detection');
  c.ws.close();
});

test('?intent=transcription opens in the beta protocol; a GA session.update is answered in GA, with its user items per turn', async () => {
  const speech = await clip('goforward');
  const c = await connect(url, auth);
  await c.next('transcription_session.created');
  c.ws.send(JSON.stringify({ type: 'session.update', session: { type: 'transcription', audio: { input: { format: { type: 'audio/pcm', rate: 16000 }, turn_detection: null } } } }));
  const updated = await c.next('session.updated');
  assert.deepEqual(updated.session.audio.input.format, { type: 'audio/pcm', rate: 16000 });
  assert.equal(ofType(c, 'transcription_session.updated').length, 0);
  append(c, speech.subarray(0, SR));
  c.ws.send(JSON.stringify({ type: 'input_audio_buffer.commit' }));
  const done = await c.next('conversation.item.input_audio_transcription.completed');
  assert.deepEqual(done.usage, { type: 'duration', seconds: 1 });
  assert.deepEqual(
    c.received.map((r) => r.msg.type).filter((t) => t.startsWith('conversation.item') || t.startsWith('input_audio_buffer')),
    ['input_audio_buffer.committed', 'conversation.item.added', 'conversation.item.done', 'conversation.item.input_audio_transcription.completed'],
  );
  assert.equal((await c.next('conversation.item.added')).item.id, done.item_id);
  c.ws.close();
});

test('keys: header, ?api_key and the subprotocol are accepted; none or a wrong one is refused at the upgrade', async () => {
  await assert.rejects(connect(url), /401/);
  await assert.rejects(connect(`${url}&api_key=wrong`), /401/);
  const q = await connect(`${url}&api_key=${KEY}`);
  await q.next('transcription_session.created');
  q.ws.close();
  const p = await connect(url, { protocols: ['realtime', `openai-insecure-api-key.${KEY}`] });
  assert.equal(p.ws.protocol, 'realtime', 'the key is not echoed back when another protocol was offered');
  await p.next('transcription_session.created');
  p.ws.close();
});

test('bad events get error events (with the client event id) and the session goes on; a wrong intent is refused', async () => {
  const c = await connect(url, auth);
  await c.next('transcription_session.created');
  const send = (o: unknown) => c.ws.send(typeof o === 'string' ? o : JSON.stringify(o));
  send({ type: 'response.create', event_id: 'e1' });
  send({ type: 'transcription_session.update', event_id: 'e2', session: { turn_detection: { type: 'semantic_vad' } } });
  send({ type: 'transcription_session.update', event_id: 'e3', session: { input_audio_transcription: { model: 'no-such-model' } } });
  send({ type: 'input_audio_buffer.append', event_id: 'e4', audio: Buffer.alloc(3).toString('base64') });
  send({ type: 'input_audio_buffer.append', event_id: 'e5' });
  send('nope');
  c.ws.send(Buffer.from([1, 2, 3]));
  await until(() => ofType(c, 'error').length >= 7);
  const errors = ofType(c, 'error').map((r) => r.msg.error);
  assert.deepEqual(errors.map((e) => [e.code, e.event_id]), [
    ['unknown_event', 'e1'],
    ['invalid_value', 'e2'],
    ['model_not_found', 'e3'],
    ['bad_audio_frame', 'e4'],
    ['invalid_value', 'e5'],
    ['invalid_json', null],
    ['binary_not_supported', null],
  ]);
  assert.match(errors[1].param, /turn_detection/);
  assert.equal(errors[2].param, 'session.input_audio_transcription.model');
  // Still usable.
  send({ type: 'transcription_session.update', session: { turn_detection: null } });
  await c.next('transcription_session.updated');
  c.ws.close();

  const wrong = await connect(wsUrl(server.url, '/v1/realtime'), auth);
  assert.equal((await wrong.closed).code, 1008);
  assert.equal(wrong.received[0]!.msg.error.code, 'unsupported_intent');
});
