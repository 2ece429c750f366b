// Word timing's pieces against hand-computed cases and transformers.js's implementations of the
// same openai/whisper rules: DTW (path and openai's tie-breaking), the median filter's reflected
// edges, the alignment matrix's crop/renormalise/z-score, the word split of the tokenizer and the
// merging of punctuation into neighbouring words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dtw } from '../../src/decoding/dtw.ts';
import { medianFilterRows } from '../../src/decoding/median-filter.ts';
import {
  alignmentMatrix,
  APPEND_PUNCTUATIONS,
  mergePunctuations,
  PREPEND_PUNCTUATIONS,
  splitToWordTokens,
  wordsFromMatrix,
  type WordTiming,
} from '../../src/decoding/word-timestamps.ts';
import { ourTokenizer, referenceTokenizer } from './helpers.ts';

type Maths = {
  dynamic_time_warping: (m: number[][]) => [number[], number[]];
  medianFilter: (d: Float64Array, w: number) => Float64Array;
};
// transformers.js does not export these from its root; its source file is the reference.
const maths = (): Promise<Maths> => import(new URL('../../node_modules/@huggingface/transformers/src/utils/maths.js', import.meta.url).href) as Promise<Maths>;

test('dtw: the cheapest monotonic path through a small cost matrix', () => {
  // Row 0 is cheap in columns 0-1, row 1 in columns 2-3.
  const path = dtw([0, 0, 9, 9, 9, 9, 0, 0], 2, 4);
  assert.deepEqual(path.rows, [0, 0, 1, 1]);
  assert.deepEqual(path.cols, [0, 1, 2, 3]);
});

test('dtw: ties break as openai does (down, then right; diagonal only when strictly cheapest)', () => {
  const path = dtw([0, 0, 0, 0], 2, 2);
  assert.deepEqual(path.rows, [0, 1, 1]);
  assert.deepEqual(path.cols, [0, 0, 1]);
  assert.deepEqual(dtw([0, 5, 5, 5, 0, 5, 5, 5, 0], 3, 3), { rows: [0, 1, 2], cols: [0, 1, 2] });
  assert.deepEqual(dtw([], 0, 3), { rows: [], cols: [] });
});

test('dtw matches transformers.js on random matrices', async () => {
  const { dynamic_time_warping } = await maths();
  let seed = 7;
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  for (const [n, m] of [[3, 10], [12, 40], [30, 200]] as const) {
    const flat = Array.from({ length: n * m }, () => rand() - 0.5);
    const rows = Array.from({ length: n }, (_, i) => flat.slice(i * m, (i + 1) * m));
    const [textIdx, timeIdx] = dynamic_time_warping(rows);
    const ours = dtw(flat, n, m);
    assert.deepEqual(ours.rows, [...textIdx]);
    assert.deepEqual(ours.cols, [...timeIdx]);
  }
});

test('median filter: reflected edges, hand-computed', () => {
  const a = Float64Array.from([1, 5, 2, 8, 3]);
  medianFilterRows(a, 5, 3);
  assert.deepEqual([...a], [5, 2, 5, 3, 8]); // padded 5 1 5 2 8 3 8
  const b = Float64Array.from([1, 5, 2, 8, 3]);
  medianFilterRows(b, 5, 5);
  assert.deepEqual([...b], [2, 5, 3, 5, 3]); // padded 2 5 1 5 2 8 3 8 2
  const short = Float64Array.from([3, 1, 2]);
  medianFilterRows(short, 3, 7); // no longer than half the width: left as it is (openai)
  assert.deepEqual([...short], [3, 1, 2]);
  const twoRows = Float64Array.from([1, 5, 2, 8, 3, 9, 9, 0, 9, 9]);
  medianFilterRows(twoRows, 5, 3);
  assert.deepEqual([...twoRows], [5, 2, 5, 3, 8, 9, 9, 9, 9, 9]);
  assert.throws(() => medianFilterRows(a, 5, 4), { code: 'bad_filter_width' });
});

test('median filter matches transformers.js on random rows', async () => {
  const { medianFilter } = await maths();
  const row = Float64Array.from({ length: 50 }, (_, i) => Math.sin(i * 1.7) * 10 + (i % 3));
  const ours = row.slice();
  medianFilterRows(ours, row.length, 7);
  assert.deepEqual([...ours], [...medianFilter(row, 7)]);
});

test('alignment matrix: crops and renormalises each row, z-scores each column, averages heads', () => {
  // One head, 2 rows, 4 frames of which 2 are kept; filter width 1 (no smoothing).
  const head = Float32Array.from([0.3, 0.1, 0.3, 0.3, 0.1, 0.3, 0.3, 0.3]);
  const m = alignmentMatrix([head], 2, 4, 2, 1);
  // rows renormalised over 2 frames: [0.75, 0.25] and [0.25, 0.75]; each column z-scored: ±1
  assert.deepEqual([...m].map((v) => Math.round(v * 1e6) / 1e6), [1, -1, -1, 1]);
  const twice = alignmentMatrix([head, head], 2, 4, 2, 1);
  assert.deepEqual([...twice].map((v) => Math.round(v * 1e6) / 1e6), [1, -1, -1, 1]);
});

