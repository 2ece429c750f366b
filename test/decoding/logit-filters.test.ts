// The logit filters on hand-built logits: each rule once where it fires and once where it must not.
// Timestamp rules use a toy vocabulary so every masked range is visible:
//   text 0..4, EOT 5, specials 6..7, <|notimestamps|> 8, timestamps 9..19 (<|0.00|> … <|0.20|>).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isEarshotError } from '../../src/errors.ts';
import {
  ApplyTimestampRules,
  SuppressBlank,
  SuppressTokens,
  applyLogitFilters,
  buildLogitFilters,
  suppressTokenIds,
} from '../../src/decoding/logit-filters.ts';
import { ourTokenizer, readFixtureJson } from './helpers.ts';

const EOT = 5;
const NO_TS = 8;
const T = 9; // <|0.00|>
const VOCAB = 20;
const IDS = { eot: EOT, noTimestamps: NO_TS, timestampBegin: T };
const INITIAL = [6, 7, 7];
const SB = INITIAL.length;

/** Ids whose logit is -Infinity. */
const masked = (logits: Float32Array): number[] => [...logits.keys()].filter((i) => logits[i] === -Infinity);
const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);

/** Text tokens clearly ahead of every timestamp, so the probability rule stays out of the way. */
function textFavoured(): Float32Array {
  const l = new Float32Array(VOCAB).fill(-10);
  l.fill(5, 0, T);
  return l;
}

function rules(maxInitial: number | null = null): ApplyTimestampRules {
  return new ApplyTimestampRules(IDS, SB, maxInitial);
}

test('<|notimestamps|> is always suppressed, and nothing else in mid-text', () => {
  const l = textFavoured();
  rules().apply(l, [...INITIAL, T + 0, 1, 2]);
  assert.deepEqual(masked(l), [NO_TS, T + 0], 'only notimestamps and the already-used <|0.00|>');
});

test('first sampled token must be a timestamp, at most max_initial_timestamp', () => {
  const l = textFavoured();
  rules(3).apply(l, INITIAL);
  assert.deepEqual(masked(l), [...range(0, T), ...range(T + 4, VOCAB)], 'text masked; <|0.00|>..<|0.06|> allowed');

  const free = textFavoured();
  rules(null).apply(free, INITIAL);
  assert.deepEqual(masked(free), range(0, T), 'no limit: every timestamp allowed');

  const later = textFavoured();
  rules(3).apply(later, [...INITIAL, T + 0, 1]);
  assert.ok(!masked(later).includes(T + 10) && !masked(later).includes(1), 'the limits only apply at the first position');
});

test('pairs: after an opening timestamp comes text; after text+timestamp, a timestamp or EOT', () => {
  const afterOpen = textFavoured();
  rules().apply(afterOpen, [...INITIAL, T + 2]); // a lone first timestamp counts as a closed pair
  assert.deepEqual(masked(afterOpen), [NO_TS, ...range(T, VOCAB)]);

  const afterClose = textFavoured();
  rules().apply(afterClose, [...INITIAL, T + 2, 1, 3, T + 7]);
  assert.deepEqual(masked(afterClose), [...range(0, EOT), NO_TS, ...range(T, T + 7)], 'text masked, EOT and >= <|0.14|> open');

  const afterPair = textFavoured();
  rules().apply(afterPair, [...INITIAL, T + 2, 1, T + 7, T + 7]);
  assert.deepEqual(masked(afterPair), [NO_TS, ...range(T, VOCAB)], 'a complete pair: text next');
});

test('timestamps never decrease, and a new segment starts strictly after the last one', () => {
  const closing = new Float32Array(VOCAB).fill(0);
  rules().apply(closing, [...INITIAL, T + 2, 1, T + 6]);
  assert.equal(closing[T + 6], 0, 'closing a pair may repeat the last timestamp');
  assert.equal(closing[T + 5], -Infinity);

  const inText = textFavoured();
  rules().apply(inText, [...INITIAL, T + 2, 1, T + 6, T + 6, 3]);
  assert.deepEqual(masked(inText), [NO_TS, ...range(T, T + 7)], 'next timestamp after <|0.12|> must be > it');
});

test('a timestamp is forced when all timestamps together beat the best text token', () => {
  // each timestamp 1.0 below the best text token, but 11 of them: log(11) - 1 > 0
  const l = new Float32Array(VOCAB).fill(-1);
  l[2] = 0;
  rules().apply(l, [...INITIAL, T + 0, 1]);
  assert.deepEqual(masked(l), [...range(0, T), T + 0], 'all text (and EOT) masked');

  // the same, with the best text token 3.0 ahead: log(11) - 3 < 0, text stays
  const m = new Float32Array(VOCAB).fill(-3);
  m[2] = 0;
  rules().apply(m, [...INITIAL, T + 0, 1]);
  assert.deepEqual(masked(m), [NO_TS, T + 0]);
});

