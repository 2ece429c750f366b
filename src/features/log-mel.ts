// Whisper's log-mel front end: 16 kHz mono samples → the encoder's `input_features`.
//
// Per frame: periodic Hann window of n_fft samples every hop_length samples, centred (the signal is
// reflect-padded by n_fft/2 at both ends, like torch.stft(center=True)), |FFT|², Slaney mel filters,
// log10(max(x, 1e-10)). The STFT's last frame is dropped, as openai/whisper does. Over the whole
// array: max(x, globalMax − 8), then (x + 4) / 4.
//
// Two entry points, because the two callers differ in what "the whole array" is:
// - `window(samples)`: one 30 s encoder input, exactly WhisperFeatureExtractor's: the audio is cut
//   or zero-padded to 30 s first, then reflect-padded, and the max is taken over that window.
// - `longForm(samples)`: openai/whisper transcribe.py's mel of the whole file with 30 s of zeros
//   appended (log_mel_spectrogram(audio, padding=N_SAMPLES)), the max taken over the whole file.
//   The long-form loop then takes `window(seek, segmentFrames)` slices, zero-padded to 3000 frames
//   like transcribe.py's pad_or_trim(mel[:, seek:seek + segment_size]), where current openai/whisper
//   passes segment_size = min(3000, content_frames - seek, clip_end - seek). (Its early-2023
//   versions sliced a full 3000 frames, reading the padding's mel instead of zeros: that is
//   `window(seek, 3000)`.)
//
// Two passes, because the clamp needs the global max: (1) FFT and mel filters per frame, keeping
// the linear mel power (float32, as the references keep it) frame-major and the max; (2) log10,
// clamp and scale, written mel-major. window() runs both at once; longForm() runs (1) over the
// file and LongFormMel.window() runs (2) over each slice, so a slice costs about 240 000 logs.
// Values at or below the clamp skip the log.
//
// Hand-written (FFT, mel filters by segments) because this is the hot path; scratch buffers are
// owned by the extractor, so nothing is allocated per frame. Frames that only see zeros (the
// padding) skip the FFT: their mel power is 0, i.e. log10(1e-10) = -10, as in the references.
import { EarshotError } from '../errors.ts';
import type { FeatureConfig } from './config.ts';
import { log10f } from './fast-log10.ts';
import { RealPowerSpectrum } from './fft.ts';
import { melSegments, type MelSegments } from './mel-filters.ts';

export const MEL_FLOOR = 1e-10;
export const LOG_FLOOR = log10f(MEL_FLOOR);
/** Dynamic range kept below the maximum, in log10 units (80 dB). */
export const LOG_RANGE = 8;
/** Largest float32: a mel sum above it would be stored as Infinity. */
const FLOAT32_MAX = 3.4028234663852886e38;
/** Frames per tile of pass (2): a tile of the frame-major input (64 × 128 × 4 B) stays in L1. */
const TILE = 64;

/**
 * Pass (2): frames [from, from + count) of `mel` (linear, frame-major [frames × nMels]) to
 * (max(log10 x, logMax − 8) + 4) / 4 in columns [0, count) of `out` (mel-major, `outFrames` per row).
 */
function finish(
  mel: Float32Array,
  nMels: number,
  from: number,
  count: number,
  logMax: number,
  out: Float32Array,
  outFrames: number,
): void {
  const floorLog = logMax - LOG_RANGE;
  // At or below `clampBelow` the result is the clamp value whatever the log: skip the log.
  const clampBelow = Math.max(10 ** floorLog, MEL_FLOOR);
  const clamped = (Math.max(floorLog, LOG_FLOOR) + 4) * 0.25;
  for (let t0 = 0; t0 < count; t0 += TILE) {
    const n = Math.min(TILE, count - t0);
    for (let m = 0; m < nMels; m++) {
      const to = m * outFrames + t0;
      let at = (from + t0) * nMels + m;
      for (let b = 0; b < n; b++, at += nMels) {
        const v = mel[at];
        if (v > clampBelow) {
          const l = log10f(v);
          out[to + b] = ((l > floorLog ? l : floorLog) + 4) * 0.25;
        } else {
          out[to + b] = clamped;
        }
      }
    }
  }
}

