// File transcription's VAD step, as faster-whisper's vad_filter: the one entry point for
// transcribing a whole file with the `vad_filter` option (CLI, server, jobs). With the filter on
// (the default) Silero VAD (src/vad/) finds the speech regions; they are cut out and joined with a
// short gap of zeros between them, the joined audio is transcribed as usual, and every timestamp is
// mapped back to the original file's time line. Nothing but the regions reaches the model, so
// silence and noise between them cannot turn into invented text, and a file without speech decodes
// nothing. With the filter off this is plain `transcribe`.
import { TARGET_SAMPLE_RATE } from '../audio/index.ts';
import { EarshotError } from '../errors.ts';
import { loadSileroVad } from '../vad/silero.ts';
import { detectSpeech } from '../vad/endpointer.ts';
import type { SpeechSegmentOptions } from '../vad/speech-segments.ts';
import type { Segment, Transcription } from './transcription.ts';
import { type DecodingModel, type TranscribeOptions, type TranscriptionRun, transcribe } from './transcribe.ts';

/** Zeros put between two joined regions (that do not touch in the original). */
export const DEFAULT_GAP_SAMPLES = 1600;

/** A span of the original audio, in samples: [start, end). */
export interface SampleSpan {
  start: number;
  end: number;
}

/** One joined region: where it comes from and where it sits in the joined audio. */
export interface SpeechPiece {
  sourceStart: number;
  sourceEnd: number;
  /** Its first sample in the joined audio. */
  offset: number;
}

export interface SpeechLayout {
  pieces: SpeechPiece[];
  /** Samples of the joined audio. */
  length: number;
  gap: number;
}

/**
 * Places `regions` (sorted, not overlapping, within [0, totalSamples]) one after another with
 * `gap` zeros between them. Regions that touch are joined into one piece without a gap: the audio
 * is continuous there.
 */
export function layoutSpeech(regions: readonly SampleSpan[], totalSamples: number, gap = DEFAULT_GAP_SAMPLES): SpeechLayout {
  if (!(Number.isInteger(gap) && gap >= 0)) throw new EarshotError('invalid_argument', 'bad_speech_region', `gap must be an integer ≥ 0, got ${gap}`);
  const pieces: SpeechPiece[] = [];
  let length = 0;
  let previousEnd = 0;
  for (const r of regions) {
    if (!(Number.isInteger(r.start) && Number.isInteger(r.end) && r.start >= previousEnd && r.end > r.start && r.end <= totalSamples)) {
      throw new EarshotError(
        'invalid_argument',
        'bad_speech_region',
        `speech regions must be sorted, non-empty, non-overlapping sample spans within the audio; got [${r.start}, ${r.end})`,
      );
    }
    const last = pieces[pieces.length - 1];
    if (last && last.sourceEnd === r.start) {
      last.sourceEnd = r.end;
    } else {
      if (last) length += gap;
      pieces.push({ sourceStart: r.start, sourceEnd: r.end, offset: length });
    }
    const tail = pieces[pieces.length - 1]!;
    length = tail.offset + (tail.sourceEnd - tail.sourceStart);
    previousEnd = r.end;
  }
  return { pieces, length, gap };
}

/** The joined audio of a layout. */
export function gatherSpeech(samples: Float32Array, layout: SpeechLayout): Float32Array {
  const out = new Float32Array(layout.length);
  for (const p of layout.pieces) out.set(samples.subarray(p.sourceStart, p.sourceEnd), p.offset);
  return out;
}

/**
 * Maps a time of the joined audio (seconds) to the original's. Inside a piece the mapping is a
 * shift. A time in a gap, or on the seam between two pieces, belongs to the piece before it when
 * it is the end of something (`edge` = 'end') and to the piece after it when it is a start, so a
 * segment never stretches over audio it did not hear. Times past the end clamp to the last piece.
 */
