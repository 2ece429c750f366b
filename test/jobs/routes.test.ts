// /v1/jobs in process, on a built test model, against both job queues (backends.ts: the embedded
// SQLite queue, and Redis with a worker): submission and its validation (the same fields and errors
// as /v1/audio/transcriptions), per-key visibility, results in each response_format, pagination,
// cancel while queued and while running (upload deleted, the slot freed), and the retention purge.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningServer } from '../../src/server/app.ts';
import { form, isolateHome, jfkClip, metricValue, modelDir, occupy, startTestServer } from '../server/helpers.ts';
import { BACKENDS } from './backends.ts';

const A = { authorization: 'Bearer key-a' };
const B = { authorization: 'Bearer key-b' };

isolateHome();

for (const makeBackend of BACKENDS) {
  const backend = makeBackend();
  describe(`the jobs API on ${backend.name}`, () => {
    let server: RunningServer;
    let dataDir: string;

    before(async () => {
      await backend.setup();
      dataDir = join(mkdtempSync(join(tmpdir(), 'earshot-jobs-routes-')), 'data');
      server = await startTestServer({ model: modelDir('english'), apiKeys: ['key-a', 'key-b'], dataDir, vadFilter: false, ...backend.flags() });
      await backend.serve(modelDir('english'));
    });
    after(async () => {
      await server.app.close();
      await backend.teardown();
    });

    async function submit(headers: Record<string, string>, fields: Record<string, string> = {}, seconds = 3): Promise<Response> {
      return fetch(`${server.url}/v1/jobs`, { method: 'POST', headers, body: form(fields, { bytes: jfkClip(seconds) }) });
    }

    async function json(r: Response): Promise<any> {
      return r.json();
    }

    async function waitFor(id: string, headers: Record<string, string>, status: string): Promise<any> {
      let j: any;
      const end = Date.now() + 20_000;
      for (;;) {
        j = await json(await fetch(`${server.url}/v1/jobs/${id}`, { headers }));
        if (j.status === status) return j;
        assert.ok(Date.now() < end, `job ${id} stayed ${j.status}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }

    test('a submission is validated as a transcription request is, then stored: 202 and the job', async () => {
      const noFile = await fetch(`${server.url}/v1/jobs`, { method: 'POST', headers: A, body: form({ model: 'whisper-1' }) });
      assert.equal(noFile.status, 400);
      assert.equal((await json(noFile)).error.code, 'missing_file');
      const badFormat = await submit(A, { response_format: 'docx' });
      assert.equal(badFormat.status, 400);
      assert.equal((await json(badFormat)).error.param, 'response_format');
      const stream = await submit(A, { stream: 'true' });
      assert.equal(stream.status, 400);
      assert.equal((await json(stream)).error.param, 'stream');
      const model = await submit(A, { model: 'whisper-huge' });
      assert.equal(model.status, 404);
      const translate = await submit(A, { task: 'translate' });
      assert.equal((await json(translate)).error.code, 'translation_unsupported');
      assert.equal((await fetch(`${server.url}/v1/jobs`, { method: 'POST', body: form({}, { bytes: jfkClip(1) }) })).status, 401);

      const r = await submit(A, { response_format: 'verbose_json', language: 'en' });
      assert.equal(r.status, 202);
      const job = await json(r);
      assert.match(job.id, /^job_[0-9a-f]{24}$/);
      assert.equal(job.object, 'transcription.job');
      assert.equal(job.status, 'queued');
      assert.equal(job.response_format, 'verbose_json');
      const done = await waitFor(job.id, A, 'completed');
      assert.equal(done.result.task, 'transcribe');
      assert.ok(Math.abs(done.result.duration - 3) < 1e-6);
      assert.equal(done.result.text, done.result.segments.map((s: { text: string }) => s.text).join(''));
      assert.deepEqual(done.progress, { done_seconds: 3, total_seconds: 3 });
      assert.ok(done.expires_at - done.finished_at >= 7 * 86400 - 1);
      // The row says completed first, then the upload goes (a crash in between leaves an orphan that recovery sweeps).
      await untilAsync(async () => (await backend.uploads(dataDir)) === 0);

      // The result in other formats, rendered as /v1/audio/transcriptions renders them.
      const srt = await fetch(`${server.url}/v1/jobs/${job.id}?response_format=srt`, { headers: A });
      assert.match(srt.headers.get('content-type')!, /^text\/plain/);
      const text = await (await fetch(`${server.url}/v1/jobs/${job.id}?response_format=text`, { headers: A })).text();
      assert.equal(text.trim(), done.result.text.trim());
      const srtText = await srt.text();
      for (const s of done.result.segments.filter((x: { text: string }) => x.text.trim() !== '')) assert.ok(srtText.includes(s.text.trim()));
      const bad = await fetch(`${server.url}/v1/jobs/${job.id}?response_format=pdf`, { headers: A });
      assert.equal(bad.status, 400);
      if (backend.name === 'sqlite') {
        // This server ran the job (on a cluster, the worker did).
        const metrics = await (await fetch(`${server.url}/metrics`, { headers: A })).text();
        assert.equal(metricValue(metrics, 'earshot_jobs_finished_total', { status: 'completed' }), 1);
        assert.equal(metricValue(metrics, 'earshot_jobs_running'), 0);
      }
    });

    test('a key sees only its own jobs, newest first, by pages', async () => {
      const mine: string[] = [];
      const gate = occupy(server.ctx.host.ready().queue); // keep them queued: only listing matters here
      try {
        for (let i = 0; i < 3; i++) mine.push((await json(await submit(B))).id);
        const other = (await json(await submit(A))).id;
        assert.equal((await fetch(`${server.url}/v1/jobs/${other}`, { headers: B })).status, 404);
        assert.equal((await fetch(`${server.url}/v1/jobs/${mine[0]}`, { headers: A })).status, 404);
        assert.equal((await fetch(`${server.url}/v1/jobs/${mine[0]}`, { method: 'DELETE', headers: A })).status, 404);
        const p1 = await json(await fetch(`${server.url}/v1/jobs?limit=2`, { headers: B }));
        assert.deepEqual(p1.data.map((j: { id: string }) => j.id), [mine[2], mine[1]]);
        assert.equal(p1.has_more, true);
        const p2 = await json(await fetch(`${server.url}/v1/jobs?limit=2&after=${p1.last_id}`, { headers: B }));
        assert.deepEqual(p2.data.map((j: { id: string }) => j.id), [mine[0]]);
        assert.equal(p2.has_more, false);
        assert.equal((await fetch(`${server.url}/v1/jobs?limit=0`, { headers: B })).status, 400);
        assert.equal((await fetch(`${server.url}/v1/jobs?after=${other}`, { headers: B })).status, 404);
        // Not finished: no result to render yet.
        const early = await fetch(`${server.url}/v1/jobs/${mine[0]}?response_format=srt`, { headers: B });
        assert.equal(early.status, 409);
        // Cancel while queued: gone with its audio.
        assert.ok(await backend.hasUpload(dataDir, mine[0]!));
        const del = await json(await fetch(`${server.url}/v1/jobs/${mine[0]}`, { method: 'DELETE', headers: B }));
        assert.equal(del.status, 'cancelled');
        assert.equal(del.deleted, true);
        assert.equal((await fetch(`${server.url}/v1/jobs/${mine[0]}`, { headers: B })).status, 404);
        assert.equal(await backend.hasUpload(dataDir, mine[0]!), false);
        for (const id of [...mine.slice(1), other]) await fetch(`${server.url}/v1/jobs/${id}`, { method: 'DELETE', headers: id === other ? A : B });
      } finally {
        gate.release();
        await gate.done;
      }
    });

    test('cancel while running stops the job between windows, deletes its audio, and frees the slot', async () => {
      const long = (await json(await submit(A, {}, 150))).id;
      const next = (await json(await submit(A, {}, 2))).id;
      const running = await waitFor(long, A, 'running');
      assert.equal(running.status, 'running');
      const del = await json(await fetch(`${server.url}/v1/jobs/${long}`, { method: 'DELETE', headers: A }));
      assert.equal(del.status, 'cancelled');
      assert.equal((await fetch(`${server.url}/v1/jobs/${long}`, { headers: A })).status, 404);
      await waitFor(next, A, 'completed');
      await untilAsync(async () => (await backend.uploads(dataDir)) === 0);
    });

    test('finished jobs are purged after the retention time', async () => {
      await server.app.close();
      server = await startTestServer({ model: modelDir('english'), apiKeys: ['key-a', 'key-b'], dataDir, vadFilter: false, jobRetentionS: '1s', ...backend.flags() });
      const r = await submit(A);
      const body = await json(r);
      assert.equal(r.status, 202, JSON.stringify(body));
      const id = body.id;
      await waitFor(id, A, 'completed');
      const end = Date.now() + 10_000;
      while ((await fetch(`${server.url}/v1/jobs/${id}`, { headers: A })).status !== 404) {
        assert.ok(Date.now() < end, 'not purged');
        await new Promise((r) => setTimeout(r, 100));
      }
    });
  });
}

async function untilAsync(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
