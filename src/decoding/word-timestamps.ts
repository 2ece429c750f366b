// Word-level timestamps, as openai/whisper's timing.py computes them: one teacher-forced decoder
// run over the window's text gives the cross-attention weights of the model's alignment heads
// (generation_config.json `alignment_heads`); they are cropped to the audio in the window,
// normalised per head along the tokens, median-filtered along time, averaged over heads, and
// aligned to the audio frames by dynamic time warping. Tokens are grouped into words by the
// tokenizer's rules, punctuation is merged into its neighbours, and openai's fixes for words that
// are implausibly long at sentence and pause boundaries are applied.
// Hand-written: the alignment is the product's core and has no npm equivalent with these rules.
// Unlike openai, no per-word probability is computed (the run fetches attention weights only), words
// are split and punctuation merged within each segment (never across two), and word times are
// finally kept inside their segment and in order.
import type { ModelRunner, EncodedAudio } from '../engine/model-types.ts';
import { EarshotError } from '../errors.ts';
import { dtw } from './dtw.ts';
import { medianFilterRows } from './median-filter.ts';
import { SECONDS_PER_FRAME } from './window-segments.ts';
import type { Word } from './transcription.ts';
import { sotSequence, type Task } from './sot.ts';
import type { WhisperTokenizer } from './tokenizer.ts';

/** openai's defaults for `prepend_punctuations` and `append_punctuations`. */
export const PREPEND_PUNCTUATIONS = '"\'“¿([{-';
export const APPEND_PUNCTUATIONS = '"\'.。,，!！?？:：”)]}、';
export const MEDIAN_FILTER_WIDTH = 7;
/** Encoder positions per second of audio (1500 per 30 s). */
const TOKENS_PER_SECOND = 50;
/** Languages written without spaces: words are split wherever the tokens decode to whole characters. */
const NO_SPACE_LANGUAGES = new Set(['zh', 'ja', 'th', 'lo', 'my', 'yue']);
/** Python's string.punctuation. */
const ASCII_PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

/** A word and its tokens, with times relative to its window. */
export interface WordTiming {
  word: string;
  tokens: number[];
  start: number;
  end: number;
}

export interface WordSplit {
  words: string[];
  wordTokens: number[][];
}

/** Groups tokens at every point where the text decoded so far is whole characters (no U+FFFD from a cut byte sequence). */
export function splitTokensOnUnicode(tok: WhisperTokenizer, tokens: readonly number[]): WordSplit {
  const full = tok.decode(tokens, { timestamps: true, skipSpecialTokens: false });
  const words: string[] = [];
  const wordTokens: number[][] = [];
  let current: number[] = [];
  let offset = 0;
  for (const t of tokens) {
    current.push(t);
    const text = tok.decode(current, { timestamps: true, skipSpecialTokens: false });
    const bad = text.indexOf('\ufffd');
    if (bad < 0 || full[offset + bad] === '\ufffd') {
      words.push(text);
      wordTokens.push(current);
      current = [];
      offset += text.length;
    }
  }
  return { words, wordTokens };
}

/** Unicode pieces joined into words: a new word starts at a space, a punctuation mark or a special token. */
export function splitTokensOnSpaces(tok: WhisperTokenizer, tokens: readonly number[]): WordSplit {
  const sub = splitTokensOnUnicode(tok, tokens);
  const words: string[] = [];
  const wordTokens: number[][] = [];
  sub.words.forEach((piece, i) => {
    const pieceTokens = sub.wordTokens[i]!;
    const special = pieceTokens[0]! >= tok.eot;
    const trimmed = piece.trim();
    const punctuation = ASCII_PUNCTUATION.includes(trimmed); // Python's `in`: a substring, "" included
    if (special || piece.startsWith(' ') || punctuation || words.length === 0) {
      words.push(piece);
      wordTokens.push([...pieceTokens]);
    } else {
      words[words.length - 1] += piece;
      wordTokens[wordTokens.length - 1]!.push(...pieceTokens);
    }
  });
  return { words, wordTokens };
}

/** The tokenizer's word split for `language` (openai's split_to_word_tokens). */
export function splitToWordTokens(tok: WhisperTokenizer, tokens: readonly number[], language: string): WordSplit {
  return NO_SPACE_LANGUAGES.has(language) ? splitTokensOnUnicode(tok, tokens) : splitTokensOnSpaces(tok, tokens);
}

/**
 * openai's merge_punctuations, in place: a word that is a prepended mark (with its leading space)
 * joins the word after it, a word that is an appended mark joins the word before it (unless that
 * one ends in a space); the word left behind becomes "" with no tokens.
 */
