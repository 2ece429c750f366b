// Which crashes count against a job (README, Async jobs): only a crash while the job decodes its
// windows, and only since it last finished one; a job is failed (`too_many_attempts`) when a fourth
// such crash comes without a window finished in between. First on the store itself (a real SQLite
// file), then end to end on `earshot serve` child processes killed with SIGKILL: during a model
// load with another job's upload in flight (not charged), and in the middle of windows (charged,
// three times tolerated, reset by progress).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobAudio, newJobId } from '../../src/jobs/audio-files.ts';
import { DataDirLock } from '../../src/jobs/lock.ts';
import { MAX_INTERRUPTIONS, recoverJobs } from '../../src/jobs/recovery.ts';
import { JobStore } from '../../src/jobs/store.ts';
import type { Job } from '../../src/jobs/types.ts';
import { metricValue, modelDir } from '../server/helpers.ts';
import { getJob, spawnServer, submitJob, until, waitReady, type ChildServer } from './child-server.ts';

function tempData(): string {
  return join(mkdtempSync(join(tmpdir(), 'earshot-attempts-')), 'data');
}

function add(store: JobStore): string {
  const id = newJobId();
  store.create({ id, owner: '', model: 'm', filename: 'a.wav', request: { task: 'transcribe', responseFormat: 'json', vadFilter: false }, createdAt: 0 });
  return id;
}

/** The stored row of `id`, read with the server stopped (its lock is gone with it). */
function stored(dataDir: string, id: string): Job {
  const store = JobStore.open(dataDir);
  try {
    return store.get(id)!;
  } finally {
    store.close();
  }
}

test('store: only a job decoding a window is charged; progress resets the count; the fourth charge without progress fails it', async () => {
  const dir = tempData();
  const lock = DataDirLock.acquire(dir);
  const store = JobStore.open(dir);
  const audio = new JobAudio(join(dir, 'audio'));
  try {
    const decoding = add(store);
    const waiting = add(store); // claimed, still waiting for its model or reading its audio
    const queued = add(store);
    for (const id of [decoding, waiting, queued]) await audio.save(id, new Uint8Array(4));
    const crash = async (): Promise<Awaited<ReturnType<typeof recoverJobs>>> => {
      // What a run does up to the crash: claim both, only `decoding` enters its window.
      assert.equal(store.claimNext(1)!.id, decoding);
      assert.equal(store.claimNext(1)!.id, waiting);
      assert.ok(store.enterWindow(decoding));
      return recoverJobs(store, audio);
    };
    for (let n = 1; n <= MAX_INTERRUPTIONS; n++) {
      const r = await crash();
      assert.deepEqual(r.failed, []);
      assert.deepEqual(r.requeued.sort(), [decoding, waiting].sort());
      assert.deepEqual([store.get(decoding)!.status, store.get(decoding)!.interruptions], ['queued', n]);
      assert.equal(store.get(waiting)!.interruptions, 0, 'never in a window: never charged');
      assert.equal(store.get(queued)!.interruptions, 0);
    }
    // Progress: a finished window clears the count, so the next crash is the first again.
    store.claimNext(1);
    store.claimNext(1);
    store.enterWindow(decoding);
    assert.ok(store.saveWindow(decoding, [], { seek: 3000, previousTokens: [] }, 30));
    assert.equal(store.get(decoding)!.interruptions, 0);
    await recoverJobs(store, audio);
    assert.equal(store.get(decoding)!.interruptions, 1);
    // Three more crashes in the same window are tolerated (4 would be "more than 3" only after one more).
    for (let n = 2; n <= MAX_INTERRUPTIONS; n++) await crash();
    assert.deepEqual([store.get(decoding)!.status, store.get(decoding)!.interruptions], ['queued', 3]);
    const last = await crash();
    assert.deepEqual(last.failed, [decoding]);
    const failed = store.get(decoding)!;
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'too_many_attempts');
    assert.match(failed.error!.message, /stopped 4 times/);
    assert.deepEqual(store.segments(decoding).length, 0);
    assert.deepEqual((await audio.list()).sort(), [waiting, queued].sort(), 'the failed job\'s audio is swept');
    assert.equal(store.get(waiting)!.status, 'queued');
  } finally {
    store.close();
    lock.release();
  }
});

const SERVE = (dataDir: string, extra: string[] = []): string[] => [
  '--model', modelDir('english'), '--port', '0', '--data-dir', dataDir, '--threads', '1', '--sample-len', '8', ...extra,
];

