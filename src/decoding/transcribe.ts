// Long-form transcription, as openai/whisper's transcribe(): the whole file's log-mel is walked in
// 30 s windows from `seek`; each window is decoded with temperature fallback, split into segments
// at timestamp pairs, and the window moves to the last complete segment. Segments come out as an
// async iterator, one window at a time, so callers can stream them.
import { TARGET_SAMPLE_RATE } from '../audio/index.ts';
import type { ModelRunner } from '../engine/model-types.ts';
import { EarshotError } from '../errors.ts';
import type { MelPool } from '../features/mel-pool.ts';
import { decodeWindow, type WindowDecodeOptions, type WindowDecodeResult } from './decode-window.ts';
import { detectLanguage } from './detect-language.ts';
import type { Segment, TranscriptionInfo, Transcription } from './transcription.ts';
import { fitToAudio, type UnnumberedSegment } from './segment-times.ts';
import { SECONDS_PER_FRAME, seekToSeconds, splitWindow } from './window-segments.ts';
import { encodePrompt, requestedLanguage, type Task } from './sot.ts';
import type { WhisperTokenizer } from './tokenizer.ts';
import { addWordTimestamps, assertWordTimestampsSupported } from './word-timestamps.ts';


/**
 * The parts of a loaded model that decoding uses: its runner (at the priority of the work, as the
 * model's work queue hands it out), tokenizer and long-form mel.
 */
export interface DecodingModel {
  runner: ModelRunner;
  tokenizer: WhisperTokenizer;
  mel: Pick<MelPool, 'longForm'>;
}

export const DEFAULT_TEMPERATURES = [0, 0.2, 0.4, 0.6, 0.8, 1.0] as const;

export interface TranscribeOptions {
  /** A code or name, or `auto` / undefined to detect (multilingual models). */
  language?: string;
  task?: Task;
  /** One temperature, or the fallback ladder (default 0, 0.2, …, 1.0). */
  temperature?: number | readonly number[];
  compressionRatioThreshold?: number | null;
  logprobThreshold?: number | null;
  noSpeechThreshold?: number | null;
  conditionOnPreviousText?: boolean;
  initialPrompt?: string;
  withoutTimestamps?: boolean;
  beamSize?: number;
  bestOf?: number;
  patience?: number;
  lengthPenalty?: number | null;
  sampleLen?: number;
  suppressTokens?: string | readonly number[];
  suppressBlank?: boolean;
  random?: () => number;
  /** Called after each window with seconds of audio done, the total, and where a resumed run would start. */
  onProgress?: (doneSeconds: number, totalSeconds: number, resume: ResumePoint) => void;
  /** Start at this mel frame instead of 0 (a resumed run: a ResumePoint's `seek`). */
  startSeek?: number;
  /** The text context carried into `startSeek`'s window (a ResumePoint's `previousTokens`); replaces initialPrompt. */
  previousTokens?: readonly number[];
  /** Give each segment its `words`, timed by cross-attention alignment (word-timestamps.ts). */
  wordTimestamps?: boolean;
}

/** Enough to continue a run later from the next window, as if it had never stopped. */
export interface ResumePoint {
  /** Mel frame (10 ms) of the next window. */
  seek: number;
  /** The tokens the next window is prompted with. */
  previousTokens: number[];
}

export interface TranscriptionRun extends TranscriptionInfo {
  segments: AsyncGenerator<Segment, void, undefined>;
}


export interface FallbackThresholds {
  compressionRatio: number | null;
  logprob: number | null;
  noSpeech: number | null;
}

/**
 * Decodes one window at rising temperatures until the result looks neither repetitive nor unsure
 * (transcribe.py's decode_with_fallback). Beam search applies at temperature 0 only, best_of above it.
 */
