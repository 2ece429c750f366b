// The alignment and error rates behind `earshot eval`, on cases counted by hand: which units are
// substituted, deleted or inserted, empty sides, and units in scripts where a character is not a
// code point (CJK, combining marks, emoji sequences).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { align } from '../../src/eval/align.ts';
import { score, scoringUnits } from '../../src/eval/metrics.ts';

const words = (s: string): string[] => scoringUnits(s, 'wer');

test('one substitution and one deletion, in place', () => {
  const a = align(words('the cat sat on the mat'), words('the cat sit on mat'));
  assert.deepEqual(
    { h: a.hits, s: a.substitutions, d: a.deletions, i: a.insertions },
    { h: 4, s: 1, d: 1, i: 0 },
  );
  assert.deepEqual(a.steps, [
    { op: 'equal', ref: 'the', hyp: 'the' },
    { op: 'equal', ref: 'cat', hyp: 'cat' },
    { op: 'substitute', ref: 'sat', hyp: 'sit' },
    { op: 'equal', ref: 'on', hyp: 'on' },
    { op: 'delete', ref: 'the' },
    { op: 'equal', ref: 'mat', hyp: 'mat' },
  ]);
  const s = score('the cat sat on the mat', 'the cat sit on mat', 'wer');
  assert.equal(s.units, 6);
  assert.equal(s.errors, 2);
  assert.equal(s.rate, 2 / 6);
});

test('insertions at the start, middle and end', () => {
  const a = align(words('b c'), words('a b x c d'));
  assert.deepEqual([a.hits, a.substitutions, a.deletions, a.insertions], [2, 0, 0, 3]);
  assert.deepEqual(a.steps.filter((s) => s.op === 'insert').map((s) => s.hyp), ['a', 'x', 'd']);
  assert.equal(score('b c', 'a b x c d', 'wer').rate, 1.5, 'WER can pass 100%');
});

test('nothing in common: substitutions first, the rest insertions', () => {
  const a = align(['a', 'b'], ['c', 'd', 'e']);
  assert.deepEqual([a.hits, a.substitutions, a.deletions, a.insertions], [0, 2, 0, 1]);
});

test('a swapped pair costs two edits', () => {
  const a = align(words('a b c d'), words('a c b d'));
  assert.equal(a.substitutions + a.deletions + a.insertions, 2);
  assert.equal(a.hits + a.substitutions + a.deletions, 4);
});

test('an empty hypothesis: every reference unit is deleted, rate 100%', () => {
  const s = score('ask not what your country', '', 'wer');
  assert.deepEqual([s.units, s.deletions, s.insertions, s.substitutions, s.rate], [5, 5, 0, 0, 1]);
});

test('an empty reference: every hypothesis unit is an insertion, no rate', () => {
  const s = score('', 'thank you for watching', 'wer');
  assert.deepEqual([s.units, s.insertions, s.errors, s.rate], [0, 4, 4, null]);
  const quiet = score('', '', 'wer');
  assert.deepEqual([quiet.units, quiet.errors, quiet.rate], [0, 0, null]);
  const cer = score('', '谢谢观看', 'cer');
  assert.deepEqual([cer.units, cer.insertions, cer.rate], [0, 4, null]);
});

test('CER on Chinese: one unit per character, spaces left out', () => {
  assert.deepEqual(scoringUnits('你好 世界', 'cer'), ['你', '好', '世', '界']);
  const s = score('你好世界', '你们好 世', 'cer');
  // 你 = 你, 们 inserted, 好 = 好, 世 = 世, 界 deleted
  assert.deepEqual([s.hits, s.substitutions, s.deletions, s.insertions, s.units], [3, 0, 1, 1, 4]);
  assert.equal(s.rate, 0.5);
});

test('characters are what a reader sees: combining marks and emoji sequences are one unit each', () => {
  assert.deepEqual(scoringUnits('cafe\u0301', 'cer'), ['c', 'a', 'f', 'e\u0301']);
  assert.equal(scoringUnits('👨‍👩‍👧 👍🏽', 'cer').length, 2, 'a ZWJ family and a skin-toned thumb');
  const s = score('👨‍👩‍👧', '👨‍👩‍👦', 'cer');
  assert.deepEqual([s.units, s.substitutions, s.rate], [1, 1, 1]);
  // Words keep their combining marks: "café" decomposed is still one word, and differs from "cafe".
  const w = score('un cafe\u0301', 'un cafe', 'wer');
  assert.deepEqual([w.units, w.substitutions], [2, 1]);
  // Astral CJK (extension B) is one character, not two UTF-16 halves.
  assert.deepEqual(scoringUnits('𠀀a', 'cer'), ['𠀀', 'a']);
});

/** The edit distance by plain recursion, a second opinion for short inputs. */
function naiveDistance(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  const rest = naiveDistance(a.slice(1), b.slice(1)) + (a[0] === b[0] ? 0 : 1);
  return Math.min(rest, naiveDistance(a.slice(1), b) + 1, naiveDistance(a, b.slice(1)) + 1);
}

test('the edit count is minimal and the steps rebuild both sides (random short inputs)', () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let k = 0; k < 150; k++) {
    const ref = Array.from({ length: rand(7) }, () => 'abc'[rand(3)]!);
    const hyp = Array.from({ length: rand(7) }, () => 'abc'[rand(3)]!);
    const a = align(ref, hyp);
    assert.equal(a.substitutions + a.deletions + a.insertions, naiveDistance(ref, hyp), `${ref.join('')} / ${hyp.join('')}`);
    assert.deepEqual(a.steps.filter((s) => s.op !== 'insert').map((s) => s.ref), ref);
    assert.deepEqual(a.steps.filter((s) => s.op !== 'delete').map((s) => s.hyp), hyp);
  }
});
