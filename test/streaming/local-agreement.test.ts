// LocalAgreement-2 on hand-built hypotheses, and the sample ring that holds a stream's audio.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SampleRing } from '../../src/audio/ring-buffer.ts';
import { LocalAgreement } from '../../src/streaming/local-agreement.ts';

// Tokens as characters: 1 → 'a', 2 → 'b' …; 99 is half of a two-token character (decodes to U+FFFD alone).
const decode = (tokens: readonly number[]) =>
  tokens.map((t, i) => (t === 99 ? (tokens[i + 1] === 98 ? '' : '\uFFFD') : t === 98 ? (tokens[i - 1] === 99 ? '中' : '\uFFFD') : String.fromCharCode(96 + t))).join('');

test('only the prefix two consecutive hypotheses agree on is committed', () => {
  const la = new LocalAgreement(decode);
  let r = la.update([1, 2, 3]);
  assert.deepEqual(r.newlyCommitted, [], 'one hypothesis alone commits nothing');
  assert.deepEqual(r.tentative, [1, 2, 3]);
  r = la.update([1, 2, 4, 5]);
  assert.deepEqual(r.newlyCommitted, [1, 2]);
  assert.deepEqual(r.tentative, [4, 5]);
  r = la.update([1, 2, 4, 5, 6]);
  assert.deepEqual(r.newlyCommitted, [4, 5]);
  assert.deepEqual(r.committed, [1, 2, 4, 5]);
  assert.deepEqual(r.tentative, [6]);
});

test('committed text never changes, even when a later hypothesis disagrees', () => {
  const la = new LocalAgreement(decode);
  la.update([1, 2, 3]);
  la.update([1, 2, 3, 4]);
  assert.deepEqual(la.committed, [1, 2, 3]);
  const r = la.update([1, 7, 3, 4, 5]);
  assert.deepEqual(r.newlyCommitted, []);
  assert.deepEqual(r.committed, [1, 2, 3]);
  assert.deepEqual(r.tentative, []);
  // The next agreeing pair continues from the committed prefix.
  la.update([1, 2, 3, 4, 5]);
  assert.deepEqual(la.update([1, 2, 3, 4, 5, 6]).newlyCommitted, [4, 5]);
});

test('a commit point inside a multi-byte character moves back to a whole character', () => {
  const la = new LocalAgreement(decode);
  la.update([1, 99, 98]);
  const r = la.update([1, 99, 97]); // agree on [1, 99], but 99 alone is half a character
  assert.deepEqual(r.newlyCommitted, [1]);
  la.update([1, 99, 98, 2]);
  assert.deepEqual(la.update([1, 99, 98, 2, 3]).newlyCommitted, [99, 98, 2]);
});

test('reset starts a new utterance', () => {
  const la = new LocalAgreement(decode);
  la.update([1, 2]);
  la.update([1, 2]);
  la.reset();
  assert.deepEqual(la.committed, []);
  assert.deepEqual(la.update([3]).newlyCommitted, []);
});

test('the sample ring keeps the newest samples, addressed by absolute position', () => {
  const ring = new SampleRing(5);
  ring.push(Float32Array.of(0, 1, 2));
  ring.push(Float32Array.of(3, 4, 5, 6));
  assert.equal(ring.written, 7);
  assert.equal(ring.oldest, 2);
  assert.deepEqual([...ring.read(2, 7)], [2, 3, 4, 5, 6]);
  assert.deepEqual([...ring.read(4, 6)], [4, 5]);
  assert.throws(() => ring.read(1, 3), RangeError);
  assert.throws(() => ring.read(5, 8), RangeError);
  ring.push(Float32Array.of(7, 8, 9, 10, 11, 12, 13)); // more than the capacity at once
  assert.deepEqual([...ring.read(ring.oldest)], [9, 10, 11, 12, 13]);
  assert.equal(ring.written, 14);
});
