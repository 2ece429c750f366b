// Storage faults are errors, not crashes. On real file systems (tmpfs.ts): a disk that fills while
// a job runs pauses that job with `storage_full` (and it completes once there is space again), a
// submission gets 507 with OpenAI's error body, and the process, /health and a transcription carry
// on. A job store with overwritten pages turns /ready 503 with the reason while everything but the
// job routes keeps working. A second server on a data directory in use, and a server on a read-only
// one, stop at startup with one line and exit 1, never listening.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, closeSync, mkdtempSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newJobId } from '../../src/jobs/audio-files.ts';
import { DataDirLock } from '../../src/jobs/lock.ts';
import { JobStore } from '../../src/jobs/store.ts';
import { form, isolateHome, jfkClip, modelDir, startTestServer } from '../server/helpers.ts';
import { connect, wsUrl } from '../server/stream-client.ts';
import { getJob, runToExit, spawnServer, submitJob, until, waitReady } from './child-server.ts';
import { fill, mountTmpfs, needsNamespace, runInMountNamespace } from './tmpfs.ts';

const HERE = new URL(import.meta.url).pathname;

if (needsNamespace()) {
  test('storage faults, re-run inside `unshare -Urm` (mount is not permitted here)', { timeout: 420_000 }, () => {
    const r = runInMountNamespace([process.execPath, '--import', 'tsx', '--test', '--test-reporter=spec', HERE], 400_000);
    assert.equal(r.status, 0, r.output.slice(-4000));
  });
} else {
  faultTests();
}

function errorBody(body: unknown): Record<string, unknown> {
  const e = (body as { error: Record<string, unknown> }).error;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
  return e;
}

async function transcribeOnce(url: string): Promise<number> {
  const r = await fetch(`${url}/v1/audio/transcriptions`, { method: 'POST', body: form({ model: 'whisper-1', temperature: '0' }, { bytes: jfkClip(2) }) });
  await r.arrayBuffer();
  return r.status;
}