export async function decodeWithFallback(
  decode: (options: WindowDecodeOptions) => Promise<WindowDecodeResult>,
  temperatures: readonly number[],
  base: WindowDecodeOptions,
  thresholds: FallbackThresholds,
): Promise<WindowDecodeResult> {
  let result: WindowDecodeResult | undefined;
  for (const t of temperatures) {
    const opts: WindowDecodeOptions = { ...base, temperature: t };
    if (t > 0) {
      delete opts.beamSize;
      delete opts.patience;
    } else {
      delete opts.bestOf;
    }
    result = await decode(opts);
    let needsFallback = false;
    if (thresholds.compressionRatio !== null && result.compressionRatio > thresholds.compressionRatio) needsFallback = true;
    if (thresholds.logprob !== null && result.avgLogprob < thresholds.logprob) needsFallback = true;
    if (
      thresholds.noSpeech !== null &&
      result.noSpeechProb > thresholds.noSpeech &&
      thresholds.logprob !== null &&
      result.avgLogprob < thresholds.logprob
    ) {
      needsFallback = false; // silence: a retry would only invent words
    }
    if (!needsFallback) break;
  }
  return result!;
}

/**
 * Starts transcribing 16 kHz mono `samples`. Resolves once the language is known (detected on the
 * first window when not given); the segments are decoded as the iterator is pulled.
 */
