// Hot swap under load: requests are in flight on the served model (held in its queue, whose
// running slots the test occupies) while POST /v1/models/{id}/load swaps the dtype, then the
// folder (one under --models-dir, named by its name there). Every request succeeds, requests made after the swap run on the new version (they
// finish while the old version's queue is still blocked), and the old instance is released only
// once its requests are done.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { type Whisper } from '../../src/runtime/loaded-model.ts';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import type { ModelEvent } from '../../src/server/model-registry.ts';
import { form, isolateHome, jfkClip, metricValue, occupy, startTestServer, until } from './helpers.ts';

const english = testModelDir({ preset: 'english', dtypes: ['fp32', 'q8'] });
const multilingual = testModelDir({ preset: 'multilingual' });
const ID = 'swappable';
let server: RunningServer;
let home: string;
const events: ModelEvent[] = [];

before(async () => {
  home = isolateHome();
  server = await startTestServer({ model: english, modelId: ID, dtype: 'fp32', vadFilter: false, queueSize: 16, modelsDir: dirname(multilingual) });
  server.ctx.host.onEvent((e) => events.push(e));
});
after(async () => {
  await server.app.close();
  await unloadAll();
  rmSync(home, { recursive: true, force: true });
});

async function transcribe(model: string, task: 'transcriptions' | 'translations' = 'transcriptions'): Promise<{ status: number; body: { text?: string; error?: { code: string } } }> {
  const r = await fetch(`${server.url}/v1/audio/${task}`, { method: 'POST', body: form({ model }, { bytes: jfkClip(1) }) });
  return { status: r.status, body: (await r.json()) as { text?: string; error?: { code: string } } };
}

async function load(id: string, body?: object): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${server.url}/v1/models/${id}/load`, {
    method: 'POST',
    ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

/** Whether the instance's sessions still run (a released session refuses). */
async function runs(w: Whisper): Promise<boolean> {
  const { nMels, chunkFrames } = w.features.config;
  try {
    await w.model.encode(new Float32Array(nMels * chunkFrames), 1);
    return true;
  } catch {
    return false;
  }
}

/** Occupies the model's running slots, then sends `n` requests that wait in its queue. */
async function inFlight(w: Whisper, n: number, model: string) {
  const hold = occupy(w.queue);
  const requests = Array.from({ length: n }, () => transcribe(model));
  await until(() => w.queue.stats().waiting === n);
  return { hold, requests };
}

test('a dtype swap while requests are in flight: all succeed, later ones use the new version, the old one is released after its last request', async () => {
  const host = server.ctx.host;
  const old = host.ready();
  assert.equal(old.resolved.dtype.encoder, 'fp32');
  const { hold, requests } = await inFlight(old, 3, ID);

  const swap = await load(ID, { dtype: 'q8' });
  assert.equal(swap.status, 200, JSON.stringify(swap.body));
  assert.equal(swap.body.dtype, 'q8');
  assert.equal(swap.body.loaded, true);
  const fresh = host.ready();
  assert.notEqual(fresh, old);
  assert.equal(fresh.resolved.dtype.encoder, 'q8');
  assert.equal(old.queue.stats().waiting, 3, 'the old requests still wait on the old version');

  // The old queue is still blocked: these can only finish on the new version.
  const later = await Promise.all([transcribe(ID), transcribe('whisper-1')]);
  for (const r of later) assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(await runs(old), 'not released while its requests are in flight');
  assert.equal(events.some((e) => e.type === 'released' && e.whisper === old), false);

  hold.release();
  await hold.done;
  for (const r of await Promise.all(requests)) {
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(typeof r.body.text, 'string');
  }
  await until(() => events.some((e) => e.type === 'released' && e.whisper === old));
  assert.equal(await runs(old), false, 'the old instance is released');
  assert.ok(await runs(fresh));

  const listed = (await (await fetch(`${server.url}/v1/models/${ID}`)).json()) as Record<string, unknown>;
  assert.equal(listed.dtype, 'q8');
  assert.equal(listed.loaded, true);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.equal(metricValue(metrics, 'earshot_model_loads_total', { model: ID }), 2);
  assert.equal(metricValue(metrics, 'earshot_models_loaded', { model: ID }), 1);
});

test('a folder swap: an English-only model becomes a multilingual one without a failed request', async () => {
  const host = server.ctx.host;
  const before = await transcribe(ID, 'translations');
  assert.equal(before.status, 400, 'translation needs a multilingual model');
  const old = host.ready();
  const { hold, requests } = await inFlight(old, 2, 'whisper-1');

  const swap = await load(ID, { model: basename(multilingual) });
  assert.equal(swap.status, 200, JSON.stringify(swap.body));
  assert.equal(swap.body.model, basename(multilingual), 'shown by the name the request gave, not its path');
  assert.equal(swap.body.dtype, 'fp32', 'a new folder without a dtype takes its default (fp32 on the CPU), not the q8 asked for before');
  const translated = await transcribe(ID, 'translations');
  assert.equal(translated.status, 200, JSON.stringify(translated.body));

  hold.release();
  for (const r of await Promise.all(requests)) assert.equal(r.status, 200, JSON.stringify(r.body));
  await until(() => events.some((e) => e.type === 'released' && e.whisper === old));
  assert.equal(await runs(old), false);
});

test('a failed reload keeps the version that serves', async () => {
  const host = server.ctx.host;
  const serving = host.ready();
  const bad = await load(ID, { dtype: 'q4' }); // the test model has no q4 files
  assert.equal(bad.status, 404, JSON.stringify(bad.body));
  assert.equal(host.ready(), serving);
  assert.equal((await transcribe(ID)).status, 200);
  assert.equal((await fetch(`${server.url}/ready`)).status, 200);
});
