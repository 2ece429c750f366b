// Idle unload (--model-ttl): with a small TTL the model unloads once idle, never while a request
// holds it (even one that outlasts the TTL in the queue), /ready stays 200 (the default model can
// still serve), and the next request loads it again and waits for it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { form, isolateHome, jfkClip, metricValue, occupy, startTestServer, until } from './helpers.ts';

const TTL_S = 0.3;
const english = testModelDir({ preset: 'english', dtypes: ['fp32', 'q8'] });
let server: RunningServer;
let home: string;

before(async () => {
  home = isolateHome();
  server = await startTestServer({ model: english, modelId: 'short-lived', modelTtlS: TTL_S, vadFilter: false });
});
after(async () => {
  await server.app.close();
  await unloadAll();
  rmSync(home, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hosted = () => server.ctx.host.get('short-lived');

async function transcribe(): Promise<number> {
  const r = await fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form({ model: 'short-lived' }, { bytes: jfkClip(1) }) });
  await r.arrayBuffer();
  return r.status;
}

test('an idle model unloads after the TTL; /ready stays 200; the next request loads it again', async () => {
  await until(() => hosted().state === 'idle', 3000);
  assert.equal(hosted().current, undefined);
  assert.equal((await fetch(`${server.url}/ready`)).status, 200, 'the default model can still serve');
  let metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.equal(metricValue(metrics, 'earshot_models_loaded', { model: 'short-lived' }), 0);
  assert.equal(metricValue(metrics, 'earshot_model_unloads_total', { model: 'short-lived', reason: 'idle' }), 1);

  assert.equal(await transcribe(), 200, 'the request waits for the reload');
  metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.equal(metricValue(metrics, 'earshot_model_loads_total', { model: 'short-lived' }), 2);
});

test('never unloaded while leased, even for several TTLs', async () => {
  const held = await server.ctx.host.lease('short-lived');
  await sleep(TTL_S * 1000 * 4);
  assert.equal(hosted().current?.whisper, held.whisper, 'still loaded while leased');
  assert.equal(hosted().state, 'ready');
  held.release();
  await until(() => hosted().state === 'idle', 3000);
});

test('a request waiting in the queue past the TTL keeps the model loaded', async () => {
  const lease = await server.ctx.host.lease('short-lived');
  const w = lease.whisper;
  lease.release();
  const hold = occupy(w.queue);
  const request = transcribe();
  await until(() => w.queue.stats().waiting === 1);
  await sleep(TTL_S * 1000 * 4);
  assert.equal(hosted().current?.whisper, w, 'not unloaded during the request');
  hold.release();
  assert.equal(await request, 200);
  await until(() => hosted().state === 'idle', 3000);
});
