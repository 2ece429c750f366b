// A graceful stop (app.close, as SIGTERM does) interrupts a running job without losing it: it goes
// back to the queue with the windows it had stored (the attempt not counted against it), and the
// next server on the same data directory resumes it from there and completes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobStore } from '../../src/jobs/store.ts';
import { form, isolateHome, jfkClip, modelDir, startTestServer } from '../server/helpers.ts';

async function poll(url: string, id: string, done: (j: any) => boolean): Promise<any> {
  const end = Date.now() + 30_000;
  for (;;) {
    const j = (await (await fetch(`${url}/v1/jobs/${id}`)).json()) as any;
    if (done(j)) return j;
    assert.ok(Date.now() < end, `job stayed ${j.status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a job running at shutdown resumes on the next start from the window it reached', { timeout: 90_000 }, async () => {
  isolateHome();
  const dataDir = join(mkdtempSync(join(tmpdir(), 'earshot-jobs-stop-')), 'data');
  const flags = { model: modelDir('english'), dataDir, vadFilter: false };
  let server = await startTestServer(flags);
  const r = await fetch(`${server.url}/v1/jobs`, { method: 'POST', body: form({ response_format: 'text' }, { bytes: jfkClip(150) }) });
  const { id } = (await r.json()) as { id: string };
  const part = await poll(server.url, id, (j) => j.status === 'running' && j.progress.done_seconds > 0);
  assert.ok(part.progress.done_seconds < 150);
  await server.app.close();

  const store = JobStore.open(dataDir);
  let stored;
  try {
    stored = store.get(id)!;
    assert.equal(stored.status, 'queued');
    assert.ok(stored.nextSeek > 0, 'the windows done are kept');
    assert.equal(stored.interruptions, 0, 'a shutdown does not count as an interruption');
    assert.equal(stored.inWindow, false);
    assert.ok(store.segments(id).every((s) => s.seek < stored!.nextSeek));
  } finally {
    store.close();
  }

  server = await startTestServer(flags);
  try {
    const done = await poll(server.url, id, (j) => j.status === 'completed');
    assert.equal(done.progress.done_seconds, 150);
    assert.equal(done.started_at, part.started_at, 'started when its first run started');
    const v = (await (await fetch(`${server.url}/v1/jobs/${id}?response_format=verbose_json`)).json()) as { segments: Array<{ id: number; seek: number }> };
    assert.deepEqual(v.segments.map((s) => s.id), v.segments.map((_, k) => k));
    for (let k = 1; k < v.segments.length; k++) assert.ok(v.segments[k]!.seek >= v.segments[k - 1]!.seek);
  } finally {
    await server.app.close();
  }
});
