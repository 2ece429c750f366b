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
// Hand-written (FFT, mel filters by segments) because this is the hot path; scratch buffers are owned by the
// extractor, so nothing is allocated per frame. Frames that only see zeros (the padding) skip the
// FFT: their value is log10(1e-10) = -10 exactly, as in the references.
import { EarshotError } from '../errors.ts';
import type { FeatureConfig } from './config.ts';
import { log10f } from './fast-log10.ts';
import { RealPowerSpectrum } from './fft.ts';
import { melSegments, type MelSegments } from './mel-filters.ts';

const MEL_FLOOR = 1e-10;
const LOG_FLOOR = log10f(MEL_FLOOR);
/** Frames computed before being written out (writes along mel rows then come in runs). */
const BLOCK = 64;
/** Dynamic range kept below the maximum, in log10 units (80 dB). */
const LOG_RANGE = 8;

function normalise(value: number, floor: number): number {
  return ((value > floor ? value : floor) + 4) * 0.25;
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
  /** log10 mel before the clamp and scaling, row-major [nMels × nFrames]. */
  private readonly raw: Float32Array;

  constructor(raw: Float32Array, nMels: number, nFrames: number, chunkFrames: number, logMax: number) {
    this.raw = raw;
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
    const floor = this.logMax - LOG_RANGE;
    const raw = this.raw;
    for (let m = 0; m < this.nMels; m++) {
      const from = m * this.nFrames + seek;
      const to = m * frames;
      for (let t = 0; t < take; t++) target[to + t] = normalise(raw[from + t], floor);
      target.fill(0, to + take, to + frames);
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
  private readonly power: Float64Array;
  /** Mel power of BLOCK consecutive frames, frame-major, before they are written out mel-major. */
  private readonly block: Float32Array;

  constructor(config: FeatureConfig) {
    this.config = config;
    const hann = new Float64Array(config.nFft);
    for (let n = 0; n < config.nFft; n++) hann[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / config.nFft);
    this.fft = new RealPowerSpectrum(hann);
    this.filters = melSegments(config.nMels, config.nFft, config.sampleRate);
    this.frame = new Float32Array(config.nFft);
    this.power = new Float64Array(this.fft.bins);
    this.block = new Float32Array(BLOCK * config.nMels);
  }

  /**
   * One encoder input from the first 30 s of `samples` (16 kHz mono), as WhisperFeatureExtractor
   * computes it: row-major [nMels × 3000], written into `out` when given.
   */
  window(samples: Float32Array, out?: Float32Array): Float32Array {
    const { nMels, chunkSamples, chunkFrames } = this.config;
    const target = checkedOut(out, nMels * chunkFrames);
    const content = Math.min(samples.length, chunkSamples);
    const logMax = this.rawLogMel(samples, content, chunkSamples, chunkFrames, target);
    const floor = logMax - LOG_RANGE;
    for (let i = 0; i < target.length; i++) target[i] = normalise(target[i], floor);
    return target;
  }

  /** The whole file's log-mel for the long-form loop (see the header). */
  longForm(samples: Float32Array): LongFormMel {
    const { nMels, chunkSamples, chunkFrames, hopLength } = this.config;
    const total = samples.length + chunkSamples;
    const nFrames = Math.floor(total / hopLength);
    const raw = new Float32Array(nMels * nFrames);
    const logMax = this.rawLogMel(samples, samples.length, total, nFrames, raw);
    return new LongFormMel(raw, nMels, nFrames, chunkFrames, logMax);
  }

  /**
   * log10 mel of frames 0..nFrames-1 of the signal `samples[0..content)` followed by zeros up to
   * `total` samples, reflect-padded by n_fft/2; into `out` as [nMels × nFrames]. Returns the max.
   */
  private rawLogMel(
    samples: Float32Array,
    content: number,
    total: number,
    nFrames: number,
    out: Float32Array,
  ): number {
    const { nFft, hopLength, nMels } = this.config;
    const { end, rise, fall } = this.filters;
    const frame = this.frame;
    const power = this.power;
    const block = this.block;
    const half = nFft >> 1;
    const last = total - 1;
    let logMax = -Infinity;
    for (let t0 = 0; t0 < nFrames; t0 += BLOCK) {
      const count = Math.min(BLOCK, nFrames - t0);
      for (let b = 0; b < count; b++) {
        const begin = (t0 + b) * hopLength - half;
        const row = b * nMels;
        if (begin >= 0 && begin + nFft <= content) {
          this.fft.compute(samples, begin, power);
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
            block.fill(0, row, row + nMels);
            continue;
          }
          this.fft.compute(frame, 0, power);
        }
        // Band j - 1 = its rising sum (segment j - 1) + its falling sum (segment j).
        let k = 0;
        let rising = 0;
        for (let j = 0; j <= nMels; j++) {
          let up = 0;
          let down = 0;
          for (const stop = end[j]; k < stop; k++) {
            const p = power[k];
            up += rise[k] * p;
            down += fall[k] * p;
          }
          if (j > 0) block[row + j - 1] = rising + down;
          rising = up;
        }
      }
      // Frames were computed frame-major; the output is mel-major.
      for (let m = 0; m < nMels; m++) {
        const to = m * nFrames + t0;
        for (let b = 0; b < count; b++) {
          const sum = block[b * nMels + m];
          if (sum - sum !== 0) throw nonFinite(t0 + b, hopLength);
          const value = sum > MEL_FLOOR ? log10f(sum) : LOG_FLOOR;
          out[to + b] = value;
          if (value > logMax) logMax = value;
        }
      }
    }
    return logMax;
  }
}

// A NaN or ±Inf sample turns the spectrum of each frame that covers it into NaN or Inf (even at
// the window's zero: Inf · 0 is NaN), so checking the mel sums catches them without a pass of its
// own. Absurdly large finite samples (beyond ~1e17) overflow the float32 sums and land here too.
function nonFinite(frame: number, hopLength: number): EarshotError {
  return new EarshotError(
    'invalid_audio',
    'non_finite_samples',
    `audio holds a NaN, infinite or absurdly large sample near sample ${frame * hopLength}: samples must be finite (nominally within [-1, 1])`,
  );
}
