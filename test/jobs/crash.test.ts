// Crash recovery end to end: 20 jobs are queued on a real `earshot serve` child process, which is
// killed with SIGKILL while a long job is part-way through; a new process on the same data
// directory finishes them all. Every job completes exactly once (the runners' "job completed"
// log lines of both processes, counted by id), none is lost, a job interrupted mid-audio resumes
// from the window it reached without repeating one, and no uploaded audio is left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { form, jfkClip, modelDir } from '../server/helpers.ts';
import { spawnServer, waitReady, type ChildServer } from './child-server.ts';

const KEY = 'crash-test-key';
const AUTH = { authorization: `Bearer ${KEY}` };

async function startServer(home: string, dataDir: string): Promise<ChildServer> {
  const s = await spawnServer({
    args: ['--model', modelDir('english'), '--port', '0', '--data-dir', dataDir, '--sample-len', '3', '--threads', '1', '--api-key', KEY, '--job-concurrency', '2'],
    env: { EARSHOT_HOME: home },
  });
  await waitReady(s.url);
  return s;
}

async function job(url: string, id: string): Promise<Record<string, any>> {
  const r = await fetch(`${url}/v1/jobs/${id}`, { headers: AUTH });
  assert.equal(r.status, 200);
  return (await r.json()) as Record<string, any>;
}

test('20 jobs survive kill -9 mid-run: all complete once, none lost, resumed mid-audio, no orphan audio', { timeout: 180_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'earshot-crash-'));
  const dataDir = join(home, 'jobs-data');
  let server = await startServer(home, dataDir);
  const ids: string[] = [];
  const lengths: number[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      // A long job first (ten 30 s windows), one of 75 s through the VAD filter, then short ones.
      const seconds = i === 0 ? 300 : i === 1 ? 75 : 4 + i;
      lengths.push(seconds);
      const fields: Record<string, string> = { model: 'whisper-1', response_format: 'srt', vad_filter: i === 1 ? 'true' : 'false' };
      const r = await fetch(`${server.url}/v1/jobs`, { method: 'POST', headers: AUTH, body: form(fields, { bytes: jfkClip(seconds), name: `clip${i}.wav` }) });
      assert.equal(r.status, 202);
      const body = (await r.json()) as Record<string, any>;
      assert.match(body.id, /^job_[0-9a-f]{24}$/);
      assert.equal(body.status === 'queued' || body.status === 'running', true);
      ids.push(body.id);
    }
    // Kill once a long job has stored at least one window but not all of them.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const j = await job(server.url, ids[0]!);
      if (j.status === 'running' && j.progress.done_seconds > 0 && j.progress.done_seconds < j.progress.total_seconds) break;
      assert.notEqual(j.status, 'completed', 'the long job finished before the kill: nothing was interrupted');
      assert.ok(Date.now() < deadline, 'the long job never got part-way');
      await new Promise((r) => setTimeout(r, 20));
    }
    await server.kill();
    const before = server.logs;

    server = await startServer(home, dataDir);
    const end = Date.now() + 120_000;
    let states: Array<Record<string, any>> = [];
    for (;;) {
      states = await Promise.all(ids.map((id) => job(server.url, id)));
      if (states.every((s) => s.status === 'completed' || s.status === 'failed')) break;
      assert.ok(Date.now() < end, `jobs did not finish: ${states.map((s) => s.status).join(',')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(states.map((s) => s.status), ids.map(() => 'completed'), 'every job completed');

    // Exactly one completion per job, across both processes.
    const completions = [...before, ...server.logs].filter((e) => e.msg === 'job completed').map((e) => e.jobId as string);
    assert.equal(completions.length, 20);
    assert.deepEqual([...completions].sort(), [...ids].sort());
    // The long job was resumed from a stored window, not started over.
    const resumed = server.logs.filter((e) => e.msg === 'job resumed' && e.jobId === ids[0]);
    assert.equal(resumed.length, 1);
    assert.ok((resumed[0]!.seek as number) > 0);
    assert.ok(server.logs.some((e) => e.msg === 'jobs recovered'));

    for (const [i, s] of states.entries()) {
      assert.ok(Math.abs(s.progress.total_seconds - lengths[i]!) < 0.01);
      assert.equal(s.progress.done_seconds, s.progress.total_seconds);
      // Each window's segments once, in order: ids 0..n-1, seeks never going back.
      const r = await fetch(`${server.url}/v1/jobs/${s.id}?response_format=verbose_json`, { headers: AUTH });
      const v = (await r.json()) as { duration: number; segments: Array<{ id: number; seek: number; start: number }> };
      assert.deepEqual(v.segments.map((x) => x.id), v.segments.map((_, k) => k));
      for (let k = 1; k < v.segments.length; k++) {
        assert.ok(v.segments[k]!.seek >= v.segments[k - 1]!.seek, `job ${i}: a window repeated`);
        assert.ok(v.segments[k]!.start >= v.segments[k - 1]!.start, `job ${i}: time went back`);
      }
      if (i === 0) assert.ok(new Set(v.segments.map((x) => x.seek)).size >= 2, 'the long job spans several windows');
    }
    assert.deepEqual(readdirSync(join(dataDir, 'audio')), [], 'no audio left once every job finished');
  } finally {
    await server.kill();
  }
});