export async function transcribe(w: DecodingModel, samples: Float32Array, options: TranscribeOptions = {}): Promise<TranscriptionRun> {
  const task = options.task ?? 'transcribe';
  const temperatures = typeof options.temperature === 'number' ? [options.temperature] : [...(options.temperature ?? DEFAULT_TEMPERATURES)];
  if (temperatures.length === 0 || temperatures.some((t) => !(t >= 0 && t <= 10))) {
    throw new EarshotError('invalid_argument', 'bad_temperature', 'temperature must be a number from 0 to 10 (or a list of them)');
  }
  if (options.startSeek !== undefined && !(Number.isInteger(options.startSeek) && options.startSeek >= 0)) {
    throw new EarshotError('invalid_argument', 'bad_start_seek', `startSeek must be a whole number of mel frames ≥ 0, got ${options.startSeek}`);
  }
  const thresholds: FallbackThresholds = {
    compressionRatio: options.compressionRatioThreshold === undefined ? 2.4 : options.compressionRatioThreshold,
    logprob: options.logprobThreshold === undefined ? -1.0 : options.logprobThreshold,
    noSpeech: options.noSpeechThreshold === undefined ? 0.6 : options.noSpeechThreshold,
  };
  const tok = w.tokenizer;
  // The runner carries the work's priority (the work queue hands it out: engine/priority.ts).
  const runner = w.runner;
  if (options.wordTimestamps) assertWordTimestampsSupported(runner, tok);
  const mel = await w.mel.longForm(samples);
  const contentFrames = mel.contentFrames;
  const duration = samples.length / TARGET_SAMPLE_RATE;
  const chunkFrames = mel.chunkFrames;
  const windowFeatures = new Float32Array(mel.nMels * chunkFrames);

  let language = 'en';
  let languageProbability = 1;
  let firstEncoded: Awaited<ReturnType<typeof runner.encode>> | undefined;
  const asked = requestedLanguage(tok, options.language);
  if (asked !== undefined) language = asked;
  else {
    // As transcribe.py: detection reads pad_or_trim(mel, 3000), the first 30 s of the padded file's
    // mel, so a short clip is followed by the log-mel of the appended zero samples. The first
    // decoding window is zero-filled past its audio instead; the two are the same input only when
    // the file fills the window, and only then is the detection's encoding reused for decoding.
    const detectionEncoded = await runner.encode(mel.window(0, chunkFrames, windowFeatures), 1);
    try {
      const detected = await detectLanguage(runner, tok, detectionEncoded);
      language = detected.language;
      languageProbability = detected.probability;
    } catch (e) {
      runner.finish?.(detectionEncoded);
      throw e;
    }
    if (contentFrames >= chunkFrames) firstEncoded = detectionEncoded;
    else runner.finish?.(detectionEncoded);
  }

  const base: WindowDecodeOptions = {
    task,
    language,
    withoutTimestamps: options.withoutTimestamps,
    beamSize: options.beamSize,
    bestOf: options.bestOf,
    patience: options.patience,
    lengthPenalty: options.lengthPenalty,
    sampleLen: options.sampleLen,
    suppressTokens: options.suppressTokens,
    suppressBlank: options.suppressBlank,
    random: options.random,
  };

  async function* segments(): AsyncGenerator<Segment, void, undefined> {
    let seek = options.startSeek ?? 0;
    const allTokens: number[] = options.previousTokens
      ? [...options.previousTokens]
      : options.initialPrompt
        ? encodePrompt(tok, options.initialPrompt)
        : [];
    let promptResetSince = 0;
    let nextId = 0;
    let lastSpeechTimestamp = 0;
    while (seek < contentFrames) {
      const segmentSize = Math.min(chunkFrames, contentFrames - seek);
      const encoded =
        seek === 0 && firstEncoded ? firstEncoded : await runner.encode(mel.window(seek, segmentSize, windowFeatures), 1);
      try {
        const result = await decodeWithFallback(
          (o) => decodeWindow(runner, w.tokenizer, encoded, o),
          temperatures,
          { ...base, prompt: allTokens.slice(promptResetSince) },
          thresholds,
        );
        const previousSeek = seek;

        let skip = thresholds.noSpeech !== null && result.noSpeechProb > thresholds.noSpeech;
        if (skip && thresholds.logprob !== null && result.avgLogprob > thresholds.logprob) skip = false;
        if (skip) {
          seek += segmentSize;
        } else {
          const split = splitWindow(result.tokens, {
            timestampBegin: tok.timestampBegin,
            eot: tok.eot,
            segmentSize,
            seek,
          });
          if (options.withoutTimestamps) {
            // No timestamp tokens: the window is one segment spanning its audio.
            split.segments = [
              { start: seekToSeconds(seek), end: seekToSeconds(seek + segmentSize), tokens: result.tokens, textTokens: result.tokens },
            ];
            split.seekAdvance = segmentSize;
          }
          seek += split.seekAdvance;
          const timed = options.wordTimestamps
            ? await addWordTimestamps(runner, tok, {
                segments: split.segments,
                encoded,
                language,
                task,
                seek: previousSeek,
                segmentFrames: segmentSize,
                lastSpeechTimestamp,
              })
            : undefined;
          if (timed) {
            // As openai: the next window starts after the last word unless the window ended cleanly.
            const lastWordEnd = timed.flatMap((t) => t.words).at(-1)?.end;
            if (!split.singleTimestampEnding && lastWordEnd !== undefined && lastWordEnd > seekToSeconds(previousSeek)) {
              seek = Math.round(lastWordEnd * 100);
            }
          }
          const windowTokens: number[] = [];
          const decoded: UnnumberedSegment[] = [];
          for (const [i, s] of split.segments.entries()) {
            let text = tok.decode(s.textTokens);
            let tokens = s.tokens;
            const t = timed?.[i];
            let words = t?.words;
            // As openai, after word timing may have moved the segment's ends.
            if ((t?.start ?? s.start) === (t?.end ?? s.end) || text.trim() === '') {
              text = '';
              tokens = [];
              words = t && [];
            }
            if (t && words && words.length > 0) lastSpeechTimestamp = t.end;
            windowTokens.push(...tokens);
            decoded.push({
              seek: previousSeek,
              start: t?.start ?? s.start,
              end: t?.end ?? s.end,
              text,
              tokens,
              temperature: result.temperature,
              avg_logprob: result.avgLogprob,
              compression_ratio: result.compressionRatio,
              no_speech_prob: result.noSpeechProb,
              ...(words ? { words } : {}),
            });
          }
          // Times the model placed in the zero padding are held within the audio (segment-times.ts).
          for (const s of fitToAudio(decoded, seekToSeconds(previousSeek), duration)) yield { id: nextId++, ...s };
          allTokens.push(...windowTokens);
          if (options.conditionOnPreviousText === false || result.temperature > 0.5) promptResetSince = allTokens.length;
        }
      } finally {
        runner.finish?.(encoded);
      }
      options.onProgress?.(Math.min(contentFrames, seek) * SECONDS_PER_FRAME, duration, { seek, previousTokens: allTokens.slice(promptResetSince) });
    }
  }

  return { language, languageProbability, duration, task, segments: segments() };
}

/** Transcribes to the end and gathers the result (text is the segments' text joined). */
export async function transcribeAll(w: DecodingModel, samples: Float32Array, options: TranscribeOptions = {}): Promise<Transcription> {
  const run = await transcribe(w, samples, options);
  const segments: Segment[] = [];
  for await (const s of run.segments) segments.push(s);
  const { language, languageProbability, duration, task } = run;
  return { language, languageProbability, duration, task, text: segments.map((s) => s.text).join(''), segments };
}
