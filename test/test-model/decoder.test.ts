// The merged decoder computes what it claims: the KV cache, the causal mask and the positions agree
// with a cacheless full-sequence run, and the cached branch reuses the past cross-attention keys
// (in place: it outputs empty encoder presents, as the hub's merged decoders do).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { argmax, correlation, decode, encode, HEAD_DIM, maxAbsDiff, modelDir, pastFrom, row, session, SMALL } from './support.ts';

const dir = modelDir('multilingual');
const PROMPT = [50258, 50259, 50359, 50363];
const TEXT = [440, 2068, 7051, 291, 1029];
const SEQ = [...PROMPT, ...TEXT];

test('decoding step by step with the cache gives the logits of one cacheless full pass', async () => {
  const dec = await session(dir, 'decoder');
  const hidden = await encode(dir, 'multilingual');
  const full = (await decode(dec, [SEQ], hidden)).logits as ort.Tensor;

  const prompt = await decode(dec, [PROMPT], hidden);
  let out = prompt;
  for (let t = 0; t < PROMPT.length; t++) {
    assert.ok(maxAbsDiff(row(out.logits as ort.Tensor, 0, t), row(full, 0, t)) < 1e-4, `prompt position ${t}`);
  }
  for (let t = PROMPT.length; t < SEQ.length; t++) {
    out = await decode(dec, [[SEQ[t]!]], hidden, pastFrom(out, prompt));
    assert.deepEqual((out['present.0.decoder.key'] as ort.Tensor).dims, [1, SMALL.heads, t + 1, HEAD_DIM]);
    const diff = maxAbsDiff(row(out.logits as ort.Tensor, 0, 0), row(full, 0, t));
    assert.ok(diff < 1e-4, `position ${t}: cached step differs from the full pass by ${diff}`);
  }
});

test('int8: the cached steps track the full pass and the fp32 model', async () => {
  // Dynamic quantisation picks each activation's scale from the tensor at hand, so a one-token step
  // and a full pass round differently: close, not equal (the hub's int8 files behave the same way).
  const dec = await session(dir, 'decoder', 'int8');
  const hidden = await encode(dir, 'multilingual', 'int8');
  const full = (await decode(dec, [SEQ], hidden)).logits as ort.Tensor;
  const reference = (await decode(await session(dir, 'decoder'), [SEQ], await encode(dir, 'multilingual'))).logits as ort.Tensor;
  const prompt = await decode(dec, [PROMPT], hidden);
  let out = prompt;
  for (let t = PROMPT.length; t < SEQ.length; t++) {
    out = await decode(dec, [[SEQ[t]!]], hidden, pastFrom(out, prompt));
    const step = row(out.logits as ort.Tensor, 0, 0);
    assert.ok(correlation(step, row(full, 0, t)) > 0.999, `position ${t} vs full int8 pass`);
    assert.ok(correlation(step, row(reference, 0, t)) > 0.999, `position ${t} vs fp32`);
  }
});

test('the cached branch reuses the past encoder keys/values and ignores encoder_hidden_states', async () => {
  const dec = await session(dir, 'decoder');
  const hidden = await encode(dir, 'multilingual');
  const first = await decode(dec, [PROMPT], hidden);
  const zeros = new ort.Tensor('float32', new Float32Array(hidden.size), hidden.dims);
  const withReal = await decode(dec, [[TEXT[0]!]], hidden, pastFrom(first));
  const withZeros = await decode(dec, [[TEXT[0]!]], zeros, pastFrom(first));
  assert.equal(maxAbsDiff(row(withReal.logits as ort.Tensor, 0, 0), row(withZeros.logits as ort.Tensor, 0, 0)), 0);
  // Like the hub's cached branch, it outputs no encoder keys/values (not a copy of the whole past).
  for (const name of ['present.0.encoder.key', 'present.1.encoder.value']) {
    assert.deepEqual((first[name] as ort.Tensor).dims, [1, SMALL.heads, SMALL.sourcePositions, HEAD_DIM]);
    assert.deepEqual((withZeros[name] as ort.Tensor).dims, [1, SMALL.heads, 0, HEAD_DIM]);
  }
  // ...whereas on the first step the encoder states do matter.
  const firstZeros = await decode(dec, [PROMPT], zeros);
  assert.ok(maxAbsDiff(row(first.logits as ort.Tensor, 0, 3), row(firstZeros.logits as ort.Tensor, 0, 3)) > 1e-2);
});

test('attention is causal: a later token never changes earlier logits', async () => {
  const dec = await session(dir, 'decoder');
  const hidden = await encode(dir, 'multilingual');
  const a = (await decode(dec, [SEQ], hidden)).logits as ort.Tensor;
  const changed = [...SEQ.slice(0, -1), 1000];
  const b = (await decode(dec, [changed], hidden)).logits as ort.Tensor;
  for (let t = 0; t < SEQ.length - 1; t++) assert.equal(maxAbsDiff(row(a, 0, t), row(b, 0, t)), 0, `position ${t}`);
  assert.ok(maxAbsDiff(row(a, 0, SEQ.length - 1), row(b, 0, SEQ.length - 1)) > 1e-2);
});

test('positions matter: one token at two positions gives different logits', async () => {
  const dec = await session(dir, 'decoder');
  const hidden = await encode(dir, 'multilingual');
  const logits = (await decode(dec, [[50258, 50258, 50258]], hidden)).logits as ort.Tensor;
  // Position 0 sees only itself; positions 1 and 2 see identical tokens, so only the position differs.
  assert.ok(maxAbsDiff(row(logits, 0, 1), row(logits, 0, 2)) > 1e-2);
});

test('batch items are independent: a batch of two equals two single runs', async () => {
  const dec = await session(dir, 'decoder');
  const hidden2 = await encode(dir, 'multilingual', 'fp32', 2);
  const seqs = [SEQ, [...PROMPT, 7, 8, 9, 10, 11]];
  const both = (await decode(dec, seqs, hidden2)).logits as ort.Tensor;
  const [, frames, dModel] = hidden2.dims as [number, number, number];
  for (let b = 0; b < 2; b++) {
    const one = new ort.Tensor(
      'float32',
      (hidden2.data as Float32Array).slice(b * frames * dModel, (b + 1) * frames * dModel),
      [1, frames, dModel],
    );
    const single = (await decode(dec, [seqs[b]!], one)).logits as ort.Tensor;
    for (let t = 0; t < SEQ.length; t++) assert.ok(maxAbsDiff(row(both, b, t), row(single, 0, t)) < 1e-4);
  }
});

test('logits are spread out and greedy picks depend on the input', async () => {
  const dec = await session(dir, 'decoder');
  const hidden = await encode(dir, 'multilingual');
  const logits = (await decode(dec, [SEQ], hidden)).logits as ort.Tensor;
  const picks = new Set<number>();
  for (let t = 0; t < SEQ.length; t++) {
    const r = row(logits, 0, t);
    const best = argmax(r);
    const second = argmax(r, new Set([best]));
    assert.ok(r[best]! - r[second]! > 1e-3, `position ${t}: top two logits nearly tie`);
    picks.add(best);
  }
  assert.ok(picks.size >= SEQ.length - 2, `only ${picks.size} distinct greedy picks over ${SEQ.length} positions`);
});