test('words from a matrix: each word spans from its first token\'s jump to the next word\'s', () => {
  // 2 text tokens + the eot row, 6 frames: row k is strong at frames 2k and 2k+1.
  const frames = 6;
  const matrix = new Float64Array(3 * frames);
  for (let r = 0; r < 3; r++) for (let c = 0; c < frames; c++) matrix[r * frames + c] = Math.floor(c / 2) === r ? 1 : 0;
  // Stepping down a row within a column costs nothing extra here, and openai's tie rule takes that
  // step: the path is (0,0) (0,1) (1,1) (1,2) (1,3) (2,3) (2,4) (2,5), so rows 1 and 2 are first
  // reached at frames 1 and 3.
  assert.deepEqual(dtw(matrix.map((v) => -v), 3, frames), { rows: [0, 0, 1, 1, 1, 2, 2, 2], cols: [0, 1, 1, 2, 3, 3, 4, 5] });
  const words = wordsFromMatrix(matrix, frames, { words: [' a', ' b', '<|endoftext|>'], wordTokens: [[1], [2], [50257]] });
  assert.deepEqual(words, [
    { word: ' a', tokens: [1], start: 0, end: 0.02 },
    { word: ' b', tokens: [2], start: 0.02, end: 0.06 },
  ]);
  // A word of two tokens runs to the third row's jump.
  const joined = wordsFromMatrix(matrix, frames, { words: [' ab', '<|endoftext|>'], wordTokens: [[1, 2], [50257]] });
  assert.deepEqual(joined, [{ word: ' ab', tokens: [1, 2], start: 0, end: 0.06 }]);
});

const timing = (words: string[]): WordTiming[] => words.map((word, i) => ({ word, tokens: [i], start: i, end: i + 1 }));

test('merging punctuation: prepended marks join the next word, appended ones the previous (openai\'s rules)', () => {
  const a = timing([' ¿', 'Qué', '?', ' Hola', '.']);
  mergePunctuations(a);
  assert.deepEqual(a.map((t) => t.word), ['', ' ¿Qué?', '', ' Hola.', '']);
  assert.deepEqual(a.map((t) => t.tokens), [[], [0, 1, 2], [], [3, 4], []]);
  const b = timing([' "', ' Hi', '"', ' there ', ',', ' (', 'x', ')']);
  mergePunctuations(b);
  assert.deepEqual(b.map((t) => t.word), ['', ' " Hi"', '', ' there ', ',', '', ' (x)', '']);
  assert.ok(PREPEND_PUNCTUATIONS.includes('¿') && PREPEND_PUNCTUATIONS.includes('"'));
  for (const mark of '.,!?:"') assert.ok(APPEND_PUNCTUATIONS.includes(mark));
});

test('word split and merge agree with transformers.js\'s combineTokensIntoWords', async () => {
  const tok = await ourTokenizer('whisper-tiny');
  const ref = (await referenceTokenizer('whisper-tiny')) as unknown as {
    combineTokensIntoWords: (t: number[], lang: string, pre: string, app: string) => [string[], number[][]];
  };
  const texts = [' Hello, world! "It\'s" fine.', ' And so, my fellow Americans: ask not (what) your country can do for you.', " ¿Qué tal? Muy bien, ¡gracias!", ' 3.14 is π — roughly.'];
  for (const text of texts) {
    const tokens = [...tok.encode(text), tok.eot];
    const split = splitToWordTokens(tok, tokens, 'en');
    assert.equal(split.words.at(-1), '<|endoftext|>');
    assert.equal(split.words.slice(0, -1).join(''), text, 'the pieces joined give the text back');
    const timed = split.words.map((word, i) => ({ word, tokens: split.wordTokens[i]!, start: 0, end: 0 }));
    mergePunctuations(timed);
    const kept = timed.filter((t) => t.word !== '' && t.word !== '<|endoftext|>');
    const [refWords, refTokens] = ref.combineTokensIntoWords(tokens, 'english', PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS);
    assert.deepEqual(kept.map((t) => t.word), refWords.filter((w) => w !== '<|endoftext|>'));
    assert.deepEqual(kept.map((t) => t.tokens), refTokens.filter((t) => t[0] !== tok.eot));
  }
});

test('languages without spaces split wherever whole characters are decoded', async () => {
  const tok = await ourTokenizer('whisper-tiny');
  const text = '我们今天去鑫龘公园散步。';
  const tokens = [...tok.encode(text), tok.eot];
  const split = splitToWordTokens(tok, tokens, 'zh');
  assert.equal(split.words.slice(0, -1).join(''), text);
  for (const w of split.words) assert.ok(!w.includes('\ufffd'), `whole characters only: ${JSON.stringify(w)}`);
  assert.ok(split.wordTokens.some((t) => t.length > 1), 'some character needs several tokens, and they stay together');
  assert.ok(split.words.length > 4, 'more than one word');
  // The same text as English splits on spaces only: one word (plus the eot piece).
  assert.equal(splitToWordTokens(tok, tokens, 'en').words.length, 2);
});
