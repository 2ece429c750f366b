// Turns one 30 s window's sampled tokens into timed segments and says how far to move the window,
// as openai/whisper's transcribe.py does after each decode: a segment ends at every pair of
// consecutive timestamp tokens; a single timestamp at the very end means "no more speech in this
// window" (consume it all); otherwise the unfinished tail is dropped and the next window starts at
// the last timestamp. Pure arithmetic on token ids: decoding text is the caller's job.
import { TARGET_SAMPLE_RATE } from '../audio/index.ts';
import { HOP_LENGTH } from '../features/index.ts';
import { TIME_PRECISION } from './tokenizer.ts';

/** Seconds per mel frame (10 ms). */
export const SECONDS_PER_FRAME = HOP_LENGTH / TARGET_SAMPLE_RATE;

/** Mel frames in one 30 s window. */
export const N_FRAMES = 3000;
/** Mel frames per timestamp step: N_FRAMES / n_audio_ctx = 3000 / 1500. */
export const INPUT_STRIDE = 2;

export interface WindowSegment {
  /** Seconds from the start of the audio. */
  start: number;
  end: number;
  /** This segment's tokens, its timestamp tokens included (openai keeps them in `tokens`). */
  tokens: number[];
  /** The tokens to decode for its text: those below <|endoftext|>. */
  textTokens: number[];
}

export interface WindowSplit {
  segments: WindowSegment[];
  /** Mel frames to add to `seek`. */
  seekAdvance: number;
  /** The window ended in a lone timestamp: nothing was cut off, the whole window was consumed. */
  singleTimestampEnding: boolean;
}

export interface WindowInfo {
  /** <|0.00|>'s id. */
  timestampBegin: number;
  /** <|endoftext|>'s id. */
  eot: number;
  /** Mel frames of real audio in this window (≤ N_FRAMES; less in the last window). */
  segmentSize: number;
  /** `seek` of this window, in mel frames. */
  seek: number;
}

/** Start of the window at `seek` frames, in seconds, computed as transcribe.py does. */
export function seekToSeconds(seek: number): number {
  return seek * SECONDS_PER_FRAME;
}

/** Splits a window's sampled tokens (after the SOT sequence, before EOT). */
export function splitWindow(tokens: readonly number[], w: WindowInfo): WindowSplit {
  const tsBegin = w.timestampBegin;
  const timeOffset = seekToSeconds(w.seek);
  const n = tokens.length;
  const isTs = (i: number): boolean => tokens[i]! >= tsBegin;
  const textOf = (slice: number[]): number[] => slice.filter((t) => t < w.eot);

  const singleTimestampEnding = n >= 2 && !isTs(n - 2) && isTs(n - 1);
  const slices: number[] = [];
  for (let i = 1; i < n; i++) if (isTs(i - 1) && isTs(i)) slices.push(i);

  if (slices.length > 0) {
    if (singleTimestampEnding) slices.push(n);
    const segments: WindowSegment[] = [];
    let last = 0;
    for (const current of slices) {
      const sliced = tokens.slice(last, current);
      segments.push({
        start: timeOffset + (sliced[0]! - tsBegin) * TIME_PRECISION,
        end: timeOffset + (sliced[sliced.length - 1]! - tsBegin) * TIME_PRECISION,
        tokens: sliced,
        textTokens: textOf(sliced),
      });
      last = current;
    }
    const seekAdvance = singleTimestampEnding
      ? w.segmentSize
      : (tokens[last - 1]! - tsBegin) * INPUT_STRIDE; // ignore the unfinished tail: restart at the last timestamp
    return { segments, seekAdvance, singleTimestampEnding };
  }

  // No complete pair: the whole window is one segment, ending at the last timestamp if there is
  // one past <|0.00|>, else at the end of the audio in the window.
  let duration = w.segmentSize * SECONDS_PER_FRAME;
  for (let i = n - 1; i >= 0; i--) {
    if (isTs(i)) {
      if (tokens[i] !== tsBegin) duration = (tokens[i]! - tsBegin) * TIME_PRECISION;
      break;
    }
  }
  const all = tokens.slice();
  return {
    segments: [{ start: timeOffset, end: timeOffset + duration, tokens: all, textTokens: textOf(all) }],
    seekAdvance: w.segmentSize,
    singleTimestampEnding,
  };
}
