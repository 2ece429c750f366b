// `bench gpu` measures each device at the dtype a user gets there by default: the GPU (webgpu, cuda)
// at fp16, the CPU at fp32, both from one test model folder holding both; `--dtype` puts every device
// at the one asked. Each figure records its dtype per device. The measures run as the bench's own
// children do (`--only`), on this machine's adapter (lavapipe in CI): small dims, one batch size.
// On a GPU an encoder run is timed until its output is there, not until it is queued.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { benchModel } from '../../bench/lib/gpu-measures.ts';
import type { Results } from '../../bench/lib/gpu-results.ts';

const RUN = new URL('../../bench/run.ts', import.meta.url).pathname;
let home: string;
before(() => {
  home = mkdtempSync(join(tmpdir(), 'earshot-bench-gpu-'));
});
after(() => rmSync(home, { recursive: true, force: true }));

test('bench gpu: one folder; the GPU loads its fp16 files, the CPU its fp32 ones; --dtype puts every device at the one asked', async () => {
  const files = async (device: 'cpu' | 'webgpu' | 'cuda', asked?: string) => {
    const m = await benchModel('small', device, asked);
    return { dir: m.dir, dtype: m.dtype, encoder: relative(m.dir, m.encoderPath), decoder: relative(m.dir, m.decoderPath) };
  };
  const cpu = await files('cpu');
  const fp16 = { encoder: 'fp16', decoder: 'fp16' };
  const fp32 = { encoder: 'fp32', decoder: 'fp32' };
  assert.deepEqual(cpu, { dir: cpu.dir, dtype: fp32, encoder: 'onnx/encoder_model.onnx', decoder: 'onnx/decoder_model_merged.onnx' });
  for (const gpu of ['webgpu', 'cuda'] as const) {
    assert.deepEqual(await files(gpu), { dir: cpu.dir, dtype: fp16, encoder: 'onnx/encoder_model_fp16.onnx', decoder: 'onnx/decoder_model_merged_fp16.onnx' });
    assert.deepEqual(await files(gpu, 'fp32'), cpu);
  }
  assert.deepEqual((await files('cpu', 'fp16')).dtype, fp16);
});

function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH ?? '', HOME: home, EARSHOT_HOME: home, XDG_RUNTIME_DIR: home, ORT_DISABLE_TELEMETRY: '1' };
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', RUN, 'gpu', ...args], { env, timeout: 300_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** One kernels measure on `device`, as the bench's child runs it; its figures. */
async function kernels(device: string, ...more: string[]): Promise<Results['doc']['figures']> {
  const out = mkdtempSync(join(home, 'out-'));
  const r = await bench(['--only', `kernels:small:${device}`, '--out', out, '--decoder-batches', '1', '--steps', '2', ...more]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(readFileSync(join(out, 'gpu-bench.json'), 'utf8')) as Results['doc']).figures;
}

test('bench gpu kernels: each figure records its dtype; webgpu at fp16, the CPU at fp32, webgpu at fp32 with --dtype fp32', async () => {
  const cases = [
    { device: 'webgpu', args: ['--encoder-batches', '1'], dtype: 'fp16', measures: ['encoder ms per run, batch 1', 'decoder ms per step, batch 1'] },
    { device: 'cpu', args: ['--encoder-batches', '1'], dtype: 'fp32', measures: ['encoder ms per run, batch 1', 'decoder ms per step, batch 1'] },
    { device: 'webgpu', args: ['--encoder-batches', '0', '--dtype', 'fp32'], dtype: 'fp32', measures: ['decoder ms per step, batch 1'] },
  ];
  for (const c of cases) {
    const figures = await kernels(c.device, ...c.args);
    assert.deepEqual(figures.map((f) => f.measure), c.measures, `${c.device} ${c.args.join(' ')}`);
    for (const f of figures) {
      assert.deepEqual(f.dtypes, { [c.device]: c.dtype }, `${c.device} ${f.measure}`);
      assert.ok(f.values[c.device]! > 0, `${c.device} ${f.measure}: ${f.values[c.device]}`);
      // On a GPU an encoder run is timed up to its output (encode returns once it is queued).
      if (f.measure.startsWith('encoder')) assert.equal((f.detail?.[c.device] as { runsPerSync: number }).runsPerSync, c.device === 'cpu' ? 1 : 8);
    }
  }
});

test('bench gpu --dtype with an unknown dtype: one line, exit 1, nothing written', async () => {
  const out = join(home, 'bad');
  const r = await bench(['--dtype', 'fp12', '--out', out]);
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^bench gpu: --dtype: invalid dtype "fp12"/);
  assert.equal(existsSync(out), false, 'nothing written');
});
