// The GPU code path, on whatever Vulkan adapter this machine has: in CI that is Mesa's lavapipe
// (.ci/run installs it), slow but the same onnxruntime WebGPU provider a real GPU runs. The test
// model's decoder (which once crashed that provider, see scripts/test-model/WEBGPU.md), in both
// merged forms (one graph, and optimum's If as the hub's files have it), decodes on WebGPU as on
// the CPU, token for token but for near-ties; two models in two worker threads can run on it at
// once (onnxruntime's one WebGPU context per process is not thread-safe: device-lock.ts);
// `earshot transcribe --device webgpu`
// gives the CPU's transcript; `auto` says what it chose and why; and with the Vulkan loader
// pointed at no driver, `--device webgpu` is one line saying what to install. Small dims and short
// token budgets throughout: lavapipe takes about half a second per encoder window.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MERGED_FORMS, testModelDir } from '../../scripts/test-model/index.ts';
import { decodeWindow, type WindowDecodeOptions } from '../../src/decoding/decode-window.ts';
import { loadWhisperTokenizer } from '../../src/decoding/tokenizer.ts';
import { parseEngineOptions, type Device } from '../../src/engine/execution.ts';
import { RemoteRunner } from '../../src/engine/remote-runner.ts';
import { WhisperModel } from '../../src/engine/whisper-model.ts';
import { type Recorded, recording, relDiff } from '../engine/recording.ts';
import { features } from '../engine/features.ts';
import { topGap } from '../engine/near-tie.ts';

