// Which metric a language gets, and the totals over files: micro-averaged (all errors over all
// reference units) against the macro average, with empty references adding only insertions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metricFor, score, totals } from '../../src/eval/metrics.ts';

test('CER for languages written without spaces and for Korean; WER otherwise', () => {
  for (const l of ['zh', 'yue', 'ja', 'ko', 'th', 'lo', 'my', 'km', 'bo']) assert.equal(metricFor(l), 'cer', l);
  for (const l of ['en', 'de', 'ru', 'ar', 'hi', 'vi']) assert.equal(metricFor(l), 'wer', l);
  assert.equal(metricFor(null), 'wer');
});

test('micro average weighs files by their length; macro weighs each file the same', () => {
  const long = score('a b c d e f g h i j', 'a b c d e f g h i x', 'wer'); // 1 error in 10
  const short = score('yes', 'no', 'wer'); // 1 error in 1
  const t = totals('wer', [long, short]);
  assert.equal(t.files, 2);
  assert.equal(t.units, 11);
  assert.equal(t.errors, 2);
  assert.equal(t.rate, 2 / 11);
  assert.equal(t.macroRate, (0.1 + 1) / 2);
  assert.notEqual(t.rate, t.macroRate);
});

test('an empty reference adds its insertions to the errors and nothing to the units', () => {
  const speech = score('ask not what your country can do', 'ask not what your country can do', 'wer');
  const silence = score('', 'thank you', 'wer');
  const t = totals('wer', [speech, silence]);
  assert.deepEqual([t.units, t.insertions, t.errors], [7, 2, 2]);
  assert.equal(t.rate, 2 / 7, 'hallucination on silence raises the total');
  assert.equal(t.macroRate, 0, 'the macro average has no rate for the silent file to add');
  const onlySilence = totals('wer', [silence]);
  assert.deepEqual([onlySilence.rate, onlySilence.macroRate, onlySilence.insertions], [null, null, 2]);
});

test('totals refuse scores of the other metric', () => {
  assert.throws(() => totals('wer', [score('你好', '你好', 'cer')]), RangeError);
});
