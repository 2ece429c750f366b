// Synchronous requests through the cluster under faults. A worker killed (kill -9) in the middle of
// one: another worker of the model takes it within about two request locks (REQUEST_LOCK_MS, 5 s
// each: the lock lapses, then a worker's stalled-job check finds it), and the client gets its
// answer, once. The API node killed in the middle of one: the worker stops decoding it for nobody
// within about LISTENER_CHECK_MS, and its audio is deleted. Real redis-server, real worker
// processes; the API node in this process, or a child process for the one that is killed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { LISTENER_CHECK_MS, REQUEST_LOCK_MS } from '../../src/cluster/request-consumer.ts';
import { connectRedis, KEY_PREFIX } from '../../src/cluster/redis.ts';
import { uploadIds } from '../../src/cluster/uploads.ts';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { form, isolateHome, jfkClip, metricValue, modelDir } from '../server/helpers.ts';
import { spawnApiNode } from './jobs-support.ts';
import { startApiNode, startWorker, type WorkerChild } from './sync-support.ts';

let redis: RedisServer;
let home: string;
let api: RunningServer;
const workers: WorkerChild[] = [];
const dir = modelDir('multilingual');

before(async () => {
  home = isolateHome();
  redis = await startRedis();
  api = await startApiNode(redis.url, dir, { maxUploadBytes: 25_000_000, requestTimeoutS: 120 });
  workers.push(await startWorker(redis.url, dir, 3000), await startWorker(redis.url, dir, 3000));
});
after(async () => {
  for (const w of workers) await w.stop();
  await api.app.close();
  await unloadAll();
  await redis.stop();
  rmSync(home, { recursive: true, force: true });
});

const scrape = async (w: WorkerChild) => (await fetch(w.metricsUrl)).text();
const running = async (w: WorkerChild) => metricValue(await scrape(w), 'earshot_worker_requests_running');

test("a worker killed mid-request: another takes the request within two locks' time, and the client gets one answer", async () => {
  // Many windows on random weights: long enough to be killed in the middle.
  const answer = fetch(`${api.url}/v1/audio/transcriptions`, { method: 'POST', body: form({ temperature: '0', vad_filter: 'false', response_format: 'verbose_json' }, { bytes: jfkClip(240) }) });
  let first: WorkerChild | undefined;
  for (const end = Date.now() + 30_000; !first; ) {
    assert.ok(Date.now() < end, 'no worker started the request');
    for (const w of workers) if ((await running(w)) === 1) first = w;
    await new Promise((r) => setTimeout(r, 20));
  }
  const other = workers.find((w) => w !== first)!;
  await first.stop('SIGKILL');
  const killed = Date.now();
  while ((await running(other)) !== 1) {
    assert.ok(Date.now() - killed < 2 * REQUEST_LOCK_MS + 3000, 'the other worker did not take the request in time');
    await new Promise((r) => setTimeout(r, 50));
  }
  const tookOver = Date.now() - killed;
  const r = await answer;
  assert.equal(r.status, 200, await r.clone().text());
  const body = (await r.json()) as { duration: number; segments: Array<{ id: number }> };
  assert.equal(Math.round(body.duration), 240);
  assert.deepEqual(body.segments.map((s) => s.id), body.segments.map((_, i) => i), 'each segment once, in order');
  assert.equal(metricValue(await scrape(other), 'earshot_worker_requests_total', { outcome: 'completed' }), 1);
  assert.ok(tookOver > 0, `taken over after ${tookOver} ms`);
});

test('the API node killed mid-request: the worker stops decoding for nobody, and the audio goes', async () => {
  const worker = workers.find((w) => w.child.exitCode === null && w.child.signalCode === null)!;
  const cancelledBefore = metricValue(await scrape(worker), 'earshot_worker_requests_total', { outcome: 'cancelled' });
  const node = await spawnApiNode(redis.url, dir, ['--no-local-model', '--max-upload-bytes', '25000000']);
  try {
    // The test hears every reply channel (a pattern subscription: a publish reaches it, a channel's
    // subscriber count does not count it), so the worker's publishes never reach nobody: only its
    // check of the channel's listeners can tell that the API node is gone.
    const listener = connectRedis(redis.url);
    const replies: string[] = [];
    await listener.psubscribe(`${KEY_PREFIX}:reply:*`);
    listener.on('pmessage', (_p: string, _c: string, m: string) => replies.push((JSON.parse(m) as { type: string }).type));
    const answer = fetch(`${node.url}/v1/audio/transcriptions`, { method: 'POST', body: form({ temperature: '0', vad_filter: 'false' }, { bytes: jfkClip(240) }) }).catch((e: unknown) => e);
    try {
      for (const end = Date.now() + 30_000; !replies.includes('start'); ) {
        assert.ok(Date.now() < end, 'the worker never started the request');
        await new Promise((r) => setTimeout(r, 20));
      }
      await node.kill();
    } finally {
      listener.disconnect();
    }
    const killed = Date.now();
    assert.ok((await answer) instanceof Error, 'the client lost its connection');
    while (metricValue(await scrape(worker), 'earshot_worker_requests_total', { outcome: 'cancelled' }) === cancelledBefore) {
      assert.ok(Date.now() - killed < LISTENER_CHECK_MS + 4000, 'the worker still decodes for a dead API node');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await running(worker), 0);
    const r = connectRedis(redis.url);
    try {
      assert.equal((await uploadIds(r)).size, 0, 'the request audio is deleted');
    } finally {
      r.disconnect();
    }
  } finally {
    await node.kill();
  }
});
