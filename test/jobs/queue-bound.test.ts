// --job-queue-size holds under concurrency: 20 submissions sent at once to a server that takes 2
// store exactly 2 jobs; the other 18 get 429 `job_queue_full` with OpenAI's error body, and no
// upload of a refused job is left on disk.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningServer } from '../../src/server/app.ts';
import { form, isolateHome, jfkClip, modelDir, occupy, startTestServer } from '../server/helpers.ts';

let server: RunningServer;
let dataDir: string;

before(async () => {
  isolateHome();
  dataDir = join(mkdtempSync(join(tmpdir(), 'earshot-queue-bound-')), 'data');
  server = await startTestServer({ model: modelDir('english'), dataDir, jobQueueSize: 2, vadFilter: false });
});
after(() => server.app.close());

test('20 concurrent submissions with --job-queue-size 2 store exactly 2; the rest get 429', async () => {
  // The model's slots are taken, so no job can finish (and free a place) during the burst.
  const gate = occupy(server.ctx.host.ready().queue);
  try {
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => fetch(`${server.url}/v1/jobs`, { method: 'POST', body: form({ model: 'whisper-1' }, { bytes: jfkClip(2) }) })),
    );
    const statuses = answers.map((r) => r.status).sort();
    assert.deepEqual(statuses, [...Array(2).fill(202), ...Array(18).fill(429)]);
    for (const r of answers.filter((x) => x.status === 429)) {
      const body = (await r.json()) as { error: Record<string, unknown> };
      assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
      assert.equal(body.error.code, 'job_queue_full');
      assert.equal(body.error.type, 'rate_limit_error');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    }
    const list = (await (await fetch(`${server.url}/v1/jobs?limit=100`)).json()) as { data: unknown[] };
    assert.equal(list.data.length, 2);
    assert.equal(readdirSync(join(dataDir, 'audio')).length, 2, 'only the stored jobs keep their upload');
  } finally {
    gate.release();
    await gate.done;
  }
});
