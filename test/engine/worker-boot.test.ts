// The one way earshot starts its worker threads (src/worker-boot.ts), in both of its modes: from the
// TypeScript sources through tsx, and from an esbuild bundle made with the device kit's own settings
// (scripts/device-kit/bundle.ts), run by a bare `node` in a folder where no node_modules (so no tsx)
// can be found.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { build } from 'esbuild';
import { bundleOptions } from '../../scripts/device-kit/bundle.ts';
import { BUNDLED, workerBoot } from '../../src/worker-boot.ts';

const BOOT_MODULE = new URL('../../src/worker-boot.ts', import.meta.url).pathname;

// A worker module in TypeScript (a type annotation, an `as`): it must be compiled to run at all.
const WORKER_TS = `import { parentPort, workerData } from 'node:worker_threads';
const n: number = workerData as number;
parentPort!.postMessage({ doubled: n * 2 });
`;

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'earshot-worker-boot-'));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n'); // ESM, as in the repo
});
after(() => rmSync(dir, { recursive: true, force: true }));

function answer(source: string, workerData: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const w = new Worker(source, { eval: true, workerData });
    w.once('message', (m) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

test('from the sources, the boot registers tsx and runs the .ts worker module', async () => {
  assert.equal(BUNDLED, false);
  const file = join(dir, 'double-worker.ts');
  writeFileSync(file, WORKER_TS);
  assert.deepEqual(await answer(workerBoot(pathToFileURL(file)), 21), { doubled: 42 });
});

test('in a kit bundle, the boot imports the worker entry <name>.mjs beside the bundle, without tsx', async () => {
  const src = join(dir, 'src');
  const out = join(dir, 'out');
  mkdirSync(src);
  writeFileSync(join(src, 'double-worker.ts'), WORKER_TS);
  writeFileSync(
    join(src, 'main.ts'),
    `import { Worker } from 'node:worker_threads';
import { BUNDLED, workerBoot } from ${JSON.stringify(BOOT_MODULE)};
const w = new Worker(workerBoot(new URL('./double-worker.ts', import.meta.url)), { eval: true, workerData: 5 });
w.once('message', (m) => { console.log(JSON.stringify({ bundled: BUNDLED, ...m })); void w.terminate(); });
w.once('error', (e) => { console.error(e); process.exit(1); });
`,
  );
  await build(bundleOptions({ main: join(src, 'main.ts'), 'double-worker': join(src, 'double-worker.ts') }, out));
  // Only the bundle travels: a folder of its own, no node_modules above it, no loader flags.
  const { stdout } = await promisify(execFile)(process.execPath, [join(out, 'main.mjs')], { cwd: out, env: { PATH: process.env.PATH ?? '' } });
  assert.deepEqual(JSON.parse(stdout.trim()), { bundled: true, doubled: 10 });
});
