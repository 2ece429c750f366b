// fp16 files whose inputs and outputs are float16 (an fp16 conversion without keep_io_types; the
// builder's `halfIo`), on the CPU: the engine reads every tensor type from the sessions' metadata
// (src/engine/io-types.ts), feeds float16 features, encoder states and empty caches, and reads
// float16 logits and cross-attention weights as float32. The same weights with float32 I/O (the
// builder's plain fp16 form) are the reference: only the rounding at the graph's edges differs, so
// the tokens agree (but for near-ties) and the logits nearly. Both merged-decoder forms; one
// window greedy with timestamps, beams (cache rows chosen on the host), two windows batched through
// the scheduler (float16 rows gathered on the host), and word timing's cross-attention weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MERGED_FORMS, testModelDir } from '../../scripts/test-model/index.ts';
import { decodeWindow, type WindowDecodeOptions } from '../../src/decoding/decode-window.ts';
import { loadWhisperTokenizer } from '../../src/decoding/tokenizer.ts';
import { parseEngineOptions } from '../../src/engine/execution.ts';
import { BatchScheduler } from '../../src/engine/scheduler.ts';
import { WhisperModel } from '../../src/engine/whisper-model.ts';
import type { ModelRunner } from '../../src/engine/model-types.ts';
import { sameTokensButNearTies } from './near-tie.ts';
import { type Recorded, recording, relDiff } from './recording.ts';
import { features } from './features.ts';

const FP16 = { encoder: 'onnx/encoder_model_fp16.onnx', decoder: 'onnx/decoder_model_merged_fp16.onnx' };

const CASES: WindowDecodeOptions[] = [
  { language: 'en', sampleLen: 12 },
  { language: 'en', withoutTimestamps: true, sampleLen: 6, beamSize: 2 },
];

for (const merged of MERGED_FORMS) {
  test(`a model with float16 I/O (merged decoder: ${merged}) transcribes on the CPU as its float32-I/O twin`, async () => {
    const half = testModelDir({ preset: 'english', dtypes: ['fp16'], merged, halfIo: true, timestamped: true });
    const plain = testModelDir({ preset: 'english', dtypes: ['fp16'], merged, timestamped: true });
    const tokenizer = await loadWhisperTokenizer(half);
    const run = async (dir: string) => {
      const model = await WhisperModel.load(dir, { encoder: join(dir, FP16.encoder), decoder: join(dir, FP16.decoder) }, parseEngineOptions({ device: 'cpu' }));
      try {
        const encoded = await model.encode(features(model.dims.nMels, 1), 1);
        const rec: Recorded[] = [];
        for (const opts of CASES) {
          const r = recording(model, { logits: true });
          await decodeWindow(r.runner, tokenizer, encoded, opts);
          rec.push(r.rec);
        }
        // Two windows at once through the scheduler: one encoder batch cut, rows gathered on the host.
        const sched = new BatchScheduler(model, { maxBatch: 4 });
        const one = async (runner: ModelRunner, seed: number) =>
          (await decodeWindow(runner, tokenizer, await runner.encode(features(model.dims.nMels, seed), 1), { language: 'en', withoutTimestamps: true, sampleLen: 6 })).tokens;
        const batched = await Promise.all([one(sched, 1), one(sched, 2)]);
        const alone = [await one(model, 1), await one(model, 2)];
        const heads = [[0, 1], [1, 3]] as const;
        const cross = await model.crossAttentions(rec[0]!.inputs.flat().map(Number).slice(0, 8), encoded, heads, 2);
        return { io: model.io, encodedType: encoded.type, rec, batched, alone, cross };
      } finally {
        await model.release();
      }
    };
    const got = await run(half);
    const want = await run(plain);
    assert.deepEqual(got.io, { features: 'float16', encoded: 'float16', hidden: 'float16', cache: 'float16', logits: 'float16', crossAttentions: 'float16' });
    assert.deepEqual(want.io, { features: 'float32', encoded: 'float32', hidden: 'float32', cache: 'float32', logits: 'float32', crossAttentions: 'float32' });
    assert.equal(got.encodedType, 'float16');
    CASES.forEach((_, i) => {
      const g = got.rec[i]!;
      const w = want.rec[i]!;
      assert.ok(w.inputs.length >= 5, `case ${i}: a few decoder calls to compare`);
      sameTokensButNearTies(g, w, `case ${i}`);
      // float32 logits come out, close to the float32-I/O model's.
      assert.ok(g.raw[0] instanceof Float32Array && g.raw[0].length === w.raw[0]!.length);
      const d = relDiff(g.raw[0]!, w.raw[0]!);
      assert.ok(d < 1e-2, `case ${i}: first logits differ by ${d} relative`);
    });
    assert.deepEqual(got.batched, got.alone, 'batched through the scheduler: the tokens of one window at a time');
    assert.deepEqual(got.batched, want.batched, 'the float32-I/O twin decodes the two windows alike');
    assert.equal(got.cross.weights.length, 2);
    got.cross.weights.forEach((w, i) => {
      assert.ok(w instanceof Float32Array && w.length === got.cross.rows * got.cross.frames);
      assert.ok(relDiff(w, want.cross.weights[i]!) < 1e-2, `head ${i}: attention weights`);
    });
  });
}

test('the builder refuses float16 I/O without the fp16 files', () => {
  assert.throws(() => testModelDir({ preset: 'english', halfIo: true }), /add fp16 to the dtypes/);
});

test('an fp32 encoder before a float16-I/O decoder (encoder=fp32,decoder=fp16): the encoder output is cast once for the decoder', async () => {
  const half = testModelDir({ preset: 'english', dtypes: ['fp16'], halfIo: true });
  const plain = testModelDir({ preset: 'english', dtypes: ['fp16'] });
  const tokenizer = await loadWhisperTokenizer(half);
  const run = async (dir: string) => {
    const model = await WhisperModel.load(dir, { encoder: join(dir, 'onnx/encoder_model.onnx'), decoder: join(dir, FP16.decoder) }, parseEngineOptions({ device: 'cpu' }));
    try {
      const encoded = await model.encode(features(model.dims.nMels, 3), 1);
      const r = recording(model, { logits: true });
      await decodeWindow(r.runner, tokenizer, encoded, CASES[0]!);
      return { io: model.io, encodedType: encoded.type, rec: r.rec };
    } finally {
      await model.release();
    }
  };
  const got = await run(half);
  const want = await run(plain);
  assert.equal(got.io.encoded, 'float32');
  assert.equal(got.io.hidden, 'float16');
  assert.equal(got.encodedType, 'float16', 'encode hands out what the decoder takes');
  assert.ok(want.rec.inputs.length >= 5, 'a few decoder calls to compare');
  sameTokensButNearTies(got.rec, want.rec, 'mixed');
});