function faultTests(): void {
  test('a disk that fills while a job runs: the job pauses (storage_full), a submission gets 507, the rest carries on, the job completes later', { timeout: 180_000 }, async () => {
    const fs = mountTmpfs(16 << 20);
    const dataDir = join(fs.dir, 'data');
    const server = await spawnServer({ args: ['--model', modelDir('english'), '--port', '0', '--data-dir', dataDir, '--threads', '1', '--sample-len', '8'] });
    try {
      await waitReady(server.url);
      const r = await submitJob(server.url, 120);
      assert.equal(r.status, 202);
      const { id } = (await r.json()) as { id: string };
      await until(async () => (await getJob(server.url, id)).progress.done_seconds > 0, 60_000, 'first window stored');
      const filler = fill(fs.dir);

      // The job's next window cannot be stored: it pauses, with the reason, and stays acknowledged.
      await until(
        async () => {
          assert.equal(server.child.exitCode, null, `the server died: ${server.plain.join('\n').slice(-1500)}`);
          return Boolean((await getJob(server.url, id)).paused);
        },
        60_000,
        'job paused',
      );
      const paused = await getJob(server.url, id);
      assert.equal(paused.status, 'running');
      assert.equal(paused.paused.code, 'storage_full');
      assert.match(paused.paused.message, /full/);
      assert.ok(paused.progress.done_seconds < 120);

      const refused = await submitJob(server.url, 3);
      assert.equal(refused.status, 507);
      const e = errorBody(await refused.json());
      assert.equal(e.code, 'storage_full');
      assert.equal(e.type, 'server_error');
      assert.ok(!String(e.message).includes(fs.dir), 'no server path in the error');

      assert.equal((await fetch(`${server.url}/health`)).status, 200);
      assert.equal(await transcribeOnce(server.url), 200);
      assert.equal((await fetch(`${server.url}/v1/jobs`)).status, 200, 'reads still work');
      assert.equal(server.child.exitCode, null, 'the process lives on');

      // Space again: the job resumes from its last stored window and completes, each window once.
      rmSync(filler);
      await until(async () => (await getJob(server.url, id)).status !== 'running', 90_000, 'job finished', 100);
      const done = await getJob(server.url, id);
      assert.equal(done.status, 'completed', JSON.stringify(done.error));
      assert.equal(done.paused, null);
      assert.equal(done.progress.done_seconds, 120);
      const v = (await (await fetch(`${server.url}/v1/jobs/${id}?response_format=verbose_json`)).json()) as { segments: Array<{ id: number; seek: number; start: number }> };
      assert.deepEqual(v.segments.map((s) => s.id), v.segments.map((_, k) => k));
      for (let k = 1; k < v.segments.length; k++) assert.ok(v.segments[k]!.seek >= v.segments[k - 1]!.seek, 'no window stored twice');
      assert.equal((await submitJob(server.url, 2)).status, 202, 'submissions are taken again');
      assert.ok(server.logs.some((l) => l.msg === 'job paused: storage fault' && l.code === 'storage_full'));
    } finally {
      await server.kill();
      fs.remove();
    }
  });

  test('a job store with overwritten pages: /ready 503 with the reason; /health, transcriptions and streams answer; job routes 503', { timeout: 60_000 }, async () => {
    isolateHome();
    const dataDir = join(mkdtempSync(join(tmpdir(), 'earshot-corrupt-')), 'data');
    const lock = DataDirLock.acquire(dataDir);
    const store = JobStore.open(dataDir);
    for (let i = 0; i < 40; i++) {
      const id = newJobId();
      store.create({ id, owner: '', model: 'm', filename: `${'x'.repeat(200)}.wav`, request: { task: 'transcribe', responseFormat: 'json', vadFilter: false }, createdAt: i });
    }
    store.close();
    lock.release();
    // Keep page 1 (the header: the file still opens as SQLite), overwrite the rest.
    const file = join(dataDir, 'jobs.db');
    const size = statSync(file).size;
    assert.ok(size >= 4 * 4096, `a store of several pages (${size} bytes)`);
    const fd = openSync(file, 'r+');
    for (let at = 4096; at < size; at += 4096) writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, at);
    closeSync(fd);

    const server = await startTestServer({ model: modelDir('english'), dataDir, vadFilter: false });
    try {
      const ready = await fetch(`${server.url}/ready`);
      assert.equal(ready.status, 503);
      const body = (await ready.json()) as { status: string; jobs?: string };
      assert.equal(body.status, 'jobs_unavailable');
      assert.match(body.jobs ?? '', /job store .* is damaged: its integrity check failed/);
      assert.ok(!body.jobs!.includes(dataDir), 'the reason names no server path');

      assert.equal((await fetch(`${server.url}/health`)).status, 200);
      assert.equal(await transcribeOnce(server.url), 200);
      const c = await connect(wsUrl(server.url, '/v1/stream'));
      c.ws.send(JSON.stringify({ type: 'start', format: 's16le', sample_rate: 16000 }));
      await c.next('ready');
      c.ws.send(Buffer.alloc(16000 * 2));
      c.ws.send(JSON.stringify({ type: 'end' }));
      assert.equal((await c.closed).code, 1000, 'a stream runs to its end');

      for (const r of [await fetch(`${server.url}/v1/jobs`), await submitJob(server.url, 2), await fetch(`${server.url}/v1/jobs/${newJobId()}`)]) {
        assert.equal(r.status, 503);
        assert.equal(errorBody(await r.json()).code, 'job_store_damaged');
      }
    } finally {
      await server.app.close();
    }
  });

  test('an upload that must be spooled to a full temporary directory gets 507, and the server carries on', { timeout: 60_000 }, async () => {
    isolateHome();
    const model = modelDir('english'); // built before TMPDIR moves
    const full = mountTmpfs(1 << 20);
    const savedTmp = process.env.TMPDIR;
    const restoreTmp = (): void => {
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
    };
    const server = await startTestServer({ model, maxUploadMemoryBytes: 1000, sampleLen: 2 });
    try {
      fill(full.dir);
      process.env.TMPDIR = full.dir; // where the server's spool files go
      const r = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form({ temperature: '0' }, { bytes: jfkClip(2) }) });
      assert.equal(r.status, 507);
      const e = errorBody(await r.json());
      assert.equal(e.code, 'upload_spool_full');
      assert.equal(e.type, 'server_error');
      restoreTmp();
      assert.equal((await fetch(`${server.url}/health`)).status, 200);
      assert.equal(await transcribeOnce(server.url), 200, 'with room again, the same upload is taken');
    } finally {
      restoreTmp();
      await server.app.close();
      full.remove();
    }
  });

  test('a second server on a data directory in use exits 1 with one line, never listening', { timeout: 60_000 }, async () => {
    isolateHome();
    const dataDir = join(mkdtempSync(join(tmpdir(), 'earshot-in-use-')), 'data'); // fresh: no job was ever submitted
    const first = await startTestServer({ model: modelDir('english'), dataDir });
    try {
      const second = await runToExit({ args: ['--model', modelDir('english'), '--port', '0', '--data-dir', dataDir] });
      assert.equal(second.listened, false);
      assert.equal(second.code, 1);
      assert.equal(second.plain.length, 1, second.plain.join('\n'));
      assert.match(second.plain[0]!, /^earshot: the data directory .* is in use by another earshot process/);
      assert.equal((await submitJob(first.url, 2)).status, 202, 'the first server keeps its jobs');
    } finally {
      await first.app.close();
    }
  });

  test('a read-only data directory stops the server at startup with one line', { timeout: 60_000 }, async () => {
    const ro = mountTmpfs(1 << 20, { readOnly: true });
    try {
      for (const dataDir of [ro.dir, join(ro.dir, 'data')]) {
        const r = await runToExit({ args: ['--model', modelDir('english'), '--port', '0', '--data-dir', dataDir] });
        assert.equal(r.listened, false);
        assert.equal(r.code, 1);
        assert.equal(r.plain.length, 1, r.plain.join('\n'));
        assert.match(r.plain[0]!, /^earshot: the data directory .* cannot be written \(EROFS\); give --data-dir a writable directory$/);
      }
    } finally {
      ro.remove();
    }
  });
}
