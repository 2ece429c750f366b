// src/engine/telemetry-off.ts in worker threads: a worker's process.env is its own copy, so the guard
// cannot turn telemetry off from inside one (onnxruntime reads the process's real environment). A
// worker that did not inherit ORT_DISABLE_TELEMETRY=1 must refuse to go on; one started after the
// main thread imported the guard loads. (The whole-process proof is offline.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';

const GUARD = new URL('../../src/engine/telemetry-off.ts', import.meta.url).href;
const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => t.register()).then(() => import(${JSON.stringify(GUARD)}))`;

/** Resolves with the error a worker that loads the guard ends with, or null when it loads. */
function loadInWorker(env: Record<string, string>): Promise<Error | null> {
  return new Promise((resolve) => {
    const w = new Worker(boot, { eval: true, env });
    w.on('error', (e) => resolve(e));
    w.on('exit', () => resolve(null));
  });
}

test('the main thread sets ORT_DISABLE_TELEMETRY=1, overriding a user who set it to 0', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `await import(${JSON.stringify(GUARD)}); console.log(process.env.ORT_DISABLE_TELEMETRY)`], {
    encoding: 'utf8',
    env: { ...process.env, ORT_DISABLE_TELEMETRY: '0' },
  });
  assert.equal(r.stdout.trim(), '1', r.stderr);
});

test('a worker that inherited telemetry off loads; one that did not refuses with a clear error', async () => {
  assert.equal(await loadInWorker({ ...process.env, ORT_DISABLE_TELEMETRY: '1' } as Record<string, string>), null);
  const { ORT_DISABLE_TELEMETRY: _, ...without } = process.env;
  const refused = await loadInWorker(without as Record<string, string>);
  assert.match(String(refused?.message), /onnxruntime telemetry is not off in this worker thread/);
  const reEnabled = await loadInWorker({ ...process.env, ORT_DISABLE_TELEMETRY: '0' } as Record<string, string>);
  assert.match(String(reEnabled?.message), /not off in this worker thread/);
});
