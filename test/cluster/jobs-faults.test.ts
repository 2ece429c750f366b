// Durable jobs on a cluster under faults (issue 15): a real redis-server (AOF, fsync always), API
// nodes (`earshot serve --redis`) and workers (`earshot worker`) as child processes of the real
// binary, on the built test model at temperature 0 (deterministic).
// - kill -9 a worker mid-job: another finishes it from the last stored window, with the result of
//   an uninterrupted run, once; its upload is gone;
// - SIGTERM a worker mid-job: it hands the job back (queued, progress kept) and exits 0; the next
//   worker resumes it without counting an interruption;
// - kill -9 Redis and restart it on its data: the queued and running jobs all complete, once;
// - kill -9 an API node while its jobs wait: they complete and another API node reads them.
// Each test prints its figures (jobs submitted, completed, lost, duplicated).
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { jobQueueName } from '../../src/cluster/job-records.ts';
import { connectRedis, KEY_PREFIX } from '../../src/cluster/redis.ts';
import { uploadIds } from '../../src/cluster/uploads.ts';
import { servedModelId } from '../../src/models/index.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { type ChildServer, submitJob, until } from '../jobs/child-server.ts';
import { isolateHome, modelDir } from '../server/helpers.ts';
import { completions, figures, spawnApiNode, spawnWorker, type WorkerProcess } from './jobs-support.ts';

const MODEL = modelDir('english');
const SECONDS = 240; // eight 30 s windows
let redis: RedisServer;
let client: Redis;
let api: ChildServer;
const workers: WorkerProcess[] = [];
const servers: ChildServer[] = [];

before(async () => {
  isolateHome();
  redis = await startRedis();
  client = connectRedis(redis.url, 'test');
  client.on('error', () => {});
  api = await spawnApiNode(redis.url, MODEL);
  servers.push(api);
});
// A worker a failed test left running would take the next test's jobs.
afterEach(async () => {
  for (const w of workers.splice(0)) await w.kill9();
});
after(async () => {
  for (const s of servers) await s.kill();
  client.disconnect();
  await redis.stop();
});

async function worker(): Promise<WorkerProcess> {
  const w = await spawnWorker(redis.url, MODEL);
  workers.push(w);
  return w;
}

/** GET a job; undefined while the node cannot answer (Redis away, node dead). */
async function look(url: string, id: string): Promise<Record<string, any> | undefined> {
  const r = await fetch(`${url}/v1/jobs/${id}`).catch(() => undefined);
  return r?.status === 200 ? ((await r.json()) as Record<string, any>) : undefined;
}

async function submit(url: string, seconds = SECONDS): Promise<string> {
  const r = await submitJob(url, seconds);
  assert.equal(r.status, 202, await r.clone().text());
  return ((await r.json()) as { id: string }).id;
}

async function finalStatus(url: string, id: string, ms = 120_000): Promise<Record<string, any>> {
  let j: Record<string, any> | undefined;
  await until(async () => ['completed', 'failed'].includes((j = await look(url, id))?.status), ms, `job ${id} finished`, 50);
  return j!;
}

/** Waits until job `id` runs with at least one window stored, and not all. */
async function midJob(url: string, id: string): Promise<void> {
  await until(async () => {
    const j = await look(url, id);
    return j?.status === 'running' && j.progress.done_seconds >= 30;
  }, 120_000, 'a window stored', 5);
}

const strip = (segments: Array<Record<string, unknown>>) => segments.map(({ text, tokens, start, end, seek }) => ({ text, tokens, start, end, seek }));

async function queueEmpty(): Promise<void> {
  const q = new Queue(jobQueueName(servedModelId({ model: MODEL })), { connection: client, prefix: KEY_PREFIX });
  const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed');
  await q.close();
  assert.deepEqual(Object.values(counts).reduce((a, b) => a + b, 0), 0, `BullMQ still holds jobs: ${JSON.stringify(counts)}`);
}

let uninterrupted: Array<Record<string, unknown>> | undefined;

