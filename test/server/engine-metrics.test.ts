// What an operator sees of the engine on /metrics: the device a model runs on, and the batching
// scheduler's runs as histograms (rows per run, each call's wait, each run's model time), checked
// against the model worker's own run and row counters over a few concurrent requests.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { unloadAll } from '../../src/runtime/model-cache.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { form, isolateHome, jfkClip, metricValue, modelDir, startTestServer } from './helpers.ts';

let server: RunningServer;
let home: string;

before(async () => {
  home = isolateHome();
  server = await startTestServer({ model: modelDir('english') });
});

after(async () => {
  await server.app.close();
  await unloadAll();
  rmSync(home, { recursive: true, force: true });
});

const KINDS = ['encode', 'prompt', 'step'] as const;

async function scrape(): Promise<string> {
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

test('/metrics names the device a model runs on (cpu here, with no adapter)', async () => {
  const model = server.ctx.host.id;
  const text = await scrape();
  assert.equal(metricValue(text, 'earshot_device_info', { model, device: 'cpu', vendor: '', adapter: '' }), 1);
  assert.equal(metricValue(text, 'earshot_device_info', { model }), 1, 'one device per model');
  assert.doesNotMatch(text, /^earshot_webgpu_adapter_limit\{/m, 'no adapter limits on the CPU');
});

test('batched runs move the batch histograms as the worker counts them: rows, waits and run times by kind', async () => {
  const w = server.ctx.host.ready();
  const model = server.ctx.host.id;
  const statsBefore = await w.model.stats();
  const textBefore = await scrape();
  const count = (text: string, name: string, kind: string) => metricValue(text, `${name}_count`, { model, kind });
  const sum = (text: string, name: string, kind: string) => metricValue(text, `${name}_sum`, { model, kind });

  // Three requests at once, so that the scheduler has company to batch.
  const clips = [2, 3, 4];
  const answers = await Promise.all(
    clips.map((s) =>
      fetch(`${server.url}/v1/audio/transcriptions`, { method: 'POST', body: form({ model: 'whisper-1', vad_filter: 'false' }, { bytes: jfkClip(s) }) }),
    ),
  );
  for (const a of answers) assert.equal(a.status, 200, await a.clone().text());

  // Each run's report reaches the main thread before that run's results, so it is in by now.
  const statsAfter = await w.model.stats();
  const text = await scrape();
  for (const kind of KINDS) {
    const runs = statsAfter.runs[kind] - statsBefore.runs[kind];
    const rows = statsAfter.rows[kind] - statsBefore.rows[kind];
    assert.ok(runs > 0, `${kind}: the model ran`);
    assert.equal(count(text, 'earshot_batch_rows', kind) - count(textBefore, 'earshot_batch_rows', kind), runs, `${kind}: one rows sample per run`);
    assert.equal(sum(text, 'earshot_batch_rows', kind) - sum(textBefore, 'earshot_batch_rows', kind), rows, `${kind}: the rows add up`);
    assert.equal(count(text, 'earshot_batch_run_seconds', kind) - count(textBefore, 'earshot_batch_run_seconds', kind), runs, `${kind}: one run time per run`);
    assert.ok(sum(text, 'earshot_batch_run_seconds', kind) > sum(textBefore, 'earshot_batch_run_seconds', kind), `${kind}: runs take time`);
    // Every call waits once: at least one call per run, at most one per row.
    const waits = count(text, 'earshot_batch_queue_wait_seconds', kind) - count(textBefore, 'earshot_batch_queue_wait_seconds', kind);
    assert.ok(waits >= runs && waits <= rows, `${kind}: ${waits} waits for ${runs} runs of ${rows} rows`);
  }
  // On the CPU the encoder takes one window per run: every encoder run in the le="1" bucket.
  const encodeRuns = statsAfter.runs.encode - statsBefore.runs.encode;
  assert.ok(encodeRuns >= clips.length, 'at least a window per request');
  const le1 = (t: string) => metricValue(t, 'earshot_batch_rows_bucket', { model, kind: 'encode', le: '1' });
  assert.equal(le1(text) - le1(textBefore), encodeRuns);
});

test('on WebGPU, /metrics names the adapter as Dawn reports it, with its limits, and the batch histograms fill as on the CPU', async () => {
  // CI's adapter is Mesa's lavapipe (.ci/run installs it); Dawn wants a runtime directory.
  process.env.XDG_RUNTIME_DIR ||= home;
  const gpu = await startTestServer({ model: modelDir('english'), device: 'webgpu' });
  try {
    const model = gpu.ctx.host.id;
    const adapter = gpu.ctx.host.ready().model.device.adapter;
    assert.ok(adapter, 'the probe described the adapter');
    const res = await fetch(`${gpu.url}/v1/audio/transcriptions`, { method: 'POST', body: form({ model: 'whisper-1', vad_filter: 'false' }, { bytes: jfkClip(2) }) });
    assert.equal(res.status, 200);
    const text = await (await fetch(`${gpu.url}/metrics`)).text();
    const info = { model, device: 'webgpu', vendor: adapter.vendor, architecture: adapter.architecture, adapter: adapter.description, fallback: String(adapter.fallback) };
    assert.equal(metricValue(text, 'earshot_device_info', info), 1);
    assert.ok(adapter.limits.maxBufferSize! > 0);
    for (const [limit, value] of Object.entries(adapter.limits)) {
      assert.equal(metricValue(text, 'earshot_webgpu_adapter_limit', { model, limit }), value, limit);
    }
    for (const kind of KINDS) assert.ok(metricValue(text, 'earshot_batch_run_seconds_count', { model, kind }) > 0, `${kind} runs timed on WebGPU`);

    // The tensors kept on the device are freed by their holders as the request ends, not at some
    // later garbage collection (engine/device-refs.ts): none live now, none left to the collector.
    const line = (t: string, name: string) => t.split('\n').find((l) => l.startsWith(`${name}{model="${model}"} `));
    for (const name of ['earshot_device_tensors', 'earshot_device_tensor_bytes', 'earshot_device_tensors_gc_freed']) {
      assert.equal(line(text, name), `${name}{model="${model}"} 0`, `${name} is 0 once the request is done`);
    }
    // An encoder output held by a caller shows, with its bytes as the worker counts them, until finished.
    const runner = gpu.ctx.host.ready().model;
    const encoded = await runner.encode(new Float32Array(runner.dims.nMels * 3000), 1);
    const held = await (await fetch(`${gpu.url}/metrics`)).text();
    const { deviceTensors } = await runner.stats();
    assert.ok(deviceTensors.bytes > 0);
    assert.equal(line(held, 'earshot_device_tensors'), `earshot_device_tensors{model="${model}"} 1`);
    assert.equal(line(held, 'earshot_device_tensor_bytes'), `earshot_device_tensor_bytes{model="${model}"} ${deviceTensors.bytes}`);
    runner.finish(encoded);
    const freed = await (await fetch(`${gpu.url}/metrics`)).text();
    assert.equal(line(freed, 'earshot_device_tensors'), `earshot_device_tensors{model="${model}"} 0`, 'finished, it is freed');
  } finally {
    await gpu.app.close();
  }
});
