// fp16 files with float16 inputs and outputs (the builder's `halfIo`) on WebGPU, with the state kept
// on the device: float16 encoder states and K/V caches stay there between runs (gathered there for
// beams and batches), float16 logits are picked from there (device-pick.ts casts them) or copied
// back and read as float32. The tokens are the same model's on the CPU (but for near-ties), in both
// merged-decoder forms; a greedy step still moves under 4 KiB; word timing's float16 cross-attention
// weights come back as the CPU's. And `earshot transcribe --device
// webgpu` without --dtype picks the fp16 files (the GPU default, gpu-dtype.test.ts) and says so.
// Small dims and short budgets: lavapipe is slow.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MERGED_FORMS, testModelDir } from '../../scripts/test-model/index.ts';
import { decodeWindow, type WindowDecodeOptions } from '../../src/decoding/decode-window.ts';
import { loadWhisperTokenizer } from '../../src/decoding/tokenizer.ts';
import { parseEngineOptions } from '../../src/engine/execution.ts';
import { hostFloat32 } from '../../src/engine/io-types.ts';
import { BatchScheduler } from '../../src/engine/scheduler.ts';
import { WhisperModel } from '../../src/engine/whisper-model.ts';
import type { ModelRunner } from '../../src/engine/model-types.ts';
import { sameTokensButNearTies } from '../engine/near-tie.ts';
import { type Recorded, recording, relDiff } from '../engine/recording.ts';
import { features } from '../engine/features.ts';

const FP16 = { encoder: 'onnx/encoder_model_fp16.onnx', decoder: 'onnx/decoder_model_merged_fp16.onnx' };

const GREEDY: WindowDecodeOptions = { language: 'en', withoutTimestamps: true, sampleLen: 6 };
const TIMESTAMPS: WindowDecodeOptions = { language: 'en', sampleLen: 6 };
const BEAMS: WindowDecodeOptions = { language: 'en', withoutTimestamps: true, sampleLen: 4, beamSize: 2 };

for (const merged of MERGED_FORMS) {
  test(`float16 I/O on WebGPU (merged decoder: ${merged}), state on the device: the CPU's tokens`, async () => {
    const dir = testModelDir({ preset: 'english', dtypes: ['fp16'], merged, halfIo: true, timestamped: true });
    const files = { encoder: join(dir, FP16.encoder), decoder: join(dir, FP16.decoder) };
    const tokenizer = await loadWhisperTokenizer(dir);
    const load = async (device: 'cpu' | 'webgpu') => {
      const model = await WhisperModel.load(dir, files, parseEngineOptions({ device }));
      try {
        const encoded = await model.encode(features(model.dims.nMels, 1), 1);
        const window = (runner: ModelRunner, opts: WindowDecodeOptions, e = encoded) => decodeWindow(runner, tokenizer, e, opts).then((r) => r.tokens);
        // Logits back to the host (the recording drops the masks): compared with the CPU's.
        const r = recording(model, { logits: true });
        await window(r.runner, TIMESTAMPS);
        const rec: Recorded = r.rec;
        // Greedy picks next to the model (on the device on WebGPU), with and without timestamps.
        const before = { ...model.transfers.step };
        const greedy = [await window(model, GREEDY), await window(model, TIMESTAMPS)];
        const after = model.transfers.step;
        const greedyPerStep = (after.up + after.down - before.up - before.down) / (after.runs - before.runs);
        const beams = await window(model, BEAMS);
        const sched = new BatchScheduler(model, { maxBatch: 4 });
        const two = async (seed: number) => window(sched, GREEDY, await sched.encode(features(model.dims.nMels, seed), 1));
        const batched = await Promise.all([two(1), two(2)]);
        const host = await model.toHost(encoded);
        // Word timing's float16 cross-attention weights, read as float32.
        const cross = await model.crossAttentions(rec.inputs.flat().map(Number).slice(0, 6), encoded, [[0, 1], [1, 2]], 2);
        return { io: model.io, encodedType: encoded.type, encoded: hostFloat32(host), rec, greedy, greedyPerStep, beams, batched, cross };
      } finally {
        await model.release();
      }
    };
    const cpu = await load('cpu');
    const gpu = await load('webgpu');
    assert.equal(gpu.io.cache, 'float16');
    assert.equal(gpu.io.logits, 'float16');
    assert.equal(gpu.encodedType, 'float16');
    assert.ok(relDiff(gpu.encoded, cpu.encoded) < 1e-2, `encoder outputs differ by ${relDiff(gpu.encoded, cpu.encoded)} relative`);
    assert.ok(cpu.rec.inputs.length >= 5, 'a few decoder calls to compare');
    sameTokensButNearTies(gpu.rec, cpu.rec, 'logits via the host');
    assert.deepEqual(gpu.greedy, cpu.greedy, 'greedy, picked on the device');
    assert.deepEqual(gpu.beams, cpu.beams, 'beams, rows gathered on the device');
    assert.deepEqual(gpu.batched, cpu.batched, 'two windows batched, rows gathered on the device');
    assert.equal(gpu.io.crossAttentions, 'float16');
    gpu.cross.weights.forEach((w, i) => assert.ok(relDiff(w, cpu.cross.weights[i]!) < 1e-2, `cross-attention head ${i}: ${relDiff(w, cpu.cross.weights[i]!)} relative`));
    assert.ok(gpu.greedyPerStep < 4096, `greedy on the device: ${gpu.greedyPerStep} bytes per step, less than 4 KiB`);
  });
}

const BIN = new URL('../../bin/earshot.js', import.meta.url).pathname;
const JFK = new URL('../../samples/jfk.wav', import.meta.url).pathname;
let home: string;
before(() => {
  home = mkdtempSync(join(tmpdir(), 'earshot-gpu-fp16-'));
});
after(() => rmSync(home, { recursive: true, force: true }));

function earshot(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH ?? '', HOME: home, EARSHOT_HOME: home, XDG_RUNTIME_DIR: home };
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, cwd: home, timeout: 300_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('earshot transcribe --device webgpu loads the fp16 files unasked, says why, and gives the CPU\'s fp16 transcript', async () => {
  const model = testModelDir({ preset: 'english', dtypes: ['fp16'], halfIo: true });
  const args = (...more: string[]) => ['transcribe', '--model', model, '--temperature', '0', '--sample-len', '8', '--format', 'verbose_json', ...more, JFK];
  const gpu = await earshot(args('--device', 'webgpu'));
  const cpu = await earshot(args('--device', 'cpu', '--dtype', 'fp16'));
  assert.equal(gpu.code, 0, gpu.stderr);
  assert.equal(cpu.code, 0, cpu.stderr);
  const own = gpu.stderr.split('\n').filter((l) => l.startsWith('earshot:'));
  assert.match(own[0] ?? '', /^earshot: device webgpu \(.+\): requested$/);
  assert.equal(own[1], 'earshot: dtype fp16: the GPU default (--dtype fp32 for full precision)');
  type Segment = { text: string; tokens: number[] };
  const segments = (out: string) => (JSON.parse(out) as { segments: Segment[] }).segments.map(({ text, tokens }) => ({ text, tokens }));
  assert.ok(segments(cpu.stdout).some((s) => s.tokens.length > 0), 'the CPU transcript has tokens');
  assert.deepEqual(segments(gpu.stdout), segments(cpu.stdout));
});
