// log-softmax / logsumexp helpers and openai's compression ratio.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argmax, logSoftmax, logSumExp, maxOf } from '../../src/decoding/math.ts';
import { compressionRatio } from '../../src/decoding/compression.ts';

test('logSoftmax: probabilities sum to 1 and keep the logits differences', () => {
  const row = Float32Array.from([1, 2, 3, -1, 0.5]);
  const out = logSoftmax(row);
  const sum = [...out].reduce((s, v) => s + Math.exp(v), 0);
  assert.ok(Math.abs(sum - 1) < 1e-6);
  assert.ok(Math.abs(out[2]! - out[0]! - 2) < 1e-6);
  const direct = Math.log(Math.exp(3) / [...row].reduce((s, v) => s + Math.exp(v), 0));
  assert.ok(Math.abs(out[2]! - direct) < 1e-6);
  logSoftmax(row, row); // in place
  assert.deepEqual([...row], [...out]);
});

test('logSumExp: stable for large values, ranges, -Infinity', () => {
  assert.ok(Math.abs(logSumExp([1000, 1000]) - (1000 + Math.LN2)) < 1e-9);
  assert.ok(Math.abs(logSumExp([-1000, -1000, 5], 0, 2) - (-1000 + Math.LN2)) < 1e-9);
  assert.equal(logSumExp([-Infinity, -Infinity]), -Infinity);
  assert.equal(logSumExp([]), -Infinity);
  assert.equal(maxOf([3, 9, 1], 0, 1), 3);
  assert.equal(argmax([1, 7, 7, 2]), 1, 'first of equal maxima, as torch');
});

test('compressionRatio: repetition scores high, varied text low, UTF-8 bytes counted', () => {
  const looping = ' I am going to go to the store.'.repeat(12);
  const varied = ' And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.';
  assert.ok(compressionRatio(looping) > 2.4, 'a looping decode exceeds openai’s threshold');
  assert.ok(compressionRatio(varied) < 2.4);
  assert.ok(compressionRatio(looping.repeat(4)) > compressionRatio(looping));
  assert.equal(compressionRatio(''), 0);
  // "é" is 2 UTF-8 bytes: counting UTF-16 units instead would put it below the "e" run
  const e = compressionRatio('e'.repeat(10));
  const eAcute = compressionRatio('é'.repeat(10));
  assert.ok(eAcute > e);
});

test('logSumExp over a vocabulary-sized row matches the direct float64 formula to 1e-12 relative', () => {
  const row = new Float32Array(51865);
  for (let trial = 0; trial < 5; trial++) {
    const spread = [1, 10, 40, 150, 400][trial]!;
    for (let i = 0; i < row.length; i++) row[i] = Math.sin(i * 12.9898 + trial) * spread - 3;
    let m = -Infinity;
    for (const v of row) m = Math.max(m, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - m);
    const exact = m + Math.log(sum);
    assert.ok(Math.abs(logSumExp(row) - exact) <= 1e-12 * Math.max(1, Math.abs(exact)), `spread ${spread}`);
  }
  assert.equal(logSumExp(Float32Array.of(0, -1e9)), 0, 'a term past the cut-off adds nothing');
});