export function mergePunctuations(alignment: WordTiming[], prepended = PREPEND_PUNCTUATIONS, appended = APPEND_PUNCTUATIONS): void {
  let i = alignment.length - 2;
  let j = alignment.length - 1;
  while (i >= 0) {
    const previous = alignment[i]!;
    const following = alignment[j]!;
    if (previous.word.startsWith(' ') && prepended.includes(previous.word.trim())) {
      following.word = previous.word + following.word;
      following.tokens = [...previous.tokens, ...following.tokens];
      previous.word = '';
      previous.tokens = [];
    } else {
      j = i;
    }
    i--;
  }
  i = 0;
  j = 1;
  while (j < alignment.length) {
    const previous = alignment[i]!;
    const following = alignment[j]!;
    if (!previous.word.endsWith(' ') && appended.includes(following.word)) {
      previous.word += following.word;
      previous.tokens = [...previous.tokens, ...following.tokens];
      following.word = '';
      following.tokens = [];
    } else {
      i = j;
    }
    j++;
  }
}

/**
 * The alignment matrix: per head, weights [rows × frames] cropped to `frames` columns and each row
 * renormalised (so it equals a softmax over the kept frames only, as openai computes it), then
 * z-scored along the rows of each column, median-filtered along each row, and averaged over heads.
 */
export function alignmentMatrix(
  heads: readonly Float32Array[],
  rows: number,
  totalFrames: number,
  frames: number,
  filterWidth = MEDIAN_FILTER_WIDTH,
): Float64Array {
  const matrix = new Float64Array(rows * frames);
  const w = new Float64Array(rows * frames);
  for (const head of heads) {
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let c = 0; c < frames; c++) sum += head[r * totalFrames + c]!;
      for (let c = 0; c < frames; c++) w[r * frames + c] = sum > 0 ? head[r * totalFrames + c]! / sum : 0;
    }
    for (let c = 0; c < frames; c++) {
      let mean = 0;
      for (let r = 0; r < rows; r++) mean += w[r * frames + c]!;
      mean /= rows;
      let variance = 0;
      for (let r = 0; r < rows; r++) variance += (w[r * frames + c]! - mean) ** 2;
      const std = Math.sqrt(variance / rows);
      for (let r = 0; r < rows; r++) w[r * frames + c] = std > 0 ? (w[r * frames + c]! - mean) / std : 0;
    }
    medianFilterRows(w, frames, filterWidth);
    for (let k = 0; k < w.length; k++) matrix[k] = matrix[k]! + w[k]! / heads.length;
  }
  return matrix;
}

/**
 * Word timings from an alignment matrix with one row per text token plus one for <|endoftext|>
 * (the row of the position that predicts each of them): DTW on its negation, each token's time
 * the frame where the path first reaches its row, each word from its first token's time to the
 * next word's.
 */
export function wordsFromMatrix(matrix: Float64Array, frames: number, split: WordSplit): WordTiming[] {
  const rows = matrix.length / frames;
  const path = dtw(matrix.map((v) => -v), rows, frames);
  const jumpTimes: number[] = [];
  path.rows.forEach((r, k) => {
    if (k === 0 || r !== path.rows[k - 1]) jumpTimes.push(path.cols[k]! / TOKENS_PER_SECOND);
  });
  if (split.wordTokens.length <= 1) return [];
  const boundaries = [0];
  for (const t of split.wordTokens.slice(0, -1)) boundaries.push(boundaries[boundaries.length - 1]! + t.length);
  const out: WordTiming[] = [];
  for (let k = 0; k + 1 < boundaries.length; k++) {
    out.push({ word: split.words[k]!, tokens: split.wordTokens[k]!, start: jumpTimes[boundaries[k]!]!, end: jumpTimes[boundaries[k + 1]!]! });
  }
  return out;
}

/** A segment of one window as the seek loop has it, before text cleanup. */
export interface TimedSegment {
  start: number;
  end: number;
  /** Its text tokens (below <|endoftext|>). */
  textTokens: readonly number[];
}

export interface WordTimestampsInput {
  segments: readonly TimedSegment[];
  encoded: EncodedAudio;
  language: string;
  task: Task;
  /** Window start, in mel frames. */
  seek: number;
  /** Mel frames of audio in the window (≤ 3000). */
  segmentFrames: number;
  /** End of the last speech before this window, in seconds (openai's last_speech_timestamp). */
  lastSpeechTimestamp: number;
}

export interface SegmentWords {
  /** The segment's start and end, moved to its words where openai does so. */
  start: number;
  end: number;
  words: Word[];
}

/** Typed error for a runner or model that cannot give what word timing needs. */
function unsupported(message: string): EarshotError {
  return new EarshotError('invalid_argument', 'word_timestamps_unsupported', message);
}

/**
 * Fails early, before any decoding, when word timing cannot work for this model: no alignment
 * heads named, or a runner without cross-attention support. (A decoder without the outputs is
 * found on the first window's alignment run.)
 */
export function assertWordTimestampsSupported(runner: ModelRunner, tok: WhisperTokenizer): asserts runner is ModelRunner & Required<Pick<ModelRunner, 'crossAttentions'>> {
  if (tok.generationConfig.alignmentHeads.length === 0) {
    throw unsupported('this model names no alignment heads (generation_config.json "alignment_heads"): word timestamps need them');
  }
  if (!runner.crossAttentions) throw unsupported('this model runner cannot give cross-attention weights, which word timestamps need');
}

