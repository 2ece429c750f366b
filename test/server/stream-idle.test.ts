// The stream idle timeout (--stream-idle-timeout, 2 s here) over a real server: a client that
// connects and sends no audio is told why and closed 1008, and its slot is free again; one that
// spoke and then went quiet gets the final of what it said, done, then 1008; a client that keeps
// sending audio (silence included) stays open.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { clip, SR } from '../streaming/support.ts';
import { isolateHome, metricValue, modelDir, startTestServer } from './helpers.ts';
import { connect, pace, s16le, wsUrl } from './stream-client.ts';

let server: RunningServer;

before(async () => {
  isolateHome();
  server = await startTestServer({ model: modelDir('english'), streamIdleTimeoutS: 2, maxStreams: 2, streamPartialIntervalMs: 300 });
});
after(async () => {
  await server.app.close();
  await unloadAll();
});

const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> =>
  metricValue(await server.ctx.metrics.registry.metrics(), name, labels);

test('silent clients on both endpoints get idle_timeout and close 1008 with a reason, and their slots are free again', { timeout: 30_000 }, async () => {
  const before = await metric('earshot_stream_closes_total', { reason: 'idle_timeout' });
  const started = performance.now();
  // maxStreams is 2: these two silent clients hold every slot until the timeout.
  const native = await connect(wsUrl(server.url, '/v1/stream'));
  const realtime = await connect(wsUrl(server.url, '/v1/realtime?intent=transcription'));
  const [n, r] = await Promise.all([native.closed, realtime.closed]);
  const took = performance.now() - started;
  assert.equal(n.code, 1008);
  assert.equal(n.reason, 'no audio for 2 s');
  assert.equal(r.code, 1008);
  assert.equal(r.reason, 'no audio for 2 s');
  assert.ok(took >= 1900 && took < 6000, `closed after ${Math.round(took)} ms`);
  assert.equal((await native.next('error')).code, 'idle_timeout');
  assert.equal((await realtime.next('error')).error.code, 'idle_timeout');
  assert.equal((await metric('earshot_stream_closes_total', { reason: 'idle_timeout' })) - before, 2);
  for (const end = Date.now() + 3000; (await metric('earshot_streams_active')) !== 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  assert.equal(await metric('earshot_streams_active'), 0);
  // The slots are free: a new stream is admitted.
  const again = await connect(wsUrl(server.url, '/v1/stream'));
  again.ws.send(JSON.stringify({ type: 'start', format: 's16le', sample_rate: 16000 }));
  await again.next('ready');
  again.ws.close();
});

test('a client that keeps sending audio (silence too) stays open past the timeout; one that spoke and went quiet gets its final, done, then 1008', { timeout: 30_000 }, async () => {
  const c = await connect(wsUrl(server.url, '/v1/stream'));
  c.ws.send(JSON.stringify({ type: 'start', format: 's16le', sample_rate: 16000 }));
  await c.next('ready');
  // 3 s of silence at real-time pace: audio all along, so no idle close.
  await pace(new Float32Array(3 * SR), SR, 1, (x) => c.ws.send(s16le(x)));
  assert.equal(c.ws.readyState, c.ws.OPEN, 'still open while audio comes');
  // Then speech, with no silence after it, and nothing more.
  const speech = (await clip('librispeech_1995-1837-0001')).subarray(0, 2 * SR);
  await pace(speech, SR, 4, (x) => c.ws.send(s16le(x)));
  const closed = await c.closed;
  assert.equal(closed.code, 1008);
  const types = c.received.map((r) => r.msg.type);
  const final = c.received.map((r) => r.msg).find((m) => m.type === 'final');
  assert.ok(final, `no final; got ${types.join(', ')}`);
  assert.ok(final.end >= 4.9, `the final covers the speech up to its end (${final.end})`);
  assert.equal(types.at(-1), 'done');
  assert.ok(types.indexOf('error') < types.indexOf('final'), 'the idle_timeout error comes first');
});