/** Starts a POST /v1/jobs whose body never finishes (an upload in flight); returns its request. */
function uploadInFlight(url: string): ReturnType<typeof request> {
  const boundary = 'earshotslowupload';
  const req = request(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': 10_000_000 } });
  req.on('error', () => {});
  req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.wav"\r\nContent-Type: audio/wav\r\n\r\n`);
  req.write(Buffer.alloc(64 * 1024));
  return req;
}

test('kill -9 while a job waits for its model to load, with another job\'s upload in flight, charges no job', { timeout: 120_000 }, async () => {
  const dataDir = tempData();
  // --model-ttl: the model unloads when idle, so the job's run must wait for it to load again.
  let server: ChildServer = await spawnServer({ args: SERVE(dataDir, ['--model-ttl', '0.3']) });
  try {
    await waitReady(server.url);
    await until(async () => metricValue(await (await fetch(`${server.url}/metrics`)).text(), 'earshot_models_loaded') === 0, 20_000, 'idle unload');
    const r = await submitJob(server.url, 40);
    assert.equal(r.status, 202);
    const { id } = (await r.json()) as { id: string };
    const upload = uploadInFlight(server.url);
    await until(async () => (await getJob(server.url, id)).status === 'running', 10_000, 'job claimed', 2);
    await server.kill();
    upload.destroy();
    assert.equal(server.logs.some((e) => e.msg === 'job started'), false, 'killed before the job reached its windows');
    const row = stored(dataDir, id);
    assert.deepEqual([row.status, row.inWindow], ['running', false], 'claimed, waiting for the model');

    server = await spawnServer({ args: SERVE(dataDir) });
    await until(async () => (await getJob(server.url, id)).status === 'completed', 60_000, 'job completed');
    const list = (await (await fetch(`${server.url}/v1/jobs`)).json()) as { data: Array<{ id: string }> };
    assert.deepEqual(list.data.map((j) => j.id), [id], 'the unfinished upload left no job');
    assert.equal(server.logs.find((e) => e.msg === 'job started' && e.jobId === id)?.interruptions, 0, 'the kill was not counted against it');
  } finally {
    await server.kill();
  }
});

test('kill -9 mid-window: three interruptions in a row are retried, progress resets the count, the job completes once', { timeout: 240_000 }, async () => {
  const dataDir = tempData();
  let server = await spawnServer({ args: SERVE(dataDir) });
  const r = await submitJob(server.url, 300);
  assert.equal(r.status, 202);
  const { id } = (await r.json()) as { id: string };
  const runs: Array<{ msg: string; interruptions: number }> = [];
  const inWindow = async (s: ChildServer): Promise<void> => {
    await until(() => s.logs.some((e) => e.jobId === id && (e.msg === 'job started' || e.msg === 'job resumed')), 60_000, 'job run', 2);
    const e = s.logs.find((x) => x.jobId === id && (x.msg === 'job started' || x.msg === 'job resumed'))!;
    runs.push({ msg: String(e.msg), interruptions: Number(e.interruptions) });
  };
  try {
    // Three kills, each as soon as the run has entered its window: no window finishes in between.
    let seek = 0;
    for (let n = 1; n <= 3; n++) {
      await inWindow(server);
      await server.kill();
      const row = stored(dataDir, id);
      assert.deepEqual([row.inWindow, row.interruptions, row.nextSeek], [true, n - 1, seek], `kill ${n}: caught mid-window, nothing stored since`);
      seek = row.nextSeek;
      server = await spawnServer({ args: SERVE(dataDir) });
    }
    // Three interruptions without progress: still run ("more than 3" fails it), and it makes progress.
    await inWindow(server);
    assert.equal(runs.at(-1)!.interruptions, 3);
    await until(async () => (await getJob(server.url, id)).progress.done_seconds > 0, 60_000, 'progress', 10);
    await server.kill();
    const row = stored(dataDir, id);
    assert.ok(row.nextSeek > 0);
    assert.equal(row.interruptions, 0, 'a finished window resets the count');

    server = await spawnServer({ args: SERVE(dataDir) });
    await inWindow(server);
    assert.equal(runs.at(-1)!.interruptions, 1, 'the kill after progress is the first again');
    await until(async () => ['completed', 'failed'].includes((await getJob(server.url, id)).status), 120_000, 'job finished', 100);
    const done = await getJob(server.url, id);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    // Nothing was stored before the fourth run's window: the first four runs each started from 0.
    assert.deepEqual(runs.map((x) => x.msg), ['job started', 'job started', 'job started', 'job started', 'job resumed']);
    const v = (await (await fetch(`${server.url}/v1/jobs/${id}?response_format=verbose_json`)).json()) as { segments: Array<{ id: number; seek: number }> };
    assert.deepEqual(v.segments.map((s) => s.id), v.segments.map((_, k) => k));
    for (let k = 1; k < v.segments.length; k++) assert.ok(v.segments[k]!.seek >= v.segments[k - 1]!.seek, 'no window repeated');
    assert.deepEqual(readdirSync(join(dataDir, 'audio')), []);
  } finally {
    await server.kill();
  }
});