const BIN = new URL('../../bin/earshot.js', import.meta.url).pathname;
const JFK = new URL('../../samples/jfk.wav', import.meta.url).pathname;
/** A Vulkan loader that finds no driver: a machine without a GPU driver. */
const NO_DRIVER = { VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' };
const NEAR_TIE = 1e-3;

let home: string;
before(() => {
  home = mkdtempSync(join(tmpdir(), 'earshot-gpu-'));
});
after(() => rmSync(home, { recursive: true, force: true }));



for (const merged of MERGED_FORMS) {
  test(`the test model (merged decoder: ${merged}) decodes on WebGPU with the CPU's tokens (near-ties aside) and logits`, async () => {
    const dir = testModelDir({ preset: 'english', merged });
    const files = { encoder: join(dir, 'onnx/encoder_model.onnx'), decoder: join(dir, 'onnx/decoder_model_merged.onnx') };
    const tokenizer = await loadWhisperTokenizer(dir);
    const cases: WindowDecodeOptions[] = [
      { language: 'en', withoutTimestamps: true, sampleLen: 10 },
      { language: 'en', sampleLen: 10 },
    ];
    const runs = {} as Record<Device, { encoded: Float32Array; rec: Recorded[]; tokens: number[][] }>;
    for (const device of ['cpu', 'webgpu'] as const) {
      const model = await WhisperModel.load(dir, files, parseEngineOptions({ device }));
      try {
        const encoded = await model.encode(features(model.dims.nMels, 1), 1);
        const rec: Recorded[] = [];
        const tokens: number[][] = [];
        for (const opts of cases) {
          const r = recording(model, { logits: true });
          tokens.push((await decodeWindow(r.runner, tokenizer, encoded, opts)).tokens);
          rec.push(r.rec);
        }
        // On WebGPU the encoder output stays on the device: toHost copies it back to compare.
        runs[device] = { encoded: ((await model.toHost(encoded)).data as Float32Array).slice(), rec, tokens };
      } finally {
        await model.release();
      }
    }
    const { cpu, webgpu } = runs;
    assert.ok(relDiff(webgpu.encoded, cpu.encoded) < 1e-4, `encoder outputs differ by ${relDiff(webgpu.encoded, cpu.encoded)} relative`);
    cases.forEach((_, i) => {
      const want = cpu.rec[i]!;
      const got = webgpu.rec[i]!;
      assert.ok(want.inputs.length >= 5, `case ${i}: a few decoder calls to compare`);
      for (let c = 0; c < Math.min(want.inputs.length, got.inputs.length); c++) {
        if (want.inputs[c]!.join() !== got.inputs[c]!.join()) {
          // The tokens may part only right after a call whose top two logits were within NEAR_TIE.
          assert.ok(c > 0 && topGap(want.filtered[c - 1]!) < NEAR_TIE, `case ${i}: tokens part at call ${c} without a near-tie`);
          return;
        }
        const d = relDiff(got.raw[c]!, want.raw[c]!);
        assert.ok(d < 1e-4, `case ${i}: logits of call ${c} differ by ${d} relative`);
      }
      assert.deepEqual(webgpu.tokens[i], cpu.tokens[i], `case ${i}: tokens`);
    });
  });
}

test('two models in two worker threads decode on WebGPU at the same time, each as on the CPU', async () => {
  // Two seeds: two sets of weights, so a mix-up between the models would show.
  const dirs = [1, 2].map((seed) => testModelDir({ preset: 'english', seed }));
  const start = (dir: string, device: Device) =>
    RemoteRunner.start({
      dir,
      files: { encoder: join(dir, 'onnx/encoder_model.onnx'), decoder: join(dir, 'onnx/decoder_model_merged.onnx') },
      engine: parseEngineOptions({ device }),
    });
  /** A prompt and a few cached steps; the last step's logits. */
  const steps = async (r: RemoteRunner, seed: number) => {
    const encoded = await r.encode(features(r.dims.nMels, seed), 1);
    let out = await r.decode(BigInt64Array.of(50257n, 50362n), 1, encoded, null);
    for (const t of [440n, 2068n, 7586n, 291n]) out = await r.decode(BigInt64Array.of(t), 1, encoded, out.cache);
    return out.logits;
  };
  const cpu = await Promise.all(dirs.map((d) => start(d, 'cpu')));
  const want = await Promise.all(cpu.map((r, i) => steps(r, i)));
  await Promise.all(cpu.map((r) => r.release()));
  assert.ok(relDiff(want[0]!, want[1]!) > 1e-2, 'the two models differ');
  const gpu = await Promise.all(dirs.map((d) => start(d, 'webgpu')));
  try {
    for (let round = 0; round < 2; round++) {
      const got = await Promise.all(gpu.map((r, i) => steps(r, i)));
      got.forEach((g, i) => assert.ok(relDiff(g, want[i]!) < 1e-4, `round ${round}, model ${i}: ${relDiff(g, want[i]!)} relative`));
    }
  } finally {
    await Promise.all(gpu.map((r) => r.release()));
  }
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function earshot(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const full = { PATH: process.env.PATH ?? '', HOME: home, EARSHOT_HOME: home, XDG_RUNTIME_DIR: home, ...env };
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: full, cwd: home, timeout: 300_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** earshot's own stderr lines (Dawn writes its warnings there too). */
const ownLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('earshot:'));

/** Greedy and short, so that lavapipe gets through it quickly; the segments carry their tokens. */
const transcribe = (model: string, device: string) =>
  ['transcribe', '--model', model, '--device', device, '--temperature', '0', '--sample-len', '12', '--format', 'verbose_json', JFK];

test('earshot transcribe --device webgpu gives the CPU\'s transcript, token for token, and says which adapter', async () => {
  const model = testModelDir({ preset: 'english' });
  const cpu = await earshot(transcribe(model, 'cpu'));
  const gpu = await earshot(transcribe(model, 'webgpu'));
  assert.equal(cpu.code, 0, cpu.stderr);
  assert.equal(gpu.code, 0, gpu.stderr);
  type Segment = { text: string; tokens: number[]; start: number; end: number; avg_logprob: number };
  const segments = (r: Run) => (JSON.parse(r.stdout) as { segments: Segment[] }).segments;
  const words = (r: Run) => segments(r).map(({ text, tokens, start, end }) => ({ text, tokens, start, end }));
  assert.ok(segments(cpu).length > 0 && segments(cpu).every((s) => s.tokens.length > 0), 'the CPU transcript has tokens');
  assert.deepEqual(words(gpu), words(cpu));
  segments(gpu).forEach((s, i) => assert.ok(Math.abs(s.avg_logprob - segments(cpu)[i]!.avg_logprob) < 1e-4, `segment ${i}: log-probabilities`));
  assert.deepEqual(ownLines(cpu.stderr), [], 'the default device is not announced');
  const [line, ...rest] = ownLines(gpu.stderr);
  assert.match(line ?? '', /^earshot: device webgpu \(.+\): requested$/);
  // The model has no fp16 files, so the GPU's fp16 default does not apply (gpu-dtype.test.ts).
  assert.deepEqual(rest, ["earshot: dtype fp32: the model's default: it has no fp16 files for the GPU default"]);
});

test('--device auto says what it chose and why; --device webgpu without a driver is one line naming what to install', async () => {
  const model = testModelDir({ preset: 'english' });
  const args = ['transcribe', '--model', model, '--temperature', '0', '--sample-len', '4', '--format', 'json', JFK];
  const none = await earshot([...args, '--device', 'webgpu'], NO_DRIVER);
  assert.equal(none.code, 1);
  assert.equal(none.stdout, '');
  assert.deepEqual(ownLines(none.stderr), [
    ownLines(none.stderr).find((l) => /^earshot: no usable WebGPU adapter \(.*\): install a Vulkan driver .*libvulkan1.*--device cpu/.test(l)),
  ]);

  const auto = await earshot([...args, '--device', 'auto'], NO_DRIVER);
  assert.equal(auto.code, 0, auto.stderr);
  assert.deepEqual(ownLines(auto.stderr), ['earshot: device cpu: auto: no CUDA provider, no usable WebGPU adapter (Failed to get a WebGPU adapter: No supported adapters)']);
  const cpu = await earshot([...args, '--device', 'cpu']);
  assert.equal(auto.stdout, cpu.stdout, 'auto on the CPU transcribes as the CPU does');

  // With this machine's adapter: lavapipe in CI, a software one, so auto keeps to the CPU; a
  // hardware adapter is taken (device.test.ts checks that branch on hand-made facts).
  const here = await earshot([...args, '--device', 'auto']);
  assert.equal(here.code, 0, here.stderr);
  const [line] = ownLines(here.stderr);
  assert.match(line ?? '', /^earshot: device (cpu: auto: no CUDA provider; the only WebGPU adapter, .+, is a software one|webgpu \(.+\): auto: no CUDA provider; WebGPU adapter .+)$/);
});