test('kill -9 a worker mid-job: another worker resumes it at its last window and ends it once, as an uninterrupted run', { timeout: 300_000 }, async () => {
  const a = await worker();
  const id = await submit(api.url);
  await midJob(api.url, id);
  await a.kill9();
  const atKill = (await look(api.url, id))!;
  assert.equal(atKill.status, 'running');
  assert.ok(atKill.progress.done_seconds < SECONDS, 'killed before the end');

  const b = await worker();
  const done = await finalStatus(api.url, id);
  assert.equal(done.status, 'completed');
  const resumed = b.logs.find((e) => e.jobId === id && e.msg === 'job resumed');
  assert.ok(resumed, 'the second worker resumed the job');
  assert.ok(Number(resumed.seek) >= 3000, `resumed at a stored window (seek ${String(resumed.seek)})`);
  assert.equal(resumed.interruptions, 1, 'the kill cost it the window in progress');
  assert.equal(completions(id, a, b), 1, 'completed exactly once');
  assert.deepEqual([...(await uploadIds(client))], [], 'its upload is gone');
  await queueEmpty();

  // The same audio, never interrupted.
  const again = await finalStatus(api.url, await submit(api.url));
  assert.equal(again.status, 'completed');
  uninterrupted = strip(again.result.segments);
  assert.ok(uninterrupted.length > 1);
  assert.deepEqual(strip(done.result.segments), uninterrupted);
  assert.equal(done.result.text, again.result.text);
  console.log('fault figures, worker kill -9:', JSON.stringify(figures([id], new Map([[id, done.status]]), (x) => completions(x, a, b))));
});

test('SIGTERM a worker mid-job: the job goes back to the queue with its progress, and the next worker resumes it uncounted', { timeout: 300_000 }, async () => {
  const a = await worker();
  const id = await submit(api.url);
  await midJob(api.url, id);
  assert.equal(await a.term(), 0, `the worker exits cleanly: ${JSON.stringify(a.logs.slice(-8))}`);
  assert.ok(a.logs.some((e) => e.jobId === id && e.msg === 'job handed back'), JSON.stringify(a.logs.slice(-8)));
  const handed = (await look(api.url, id))!;
  assert.equal(handed.status, 'queued', JSON.stringify(handed));
  assert.ok(handed.progress.done_seconds >= 30, `its stored windows are kept: ${JSON.stringify(handed)}`);

  const b = await worker();
  const done = await finalStatus(api.url, id);
  assert.equal(done.status, 'completed');
  const resumed = b.logs.find((e) => e.jobId === id && e.msg === 'job resumed');
  assert.equal(resumed?.interruptions, 0, 'a clean hand-back is not an interruption');
  assert.equal(completions(id, a, b), 1);
  if (uninterrupted) assert.deepEqual(strip(done.result.segments), uninterrupted);
  assert.deepEqual([...(await uploadIds(client))], []);
});

test('kill -9 Redis and restart it on its data: queued and running jobs all complete, none lost or repeated', { timeout: 300_000 }, async () => {
  const w = await worker();
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) ids.push(await submit(api.url, 90));
  await midJob(api.url, ids[0]!);
  await redis.kill9();
  await new Promise((r) => setTimeout(r, 1000));
  await redis.restart();
  const final = new Map<string, string>();
  for (const id of ids) final.set(id, (await finalStatus(api.url, id)).status);
  const f = figures(ids, final, (x) => completions(x, w));
  console.log('fault figures, Redis kill -9:', JSON.stringify(f));
  assert.deepEqual(f, { submitted: 4, completed: 4, lost: 0, duplicated: 0 });
  assert.deepEqual([...(await uploadIds(client))], []);
  await queueEmpty();
});

test('kill -9 an API node while its jobs wait: they complete, and another API node reads them', { timeout: 300_000 }, async () => {
  const other = await spawnApiNode(redis.url, MODEL);
  servers.push(other);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push(await submit(api.url, 45));
  await api.kill();
  const w = await worker();
  const final = new Map<string, string>();
  for (const id of ids) final.set(id, (await finalStatus(other.url, id)).status);
  const f = figures(ids, final, (x) => completions(x, w));
  console.log('fault figures, API node kill -9:', JSON.stringify(f));
  assert.deepEqual(f, { submitted: 3, completed: 3, lost: 0, duplicated: 0 });
  const list = (await (await fetch(`${other.url}/v1/jobs`)).json()) as { data: Array<{ id: string }> };
  for (const id of ids) assert.ok(list.data.some((j) => j.id === id), 'listed by the other node');
});
