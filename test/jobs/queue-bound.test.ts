// --job-queue-size holds under concurrency, on both job queues (backends.ts): 20 submissions sent
// at once to a server that takes 2 store exactly 2 jobs; the other 18 get 429 `job_queue_full` with
// OpenAI's error body, and no upload of a refused job is kept; bad uploads get the same 4xx (or failed
// job) on both. On Redis, --max-queued-bytes bounds the queued uploads' bytes the same way.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningServer } from '../../src/server/app.ts';
import { form, isolateHome, jfkClip, modelDir, occupy, startTestServer } from '../server/helpers.ts';
import { BACKENDS } from './backends.ts';

isolateHome();

async function burst(url: string, n: number, seconds: number): Promise<Response[]> {
  return Promise.all(Array.from({ length: n }, () => fetch(`${url}/v1/jobs`, { method: 'POST', body: form({ model: 'whisper-1' }, { bytes: jfkClip(seconds) }) })));
}

async function assertRefused(answers: Response[], code: string): Promise<void> {
  for (const r of answers.filter((x) => x.status === 429)) {
    const body = (await r.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error.code, code);
    assert.equal(body.error.type, 'rate_limit_error');
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
  }
}

for (const makeBackend of BACKENDS) {
  const backend = makeBackend();
  describe(`the job queue's bounds and bad input on ${backend.name}`, () => {
    let server: RunningServer;
    let dataDir: string;

    before(async () => {
      await backend.setup();
      dataDir = join(mkdtempSync(join(tmpdir(), 'earshot-queue-bound-')), 'data');
      // A WAV of s seconds (16-bit, 16 kHz) is 44 + 32 000 s bytes: 3 uploads of 2 s fill --max-queued-bytes.
      server = await startTestServer({ model: modelDir('english'), dataDir, jobQueueSize: 2, maxQueuedBytes: 3 * 64_044, maxUploadBytes: 200_000, vadFilter: false, ...backend.flags() });
      await backend.serve(modelDir('english'));
    });
    after(async () => {
      await server.app.close();
      await backend.teardown();
    });

    test('20 concurrent submissions with --job-queue-size 2 store exactly 2; the rest get 429', async () => {
      // The model's slots are taken, so no job can finish (and free a place) during the burst.
      const gate = occupy(server.ctx.host.ready().queue);
      try {
        const answers = await burst(server.url, 20, 2);
        const statuses = answers.map((r) => r.status).sort();
        assert.deepEqual(statuses, [...Array(2).fill(202), ...Array(18).fill(429)]);
        await assertRefused(answers, 'job_queue_full');
        const list = (await (await fetch(`${server.url}/v1/jobs?limit=100`)).json()) as { data: Array<{ id: string }> };
        assert.equal(list.data.length, 2);
        assert.equal(await backend.uploads(dataDir), 2, 'only the stored jobs keep their upload');
        for (const j of list.data) await fetch(`${server.url}/v1/jobs/${j.id}`, { method: 'DELETE' });
        assert.equal(await backend.uploads(dataDir), 0);
      } finally {
        gate.release();
        await gate.done;
      }
    });

    test('bad input: an upload over --max-upload-bytes gets 413, an empty one 400, audio that is none fails the job with unsupported_format', async () => {
      const big = await burst(server.url, 1, 7);
      assert.equal(big[0]!.status, 413);
      assert.equal(((await big[0]!.json()) as { error: { code: string } }).error.code, 'file_too_large');
      const empty = await fetch(`${server.url}/v1/jobs`, { method: 'POST', body: form({ model: 'whisper-1' }, { bytes: new Uint8Array(0) }) });
      assert.equal(empty.status, 400);
      assert.equal(((await empty.json()) as { error: { code: string } }).error.code, 'empty_file');
      const junk = await fetch(`${server.url}/v1/jobs`, { method: 'POST', body: form({ model: 'whisper-1' }, { bytes: new TextEncoder().encode('not audio at all, '.repeat(100)) }) });
      assert.equal(junk.status, 202);
      const { id } = (await junk.json()) as { id: string };
      let job: { status: string; error: { code: string } | null } | undefined;
      const end = Date.now() + 20_000;
      while ((job = (await (await fetch(`${server.url}/v1/jobs/${id}`)).json()) as typeof job)!.status !== 'failed') {
        assert.ok(Date.now() < end, `job stayed ${job!.status}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(job!.error!.code, 'unsupported_format');
      // The runner records the failure, then deletes the upload (the SQLite runner a moment after).
      for (const gone = Date.now() + 2000; (await backend.uploads(dataDir)) !== 0; ) {
        assert.ok(Date.now() < gone, 'the failed job keeps no upload');
        await new Promise((r) => setTimeout(r, 10));
      }
    });

    if (backend.name === 'redis') {
      test('--max-queued-bytes: a submission whose upload would pass it gets 429 job_queue_bytes_full', async () => {
        const gate = occupy(server.ctx.host.ready().queue);
        try {
          const first = await burst(server.url, 2, 1.5);
          assert.deepEqual(first.map((r) => r.status), [202, 202]);
          // Free one place: one job of 48 044 bytes is left; a 5 s upload (160 044) would pass the 192 132 bytes.
          const ids = ((await (await fetch(`${server.url}/v1/jobs?limit=100`)).json()) as { data: Array<{ id: string }> }).data.map((j) => j.id);
          await fetch(`${server.url}/v1/jobs/${ids[0]}`, { method: 'DELETE' });
          const big = await burst(server.url, 1, 5);
          assert.equal(big[0]!.status, 429);
          await assertRefused(big, 'job_queue_bytes_full');
          const fits = await burst(server.url, 1, 3);
          assert.equal(fits[0]!.status, 202);
          assert.equal(await backend.uploads(dataDir), 2, 'the refused upload was not kept');
          const metrics = await (await fetch(`${server.url}/metrics`)).text();
          assert.match(metrics, /earshot_jobs_queued_bytes 144088/);
        } finally {
          gate.release();
          await gate.done;
        }
      });
    }
  });
}