/** The words of each segment of one window (openai's add_word_timestamps). */
export async function addWordTimestamps(runner: ModelRunner, tok: WhisperTokenizer, input: WordTimestampsInput): Promise<SegmentWords[]> {
  const { segments } = input;
  if (segments.length === 0) return [];
  assertWordTimestampsSupported(runner, tok);
  const heads = tok.generationConfig.alignmentHeads;

  const textTokens = segments.flatMap((s) => s.textTokens.filter((t) => t < tok.eot));
  let alignment: WordTiming[] = [];
  const wordCounts: number[] = [];
  if (textTokens.length > 0) {
    const sot = sotSequence(tok, { language: input.language, task: input.task, withoutTimestamps: true });
    const tokens = [...sot, ...textTokens, tok.eot];
    // Rows from <|notimestamps|> (which predicts the first text token) to the last text token.
    const att = await runner.crossAttentions(tokens, input.encoded, heads, sot.length - 1);
    const rows = textTokens.length + 1;
    const frames = Math.min(att.frames, Math.floor(input.segmentFrames / 2));
    const matrix = alignmentMatrix(att.weights, rows, att.frames, Math.max(1, frames));
    // Split per segment (openai splits the window's text as a whole), so that no word spans two
    // segments and each segment's words join to exactly its text.
    const split: WordSplit = { words: [], wordTokens: [] };
    for (const s of segments) {
      const part = splitToWordTokens(tok, s.textTokens.filter((t) => t < tok.eot), input.language);
      split.words.push(...part.words);
      split.wordTokens.push(...part.wordTokens);
      wordCounts.push(part.words.length);
    }
    const end = splitToWordTokens(tok, [tok.eot], input.language);
    split.words.push(...end.words);
    split.wordTokens.push(...end.wordTokens);
    alignment = wordsFromMatrix(matrix, Math.max(1, frames), split);
  }

  const durations = alignment.map((t) => t.end - t.start).filter((d) => d !== 0);
  const median = Math.min(0.7, durations.length > 0 ? medianOf(durations) : 0);
  const maxDuration = median * 2;
  if (durations.length > 0) {
    const sentenceEnd = '.。!！?？';
    for (let i = 1; i < alignment.length; i++) {
      const a = alignment[i]!;
      if (a.end - a.start > maxDuration) {
        if (sentenceEnd.includes(a.word)) a.end = a.start + maxDuration;
        else if (sentenceEnd.includes(alignment[i - 1]!.word)) a.start = a.end - maxDuration;
      }
    }
  }
  // Punctuation merges within a segment only (see the split above).
  let first = 0;
  for (const n of wordCounts) {
    const part = alignment.slice(first, first + n);
    mergePunctuations(part);
    first += n;
  }

  const timeOffset = input.seek * SECONDS_PER_FRAME;
  const round2 = (x: number) => Math.round(x * 100) / 100;
  let lastSpeech = input.lastSpeechTimestamp;
  let index = 0;
  return segments.map((segment) => {
    const ownTokens = segment.textTokens.filter((t) => t < tok.eot).length;
    let start = segment.start;
    let end = segment.end;
    const words: Word[] = [];
    let saved = 0;
    while (index < alignment.length && saved < ownTokens) {
      const t = alignment[index]!;
      if (t.word) words.push({ word: t.word, start: round2(timeOffset + t.start), end: round2(timeOffset + t.end) });
      saved += t.tokens.length;
      index++;
    }
    if (words.length > 0) {
      const first = words[0]!;
      const second = words[1];
      const last = words[words.length - 1]!;
      // A first word (and second) after a pause is held to twice the median word length.
      if (
        first.end - lastSpeech > median * 4 &&
        (first.end - first.start > maxDuration || (second !== undefined && second.end - first.start > maxDuration * 2))
      ) {
        if (second !== undefined && second.end - second.start > maxDuration) {
          const boundary = Math.max(second.end / 2, second.end - maxDuration);
          first.end = second.start = boundary;
        }
        first.start = Math.max(0, first.end - maxDuration);
      }
      // The segment's own start or end wins over a first or last word that looks too long.
      if (start < first.end && start - 0.5 > first.start) first.start = Math.max(0, Math.min(first.end - median, start));
      else start = first.start;
      if (end > last.start && end + 0.5 < last.end) last.end = Math.max(last.start + median, end);
      else end = last.end;
      lastSpeech = end;
    }
    return { start, end, words: inOrderWithin(words, start, end) };
  });
}

/** Words clamped into [start, end] and made monotonic (each starts no earlier than the previous ends). */
function inOrderWithin(words: Word[], start: number, end: number): Word[] {
  let previousEnd = start;
  return words.map((w) => {
    const s = Math.min(end, Math.max(previousEnd, w.start));
    const e = Math.min(end, Math.max(s, w.end));
    previousEnd = e;
    return { word: w.word, start: s, end: e };
  });
}

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
