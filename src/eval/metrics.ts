// Word and character error rates: which one a language is scored with, how text is cut into units,
// one file's score, and the totals over many files. Totals are micro-averaged (all errors over all
// reference units), so a long file weighs more than a short one, as in Whisper's and most
// published results; the macro average (mean of the per-file rates) is kept beside it for reference.
import { align, type Alignment, type EditCounts } from './align.ts';

export type Metric = 'wer' | 'cer';

/**
 * Languages scored by characters: those written without spaces between words (Chinese, Cantonese,
 * Japanese, Thai, Lao, Burmese, Khmer, Tibetan) and Korean, whose spacing in transcripts is too
 * inconsistent for words to be fair units.
 */
export const CER_LANGUAGES: ReadonlySet<string> = new Set(['zh', 'yue', 'ja', 'ko', 'th', 'lo', 'my', 'km', 'bo']);

export function metricFor(language: string | null | undefined): Metric {
  return language != null && CER_LANGUAGES.has(language) ? 'cer' : 'wer';
}

const graphemes = new Intl.Segmenter('und', { granularity: 'grapheme' });

/**
 * The units a normalised text is scored in: whitespace-separated words for WER; for CER, user-
 * perceived characters (grapheme clusters: a letter with its combining marks, an emoji sequence),
 * whitespace left out, as openai's `split_letters` does.
 */
export function scoringUnits(text: string, metric: Metric): string[] {
  if (metric === 'wer') return text.split(/\s+/).filter((w) => w.length > 0);
  const out: string[] = [];
  for (const { segment } of graphemes.segment(text)) if (!/^\s+$/u.test(segment)) out.push(segment);
  return out;
}

export interface Score extends EditCounts {
  metric: Metric;
  /** Reference units: the denominator. */
  units: number;
  /** Substitutions + deletions + insertions. */
  errors: number;
  /** errors / units; null for an empty reference, where only the insertions say anything. */
  rate: number | null;
}

export function scoreAlignment(metric: Metric, a: EditCounts): Score {
  const units = a.hits + a.substitutions + a.deletions;
  const errors = a.substitutions + a.deletions + a.insertions;
  return {
    metric,
    units,
    hits: a.hits,
    substitutions: a.substitutions,
    deletions: a.deletions,
    insertions: a.insertions,
    errors,
    rate: units > 0 ? errors / units : null,
  };
}

/** Scores normalised texts; the alignment comes back too, for reports that show it. */
export function score(reference: string, hypothesis: string, metric: Metric): Score & { alignment: Alignment } {
  const alignment = align(scoringUnits(reference, metric), scoringUnits(hypothesis, metric));
  return { ...scoreAlignment(metric, alignment), alignment };
}

export interface Totals extends Score {
  files: number;
  /** Mean of the per-file rates (files with an empty reference left out); null when none has one. */
  macroRate: number | null;
}

/**
 * Micro-averaged totals of scores of one metric: errors over reference units summed across files.
 * An empty reference adds its insertions to the errors and nothing to the units, so hallucinated
 * words on silence raise the total rate; with no reference units at all the rate is null.
 */
export function totals(metric: Metric, scores: readonly Score[]): Totals {
  const sum = { hits: 0, substitutions: 0, deletions: 0, insertions: 0 };
  const rates: number[] = [];
  for (const s of scores) {
    if (s.metric !== metric) throw new RangeError(`a ${s.metric} score among ${metric} totals`);
    sum.hits += s.hits;
    sum.substitutions += s.substitutions;
    sum.deletions += s.deletions;
    sum.insertions += s.insertions;
    if (s.rate !== null) rates.push(s.rate);
  }
  return {
    ...scoreAlignment(metric, sum),
    files: scores.length,
    macroRate: rates.length > 0 ? rates.reduce((a, b) => a + b, 0) / rates.length : null,
  };
}