/** log10 of the largest mel power, floored like every value. */
export function logOfMax(maxPower: number): number {
  return maxPower > MEL_FLOOR ? log10f(maxPower) : LOG_FLOOR;
}

/** The whole-file log-mel of the long-form path, sliced into encoder windows on demand. */
export class LongFormMel {
  readonly nMels: number;
  /** Frames of the padded file: floor((samples + 30 s) / hop). */
  readonly nFrames: number;
  /** Frames that hold audio, floor(samples / hop): transcribe.py's `content_frames`. */
  readonly contentFrames: number;
  /** Frames per encoder window (3000). */
  readonly chunkFrames: number;
  /** Largest log10 mel value over the whole padded file. */
  readonly logMax: number;
  /** Linear mel power, frame-major [nFrames × nMels]. */
  private readonly power: Float32Array;

  constructor(power: Float32Array, nMels: number, nFrames: number, chunkFrames: number, logMax: number) {
    this.power = power;
    this.nMels = nMels;
    this.nFrames = nFrames;
    this.chunkFrames = chunkFrames;
    this.contentFrames = nFrames - chunkFrames;
    this.logMax = logMax;
  }

  /**
   * Encoder input for frames [seek, seek + segmentFrames), normalised with the whole file's max,
   * zero-filled (the value 0, as pad_or_trim does) past the segment or the end of the file.
   * Row-major [nMels × chunkFrames]; written into `out` when given.
   */
  window(seek: number, segmentFrames: number = this.chunkFrames, out?: Float32Array): Float32Array {
    const frames = this.chunkFrames;
    if (!Number.isInteger(seek) || seek < 0 || seek > this.nFrames) {
      throw new EarshotError('invalid_argument', 'bad_seek', `mel seek ${seek} is outside 0..${this.nFrames}`);
    }
    if (!Number.isInteger(segmentFrames) || segmentFrames < 0 || segmentFrames > frames) {
      throw new EarshotError(
        'invalid_argument',
        'bad_segment',
        `mel segment of ${segmentFrames} frames is outside 0..${frames}`,
      );
    }
    const target = checkedOut(out, this.nMels * frames);
    const take = Math.min(segmentFrames, this.nFrames - seek);
    finish(this.power, this.nMels, seek, take, this.logMax, target, frames);
    if (take < frames) {
      for (let m = 0; m < this.nMels; m++) target.fill(0, m * frames + take, (m + 1) * frames);
    }
    return target;
  }
}

function checkedOut(out: Float32Array | undefined, length: number): Float32Array {
  if (out === undefined) return new Float32Array(length);
  if (out.length !== length) {
    throw new EarshotError(
      'invalid_argument',
      'bad_output_buffer',
      `feature output buffer holds ${out.length} values, expected ${length}`,
    );
  }
  return out;
}

export class LogMelExtractor {
  readonly config: FeatureConfig;
  private readonly fft: RealPowerSpectrum;
  private readonly filters: MelSegments;
  /** Frames that reach into the padding are assembled here (samples are float32, so is this). */
  private readonly frame: Float32Array;
  private readonly spectrum: Float64Array;
  /** Pass (1)'s output for window(), frame-major [3000 × nMels]; allocated on first use. */
  private windowPower: Float32Array | undefined;

  constructor(config: FeatureConfig) {
    this.config = config;
    const hann = new Float64Array(config.nFft);
    for (let n = 0; n < config.nFft; n++) hann[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / config.nFft);
    this.fft = new RealPowerSpectrum(hann);
    this.filters = melSegments(config.nMels, config.nFft, config.sampleRate);
    this.frame = new Float32Array(config.nFft);
    this.spectrum = new Float64Array(this.fft.bins);
  }

