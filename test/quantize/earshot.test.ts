// Acceptance: earshot loads a locally quantised folder with `dtype: 'int8'` and decodes as the fp32
// model does, within quantisation noise. With random weights, greedy paths often split at near-ties
// (a random model's top two logits can sit within 1% of each other), so whole-sequence agreement
// depends on luck; the tolerance is stated on the logits instead. Both models are fed the fp32
// model's greedy tokens (teacher forcing) for 16 steps on 3 inputs, and at every step:
//  - max |int8 - fp32| over the logits is under 5% of the largest |fp32| logit;
//  - where int8's argmax differs from fp32's, fp32's own margin between the two tokens is within
//    twice that step's largest logit error: a disagreement is a near-tie, never a wrong clear winner.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadWhisper, unloadAll } from '../../src/runtime/model-cache.ts';
import { features, greedy, quantizedCopy, relativeError } from './support.ts';

after(() => unloadAll());

const PROMPT = [50257, 50362]; // <|startoftranscript|><|notimestamps|> of the English tokenizer
const STEPS = 16;
const MAX_RELATIVE_ERROR = 0.05;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

for (const perChannel of [false, true]) {
  test(`int8${perChannel ? ' per-channel' : ''}: logits stay within ${MAX_RELATIVE_ERROR * 100}% of fp32 and picks differ only at near-ties`, async () => {
    const q = quantizedCopy('english', 'int8', { perChannel });
    const fp32 = await loadWhisper(q.source, { dtype: 'fp32' });
    const int8 = await loadWhisper(q.outDir, { dtype: 'int8' });
    assert.match(int8.resolved.decoderPath, /decoder_model_merged_int8\.onnx$/);
    let worst = 0;
    let agreeing = 0;
    for (const phase of [0, 1, 2]) {
      const mel = features(fp32.model.dims.nMels, phase);
      const ref = await greedy(fp32.model, mel, PROMPT, STEPS);
      const got = await greedy(int8.model, mel, PROMPT, STEPS, ref.tokens);
      for (let t = 0; t < STEPS; t++) {
        const [r, g] = [ref.logits[t]!, got.logits[t]!];
        const rel = relativeError(g, r);
        worst = Math.max(worst, rel);
        assert.ok(rel < MAX_RELATIVE_ERROR, `input ${phase} step ${t}: relative logit error ${rel}`);
        const [a, b] = [ref.tokens[t]!, got.tokens[t]!];
        if (a === b) agreeing++;
        else assert.ok(r[a]! - r[b]! <= 2 * maxAbsDiff(g, r), `input ${phase} step ${t}: int8 picks ${b} though fp32 prefers ${a} by ${r[a]! - r[b]!}`);
      }
    }
    // Quantisation changes the numbers (this is not the fp32 file again), and most picks still agree.
    assert.ok(worst > 1e-4, `logits identical to fp32 (${worst})`);
    assert.ok(agreeing >= 0.9 * 3 * STEPS, `only ${agreeing} of ${3 * STEPS} teacher-forced picks agree`);
  });
}