test('the probability rule compares mass, not the single best timestamp', () => {
  const l = new Float32Array(VOCAB).fill(-Infinity);
  l[1] = Math.log(0.3);
  l.fill(Math.log(0.07), T + 1, VOCAB); // 10 × 0.07 = 0.7 > 0.3, though 0.07 < 0.3
  rules().apply(l, [...INITIAL, T + 0, 1]);
  assert.equal(l[1], -Infinity);
  assert.equal(l[T + 5], Math.fround(Math.log(0.07)));
});

test('SuppressBlank masks " " and EOT at the first position only', async () => {
  const tok = await ourTokenizer('whisper-tiny');
  const gen = readFixtureJson('whisper-tiny', 'generation_config.json');
  const f = SuppressBlank.fromTokenizer(tok, 4);
  const first = new Float32Array(tok.vocabSize);
  f.apply(first, [1, 2, 3, 4]);
  assert.deepEqual(masked(first), gen.begin_suppress_tokens);
  const later = new Float32Array(tok.vocabSize);
  f.apply(later, [1, 2, 3, 4, 5]);
  assert.deepEqual(masked(later), []);
});

test('suppress_tokens "-1" is HF generation_config.suppress_tokens; explicit lists add control tokens', async () => {
  for (const m of ['whisper-tiny', 'whisper-tiny.en'] as const) {
    const tok = await ourTokenizer(m);
    assert.deepEqual(suppressTokenIds(tok), readFixtureJson(m, 'generation_config.json').suppress_tokens);
  }
  const tok = await ourTokenizer('whisper-tiny');
  const controls = [tok.transcribe, tok.translate, tok.sot, tok.sotPrev, tok.sotLm, tok.noSpeech].sort((a, b) => a - b);
  assert.deepEqual(suppressTokenIds(tok, '7, 3'), [3, 7, ...controls]);
  assert.deepEqual(suppressTokenIds(tok, [3, -1]), suppressTokenIds(tok, '-1,3'));
  assert.deepEqual(suppressTokenIds(tok, ''), []);
  const l = new Float32Array(tok.vocabSize);
  new SuppressTokens(suppressTokenIds(tok, '7')).apply(l);
  assert.deepEqual(masked(l), [7, ...controls]);
  for (const bad of ['1,x', '1,,2', String(tok.vocabSize), '-2']) {
    assert.throws(() => suppressTokenIds(tok, bad), (e) => isEarshotError(e) && e.code === 'bad_suppress_tokens', bad);
  }
});

test('buildLogitFilters: openai defaults, max_initial_timestamp 1.0 s = index 50', async () => {
  const tok = await ourTokenizer('whisper-tiny');
  const sampleBegin = 3;
  const tokens = [tok.sot, tok.languageTokens.get('en')!, tok.transcribe];
  const l = new Float32Array(tok.vocabSize);
  applyLogitFilters(buildLogitFilters(tok, { sampleBegin }), l, tokens);
  assert.equal(l[tok.timestampBegin + 50], 0);
  assert.equal(l[tok.timestampBegin + 51], -Infinity);
  assert.equal(l[tok.eot], -Infinity);
  assert.deepEqual(masked(l.subarray(0, tok.timestampBegin)).length, tok.timestampBegin, 'first token: timestamps only');

  const noLimit = new Float32Array(tok.vocabSize);
  applyLogitFilters(buildLogitFilters(tok, { sampleBegin, maxInitialTimestamp: 0 }), noLimit, tokens);
  assert.equal(noLimit[tok.vocabSize - 1], 0, 'max_initial_timestamp 0 means no limit, as in openai');

  const plain = new Float32Array(tok.vocabSize);
  const filters = buildLogitFilters(tok, { sampleBegin, withoutTimestamps: true, suppressBlank: false });
  assert.equal(filters.length, 1);
  applyLogitFilters(filters, plain, [...tokens, tok.noTimestamps]);
  assert.equal(plain[tok.timestampBegin + 51], 0, 'without timestamps: no timestamp rules');
  assert.equal(plain[tok.eot], 0);

  assert.throws(() => buildLogitFilters(tok, { sampleBegin, maxInitialTimestamp: -1 }), (e) => isEarshotError(e));
});
