// /v1/stream, the native streaming protocol, over a real server (port 0, English test model with
// random weights: message order and structure are checked, not words).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { clip, SR, withPauses } from '../streaming/support.ts';
import { isolateHome, metricValue, modelDir, startTestServer, until } from './helpers.ts';
import { connect, pace, s16le, wsUrl } from './stream-client.ts';

let server: RunningServer;
let url: string;

before(async () => {
  isolateHome();
  server = await startTestServer({ model: modelDir('english'), maxStreams: 2, streamPartialIntervalMs: 300 });
  url = wsUrl(server.url, '/v1/stream');
});
after(async () => {
  await server.app.close();
  await unloadAll();
});

const metrics = async (): Promise<string> => (await fetch(`${server.url}/metrics`)).text();

test('a clip at real-time pace: ready, partials before the audio ends, a final with timestamps, done, close 1000', async () => {
  const speech = await clip('goforward');
  const audio = new Float32Array(speech.length + SR); // one second of silence after the speech
  audio.set(speech);
  const c = await connect(url);
  c.ws.send(JSON.stringify({ type: 'start', format: 's16le', sample_rate: 16000 }));
  await c.next('ready');
  await pace(audio, SR, 1, (x) => c.ws.send(s16le(x)));
  const audioDone = performance.now();
  c.ws.send(JSON.stringify({ type: 'end' }));
  assert.equal((await c.closed).code, 1000);
  const types = c.received.map((r) => r.msg.type);
  assert.equal(types[0], 'ready');
  assert.equal(types.at(-1), 'done');
  const partials = c.received.filter((r) => r.msg.type === 'partial');
  assert.ok(partials.length > 0 && partials[0]!.at < audioDone, 'a partial should arrive while audio is still coming');
  for (const { msg } of partials) {
    assert.equal(msg.text, msg.committed + msg.tentative);
    assert.deepEqual(Object.keys(msg).sort(), ['committed', 'tentative', 'text', 'type']);
  }
  const finals = c.received.filter((r) => r.msg.type === 'final').map((r) => r.msg);
  assert.ok(finals.length >= 1);
  for (const f of finals) {
    assert.equal(typeof f.text, 'string');
    assert.ok(f.start >= 0 && f.end > f.start && f.end <= audio.length / SR + 1e-6);
    assert.ok(Array.isArray(f.segments));
    for (const s of f.segments) assert.ok(s.start >= f.start - 1e-6 && s.end <= f.end + 1e-6 && typeof s.text === 'string');
  }
  // Every partial of an utterance comes before its final.
  assert.ok(types.lastIndexOf('final') > types.indexOf('partial'));
  const m = await metrics();
  assert.ok(metricValue(m, 'earshot_stream_final_latency_seconds_count') >= 1);
  await until(() => true);
});

test('speech with pauses at 4x real time in f32le at 48 kHz: one final per stretch of speech, on the stream time line', async () => {
  const joined = await withPauses(['goforward', 'harvard_spk1_snt1'], 1.5);
  // 48 kHz copy (sample-and-hold is fine for the VAD here) exercises the resampler path.
  const up = new Float32Array(joined.samples.length * 3);
  for (let i = 0; i < up.length; i++) up[i] = joined.samples[Math.floor(i / 3)]!;
  const c = await connect(url);
  c.ws.send(JSON.stringify({ type: 'start', format: 'f32le', sample_rate: 48000, language: 'en' }));
  await c.next('ready');
  await pace(up, 48000, 4, (x) => c.ws.send(Buffer.from(x.buffer, x.byteOffset, x.byteLength)));
  c.ws.send(JSON.stringify({ type: 'end' }));
  assert.equal((await c.closed).code, 1000);
  const finals = c.received.filter((r) => r.msg.type === 'final').map((r) => r.msg);
  assert.ok(finals.length >= 2, `expected a final per clip, got ${finals.length}`);
  for (const [c0, c1] of joined.clips) assert.ok(finals.some((f) => f.start < c1 && f.end > c0), `no final over [${c0}, ${c1}]`);
  for (let i = 1; i < finals.length; i++) assert.ok(finals[i]!.start >= finals[i - 1]!.end - 1e-6, 'finals in time order');
});

test('max_streams: a third stream is refused with an error and close 1013; a vanished client frees its slot', async () => {
  const a = await connect(url);
  const b = await connect(url);
  const c = await connect(url);
  const refused = await c.closed;
  assert.equal(refused.code, 1013);
  assert.equal(c.received[0]?.msg.type, 'error');
  assert.equal(c.received[0]?.msg.code, 'max_streams');
  assert.equal(metricValue(await metrics(), 'earshot_streams_active'), 2);
  // A client that vanishes mid-stream (no "end", socket torn down).
  a.ws.send(JSON.stringify({ type: 'start', format: 's16le', sample_rate: 16000 }));
  await a.next('ready');
  a.ws.send(s16le((await clip('goforward')).subarray(0, SR)));
  a.ws.terminate();
  b.ws.close();
  await until(() => true);
  let active = -1;
  for (const end = Date.now() + 5000; Date.now() < end; ) {
    active = metricValue(await metrics(), 'earshot_streams_active');
    if (active === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(active, 0);
  await until(() => server.ctx.host.whisper!.queue.stats().running === 0 && server.ctx.host.whisper!.queue.stats().waiting === 0);
});

test('bad messages get error events and the stream goes on', async () => {
  const c = await connect(url);
  const errors = (): Array<Record<string, any>> => c.received.filter((r) => r.msg.type === 'error').map((r) => r.msg);
  c.ws.send(s16le(new Float32Array(160))); // audio before start
  c.ws.send('{not json');
  c.ws.send('[1,2]');
  c.ws.send('{"type":"start","format":"mp3","sample_rate":16000}');
  c.ws.send(`{"type":"start","x":${'['.repeat(100)}${']'.repeat(100)}}`);
  c.ws.send(JSON.stringify({ type: 'dance' }));
  c.ws.send(Buffer.alloc(2 * 1024 * 1024)); // over the 1 MiB message cap
  await until(() => errors().length >= 7);
  assert.deepEqual(
    errors().map((e) => e.code),
    ['not_started', 'invalid_json', 'invalid_event', 'bad_start', 'invalid_json', 'unknown_message', 'message_too_large'],
  );
  for (const e of errors()) assert.equal(typeof e.message, 'string');
  c.ws.send(JSON.stringify({ type: 'start', format: 's16le', sample_rate: 16000 }));
  await c.next('ready');
  c.ws.send(Buffer.alloc(3)); // odd byte count for s16le
  await until(() => errors().length >= 8);
  assert.equal(errors()[7]!.code, 'bad_audio_frame');
  c.ws.send(JSON.stringify({ type: 'end' }));
  assert.equal((await c.closed).code, 1000);
  assert.equal(c.received.at(-1)!.msg.type, 'done');
});
