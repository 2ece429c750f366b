// Runs a model over manifest entries and scores each file: decode the audio, transcribe it (in the
// manifest's language unless overridden), normalise reference and hypothesis for the language and
// align them. A file that cannot be read or transcribed is a failure of that file only.
import { decodeAudio } from '../audio/index.ts';
import { resolveLanguage } from '../decoding/languages.ts';
import { transcribeWithVadAll, type VadTranscribeOptions } from '../decoding/vad-filter.ts';
import type { Whisper } from '../runtime/loaded-model.ts';
import type { ManifestEntry } from './manifest.ts';
import { metricFor, score } from './metrics.ts';
import { normalizeFor } from './normalize.ts';
import type { FileFailure, FileResult } from './report.ts';

export interface EvaluateOptions {
  /** Decoding options; the language is set per file. */
  decode?: Omit<VadTranscribeOptions, 'language' | 'onProgress'>;
  /** Decode every file in this language (`auto`: detect) instead of each entry's own. */
  language?: string;
  maxDurationS?: number;
  /** Called before each file. */
  onFile?: (index: number, entry: ManifestEntry) => void;
  /** Seconds of the current file's audio done. */
  onProgress?: (doneSeconds: number, totalSeconds: number) => void;
}

/** Reference and hypothesis scored in `language` (normalised, then aligned). */
export async function scoreTexts(reference: string, hypothesis: string, language: string) {
  const metric = metricFor(language);
  const [normalizedReference, normalizedHypothesis] = await Promise.all([normalizeFor(reference, language), normalizeFor(hypothesis, language)]);
  const { alignment: _alignment, ...s } = score(normalizedReference, normalizedHypothesis, metric);
  return { ...s, normalizedReference, normalizedHypothesis };
}

async function evaluateOne(w: Whisper, entry: ManifestEntry, opts: EvaluateOptions): Promise<FileResult> {
  const started = performance.now();
  const audio = await decodeAudio(entry.audioPath, opts.maxDurationS !== undefined ? { maxDurationS: opts.maxDurationS } : {});
  const decodeLanguage = opts.language ?? entry.language ?? 'auto';
  const t = await transcribeWithVadAll(w, audio.samples, { ...opts.decode, language: decodeLanguage, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
  const processingS = (performance.now() - started) / 1000;
  // The reference's language decides how it is scored; failing that, the one decoded in.
  const language = entry.language ?? (opts.language !== undefined && opts.language !== 'auto' ? resolveLanguage(opts.language) : t.language);
  const hypothesis = t.text.trim();
  const s = await scoreTexts(entry.text, hypothesis, language);
  return {
    path: entry.path,
    language,
    reference: entry.text,
    hypothesis,
    ...s,
    durationS: audio.durationS,
    processingS,
    rtf: audio.durationS > 0 ? processingS / audio.durationS : null,
  };
}

export async function evaluate(
  w: Whisper,
  entries: readonly ManifestEntry[],
  opts: EvaluateOptions = {},
): Promise<{ files: FileResult[]; failures: FileFailure[] }> {
  const files: FileResult[] = [];
  const failures: FileFailure[] = [];
  for (const [i, entry] of entries.entries()) {
    opts.onFile?.(i, entry);
    try {
      files.push(await evaluateOne(w, entry, opts));
    } catch (e) {
      failures.push({ path: entry.path, error: (e instanceof Error ? e.message : String(e)).split('\n')[0]! });
    }
  }
  return { files, failures };
}
