// Redis dies under a stateless API node's synchronous requests (issue 15's failure table): the
// request in flight gets 503 `cluster_unavailable` at once instead of hanging until its timeout,
// a request sent while Redis is down gets the same 503 without waiting for it, and once Redis is
// back on its data the node answers again. A worker told to stop while Redis is down cannot hand
// its jobs back: it exits after --shutdown-timeout instead of hanging. Real redis-server (kill -9,
// restarted on its AOF), a real worker process.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { form, isolateHome, jfkClip, modelDir } from '../server/helpers.ts';
import { startApiNode, startWorker, type WorkerChild } from './sync-support.ts';

let redis: RedisServer;
let home: string;
let api: RunningServer;
let worker: WorkerChild;
const dir = modelDir('multilingual');

before(async () => {
  home = isolateHome();
  redis = await startRedis();
  api = await startApiNode(redis.url, dir, { maxUploadBytes: 25_000_000 });
  worker = await startWorker(redis.url, dir, 3000, ['--shutdown-timeout', '2']);
});
after(async () => {
  await worker.stop();
  await api.app.close();
  await unloadAll();
  await redis.stop();
  rmSync(home, { recursive: true, force: true });
});

const post = (bytes: Uint8Array) => fetch(`${api.url}/v1/audio/transcriptions`, { method: 'POST', body: form({ temperature: '0', vad_filter: 'false' }, { bytes }) });
const errorOf = async (r: Response) => ((await r.json()) as { error: { code: string; type: string } }).error;

async function until(ok: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  for (const end = Date.now() + ms; !(await ok()); ) {
    assert.ok(Date.now() < end, what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('Redis killed mid-request: 503 cluster_unavailable at once, 503 while it is down, answers again once it is back', async () => {
  await until(async () => (await fetch(`${api.url}/ready`)).status === 200, 10_000, 'the worker never became ready');
  // Long on random weights: many windows through the fallback ladder, so it is still running when Redis dies.
  const inFlight = post(jfkClip(300));
  await new Promise((r) => setTimeout(r, 1500));
  const killedAt = performance.now();
  await redis.kill9();
  const r1 = await inFlight;
  const waited = performance.now() - killedAt;
  assert.equal(r1.status, 503);
  assert.equal((await errorOf(r1)).code, 'cluster_unavailable');
  assert.ok(waited < 5000, `the request in flight waited ${Math.round(waited)} ms after Redis died`);

  const sentAt = performance.now();
  const r2 = await post(jfkClip(2));
  assert.equal(r2.status, 503, 'a request while Redis is down');
  assert.equal((await errorOf(r2)).code, 'cluster_unavailable');
  assert.ok(performance.now() - sentAt < 5000, 'refused without waiting for Redis');
  assert.equal((await fetch(`${api.url}/ready`)).status, 503);

  await redis.restart();
  await until(async () => (await fetch(`${api.url}/ready`)).status === 200, 20_000, 'not ready again after Redis came back');
  const r3 = await post(jfkClip(2));
  assert.equal(r3.status, 200, await r3.clone().text());
  assert.equal(typeof ((await r3.json()) as { text: unknown }).text, 'string');
});

test('a worker stopped while Redis is down exits after --shutdown-timeout, with status 1', async () => {
  await redis.kill9();
  const stoppedAt = performance.now();
  worker.child.kill('SIGTERM');
  await worker.exited;
  const took = performance.now() - stoppedAt;
  assert.equal(worker.child.exitCode, 1);
  assert.ok(took >= 1900 && took < 10_000, `exited after ${Math.round(took)} ms (timeout 2 s)`);
  await redis.restart(); // for after()
});