export function toSourceTime(layout: SpeechLayout, seconds: number, edge: 'start' | 'end'): number {
  const { pieces } = layout;
  if (pieces.length === 0) return 0;
  // Snapped to whole samples when within rounding of one, so seams and gap edges compare exactly.
  const raw = seconds * TARGET_SAMPLE_RATE;
  const x = Math.abs(raw - Math.round(raw)) < 1e-6 ? Math.round(raw) : raw;
  // The piece k whose span, with the gap after it, holds x; ends take the left-closed side.
  let lo = 0;
  let hi = pieces.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    const o = pieces[mid]!.offset;
    if (edge === 'end' ? x > o : x >= o) lo = mid;
    else hi = mid - 1;
  }
  const p = pieces[lo]!;
  const inside = Math.max(0, x - p.offset);
  const length = p.sourceEnd - p.sourceStart;
  if (inside < length || (edge === 'end' && inside === length)) return (p.sourceStart + inside) / TARGET_SAMPLE_RATE;
  const next = pieces[lo + 1];
  return (edge === 'start' && next ? next.sourceStart : p.sourceEnd) / TARGET_SAMPLE_RATE;
}

/** A decoded segment of the joined audio, moved to the original time line. */
export function toSourceSegment(layout: SpeechLayout, s: Segment): Segment {
  const start = toSourceTime(layout, s.start, 'start');
  const end = Math.max(start, toSourceTime(layout, s.end, 'end'));
  const seek = Math.round(toSourceTime(layout, s.seek / 100, 'start') * 100);
  const words = s.words?.map((w) => {
    const wordStart = Math.min(end, Math.max(start, toSourceTime(layout, w.start, 'start')));
    return { ...w, start: wordStart, end: Math.min(end, Math.max(wordStart, toSourceTime(layout, w.end, 'end'))) };
  });
  return { ...s, start, end, seek, ...(words ? { words } : {}) };
}

/**
 * Transcribes only `regions` of 16 kHz `samples` (as `transcribe` does the whole), timestamps on
 * the original time line and `duration` the original's. With no region the model is not run:
 * the transcript is empty, and the language is the one asked for, or English with probability 0
 * when a multilingual model was to detect it (there is nothing to detect it from).
 */
export async function transcribeSpeech(
  w: DecodingModel,
  samples: Float32Array,
  regions: readonly SampleSpan[],
  options: TranscribeOptions = {},
): Promise<TranscriptionRun> {
  const layout = layoutSpeech(regions, samples.length);
  const duration = samples.length / TARGET_SAMPLE_RATE;
  const requested = options.language?.trim().toLowerCase();
  const detect = w.tokenizer.isMultilingual && (requested === undefined || requested === '' || requested === 'auto');
  if (layout.pieces.length === 0 && detect) {
    return { language: 'en', languageProbability: 0, duration, task: options.task ?? 'transcribe', segments: none() };
  }
  const onProgress = options.onProgress;
  const run = await transcribe(w, gatherSpeech(samples, layout), {
    ...options,
    onProgress: onProgress && ((done, _total, resume) => onProgress(toSourceTime(layout, done, 'end'), duration, resume)),
  });
  async function* mapped(): AsyncGenerator<Segment, void, undefined> {
    for await (const s of run.segments) yield toSourceSegment(layout, s);
  }
  return { language: run.language, languageProbability: run.languageProbability, duration, task: run.task, segments: mapped() };
}

async function* none(): AsyncGenerator<Segment, void, undefined> {}

export interface VadTranscribeOptions extends TranscribeOptions {
  /** Decode only what the VAD finds to be speech (default true). */
  vadFilter?: boolean;
  /** Tuning of the speech regions (defaults: DEFAULT_SPEECH_SEGMENT_OPTIONS). */
  vad?: SpeechSegmentOptions;
  /** Stops the VAD pass between chunks. */
  signal?: AbortSignal;
}

export async function transcribeWithVad(w: DecodingModel, samples: Float32Array, options: VadTranscribeOptions = {}): Promise<TranscriptionRun> {
  const { vadFilter = true, vad, signal, ...rest } = options;
  if (!vadFilter) return transcribe(w, samples, rest);
  const regions = await detectSpeech(await loadSileroVad(), samples, vad, signal);
  return transcribeSpeech(w, samples, regions, rest);
}

/** `transcribeWithVad` to the end, gathered (as `transcribeAll`). */
export async function transcribeWithVadAll(w: DecodingModel, samples: Float32Array, options: VadTranscribeOptions = {}): Promise<Transcription> {
  const run = await transcribeWithVad(w, samples, options);
  const segments = [];
  for await (const s of run.segments) segments.push(s);
  const { language, languageProbability, duration, task } = run;
  return { language, languageProbability, duration, task, text: segments.map((s) => s.text).join(''), segments };
}
