// The engine on a built test model: the KV cache gives the same logits as recomputing the whole
// sequence and rows of a cache can be selected for beam search (with both forms of the merged
// decoder: one graph, and optimum's If), dtypes pick the hub's files, and the device option fails
// clearly where CUDA is not installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { MERGED_FORMS, testModelDir, type MergedForm } from '../../scripts/test-model/index.ts';
import { cudaProviderInstalled, parseEngineOptions, resolveDevice, sessionOptions } from '../../src/engine/execution.ts';
import { WhisperModel } from '../../src/engine/whisper-model.ts';
import { selectCacheRows } from '../../src/engine/cache-rows.ts';
import { loadModelHere } from '../../src/runtime/loaded-model.ts';
import { loadWhisper } from '../../src/runtime/model-cache.ts';
import { isEarshotError } from '../../src/errors.ts';

const dir = (merged: MergedForm = 'single') => testModelDir({ preset: 'english', dtypes: ['fp32', 'fp16', 'q8', 'int8'], merged });

function features(nMels: number): Float32Array {
  const f = new Float32Array(nMels * 3000);
  for (let i = 0; i < f.length; i++) f[i] = Math.sin(i * 0.37) * 0.6 - 0.1;
  return f;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

for (const merged of MERGED_FORMS) {
  test(`decoding step by step with the cache gives the logits of a full recomputation (merged decoder: ${merged})`, async (t) => {
    const m = await loadModelHere(await loadWhisper(dir(merged)));
    t.after(() => m.release());
    const encoded = await m.encode(features(m.dims.nMels), 1);
    const prompt = [50257, 50362];
    const more = [440, 2068, 7586];
    let step = await m.decode(BigInt64Array.from(prompt, BigInt), 1, encoded, null);
    for (const t of more) step = await m.decode(BigInt64Array.of(BigInt(t)), 1, encoded, step.cache);
    assert.equal(step.cache.length, prompt.length + more.length);
    const full = await m.decode(BigInt64Array.from([...prompt, ...more], BigInt), 1, encoded, null);
    assert.ok(maxAbsDiff(step.logits, full.logits) < 1e-3);
  });

  test(`cache rows can be picked and repeated (beam reordering; merged decoder: ${merged})`, async (t) => {
    const m = await loadModelHere(await loadWhisper(dir(merged)));
    t.after(() => m.release());
    const encoded = await m.encode(features(m.dims.nMels), 1);
    const first = await m.decode(BigInt64Array.from([50257, 50362], BigInt), 1, encoded, null);
    const three = selectCacheRows(first.cache, [0, 0, 0]);
    assert.equal(three.batch, 3);
    const out = await m.decode(BigInt64Array.from([440, 2068, 440], BigInt), 3, encoded, three);
    const vocab = m.dims.vocabSize;
    const single = await m.decode(BigInt64Array.of(440n), 1, encoded, first.cache);
    assert.ok(maxAbsDiff(out.logits.subarray(0, vocab), single.logits) < 1e-4);
    assert.ok(maxAbsDiff(out.logits.subarray(2 * vocab, 3 * vocab), single.logits) < 1e-4);
    assert.ok(maxAbsDiff(out.logits.subarray(vocab, 2 * vocab), single.logits) > 1e-3, 'another token, other logits');
    const swapped = selectCacheRows(out.cache, [1, 0]);
    assert.deepEqual(swapped.self[0]!.dims.slice(0, 1), [2]);
    assert.throws(() => selectCacheRows(out.cache, [3]), RangeError);
  });
}

test('--dtype picks the hub file names per component, and one load is shared', async () => {
  const d = dir();
  const mixed = await loadWhisper(d, { dtype: 'encoder=fp32,decoder=q8' });
  assert.equal(basename(mixed.resolved.encoderPath), 'encoder_model.onnx');
  assert.equal(basename(mixed.resolved.decoderPath), 'decoder_model_merged_quantized.onnx');
  const int8 = await loadWhisper(d, { dtype: 'int8' });
  assert.equal(basename(int8.resolved.decoderPath), 'decoder_model_merged_int8.onnx');
  assert.equal(await loadWhisper(d, { dtype: 'int8' }), int8, 'the same model and options load once');
  assert.notEqual(int8, mixed);
  // The 8-bit decoder is a different graph: close to fp32 but not bit-identical.
  const fp32 = await loadWhisper(d);
  const enc = await fp32.model.encode(features(fp32.model.dims.nMels), 1);
  const a = await fp32.model.decode(BigInt64Array.of(50257n), 1, enc, null);
  // Each loaded model keeps its encoder outputs in its own worker: the int8 model encodes its own.
  const b = await int8.model.decode(BigInt64Array.of(50257n), 1, await int8.model.encode(features(int8.model.dims.nMels), 1), null);
  const diff = maxAbsDiff(a.logits, b.logits);
  assert.ok(diff > 0 && diff < 1, `int8 vs fp32 logits differ by ${diff}`);
});

test('a folder whose decoder has no KV cache inputs is refused clearly', async () => {
  const d = dir();
  await assert.rejects(
    WhisperModel.load(d, { encoder: `${d}/onnx/encoder_model.onnx`, decoder: `${d}/onnx/encoder_model.onnx` }, parseEngineOptions()),
    (e) => isEarshotError(e) && /merged decoder/.test(e.message),
  );
});

test('device: cpu by default; cuda fails with the install command when absent (device.test.ts has the rest)', () => {
  assert.equal(resolveDevice(parseEngineOptions().device), 'cpu');
  assert.deepEqual(sessionOptions(parseEngineOptions({ intraOpThreads: 2 })).executionProviders, ['cpu']);
  assert.deepEqual(sessionOptions(parseEngineOptions({ device: 'webgpu' })).executionProviders, ['webgpu', 'cpu']);
  if (cudaProviderInstalled()) {
    assert.equal(resolveDevice('cuda'), 'cuda');
  } else {
    assert.throws(() => resolveDevice('cuda'), (e) => isEarshotError(e) && /ONNXRUNTIME_NODE_INSTALL=cuda12/.test(e.message));
  }
  assert.throws(() => parseEngineOptions({ intraOpThreads: -1 }), isEarshotError);
  assert.throws(() => parseEngineOptions({ device: 'tpu' as never }), isEarshotError);
});