  /**
   * One encoder input from the first 30 s of `samples` (16 kHz mono), as WhisperFeatureExtractor
   * computes it: row-major [nMels × 3000], written into `out` when given.
   */
  window(samples: Float32Array, out?: Float32Array): Float32Array {
    const { nMels, chunkSamples, chunkFrames } = this.config;
    const target = checkedOut(out, nMels * chunkFrames);
    this.windowPower ??= new Float32Array(chunkFrames * nMels);
    const content = Math.min(samples.length, chunkSamples);
    const maxPower = this.melFrames(samples, content, chunkSamples, 0, chunkFrames, this.windowPower, 0);
    finish(this.windowPower, nMels, 0, chunkFrames, logOfMax(maxPower), target, chunkFrames);
    return target;
  }

  /** The whole file's log-mel for the long-form loop (see the header). */
  longForm(samples: Float32Array): LongFormMel {
    const { nMels, chunkSamples, chunkFrames, hopLength } = this.config;
    const total = samples.length + chunkSamples;
    const nFrames = Math.floor(total / hopLength);
    const power = new Float32Array(nFrames * nMels);
    const maxPower = this.melFrames(samples, samples.length, total, 0, nFrames, power, 0);
    return new LongFormMel(power, nMels, nFrames, chunkFrames, logOfMax(maxPower));
  }

  /**
   * Pass (1): mel power of frames [from, to) of the signal `samples[0..content)` followed by zeros
   * up to `total` samples, reflect-padded by n_fft/2; frame t into row t − outFrame0 of `out`
   * (frame-major, nMels per row). Returns the largest value (0 for no frames). The incremental
   * log-mel (incremental-log-mel.ts) computes each frame with it once its samples have arrived, so
   * its frames are window()'s, bit for bit.
   */
  melFrames(
    samples: Float32Array,
    content: number,
    total: number,
    from: number,
    to: number,
    out: Float32Array,
    outFrame0: number,
  ): number {
    const { nFft, hopLength, nMels } = this.config;
    const { end, rise, fall } = this.filters;
    const frame = this.frame;
    const spectrum = this.spectrum;
    const half = nFft >> 1;
    const last = total - 1;
    let maxPower = 0;
    for (let t = from; t < to; t++) {
      const begin = t * hopLength - half;
      const row = (t - outFrame0) * nMels;
      if (begin >= 0 && begin + nFft <= content) {
        this.fft.compute(samples, begin, spectrum);
      } else {
        let silent = true;
        for (let n = 0; n < nFft; n++) {
          let i = begin + n;
          if (i < 0) i = -i;
          else if (i > last) i = 2 * last - i;
          const v = i < content ? samples[i] : 0;
          frame[n] = v;
          if (v !== 0) silent = false;
        }
        if (silent) {
          out.fill(0, row, row + nMels);
          continue;
        }
        this.fft.compute(frame, 0, spectrum);
      }
      // Band j - 1 = its rising sum (segment j - 1) + its falling sum (segment j).
      let k = 0;
      let rising = 0;
      let frameMax = 0;
      let frameSum = 0;
      for (let j = 0; j <= nMels; j++) {
        let up = 0;
        let down = 0;
        for (const stop = end[j]; k < stop; k++) {
          const p = spectrum[k];
          up += rise[k] * p;
          down += fall[k] * p;
        }
        if (j > 0) {
          const band = rising + down;
          out[row + j - 1] = band;
          frameSum += band;
          if (band > frameMax) frameMax = band;
        }
        rising = up;
      }
      // Mel powers are sums of squares: NaN or overflow anywhere shows in the frame's total.
      if (!(frameSum <= FLOAT32_MAX)) throw nonFinite(t, hopLength);
      if (frameMax > maxPower) maxPower = frameMax;
    }
    return maxPower;
  }
}

// A NaN or ±Inf sample turns the spectrum of each frame that covers it into NaN or Inf (even at
// the window's zero: Inf · 0 is NaN), so checking the mel sums catches them without a pass of its
// own. Absurdly large finite samples (beyond ~1e17) overflow the float32 mel powers and land here too.
function nonFinite(frame: number, hopLength: number): EarshotError {
  return new EarshotError(
    'invalid_audio',
    'non_finite_samples',
    `audio holds a NaN, infinite or absurdly large sample near sample ${frame * hopLength}: samples must be finite (nominally within [-1, 1])`,
  );
}
