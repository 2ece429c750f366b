// One live utterance's log-mel, computed as its audio arrives: each 10 ms frame's FFT, mel filters
// and log10 are done once, when the last sample the frame reads has come, instead of a whole 30 s
// window per partial hypothesis. window(length) then gives exactly what LogMelExtractor.window
// gives for the utterance's first `length` samples, bit for bit (test/features/incremental-log-mel.test.ts).
//
// What cannot be done ahead:
// - The frames near the end of the audio read past it (the centred STFT's n_fft/2 overhang, where
//   window() sees the zero padding): up to ceil(n_fft / hop) frames, computed at each read from
//   the audio up to `length` (more audio may have arrived since: those frames are computed again).
// - The normalisation: max(x, max − 8) and (x + 4) / 4 take the window's largest value, which
//   grows with the audio. So the linear power and its log10 are kept per frame (with the running
//   largest value), and the clamp and scale are applied at each read: no log is taken there.
// The first frames reflect the utterance's own start (window()'s reflect padding), so they are
// final once samples up to n_fft/2 have come. Audio past the window (30 s) is ignored, as window()
// ignores it. Storage grows with the utterance, to at most ~5 MB for 30 s at 80 mels.
import { EarshotError } from '../errors.ts';
import { log10f } from './fast-log10.ts';
import { LOG_FLOOR, LOG_RANGE, logOfMax, MEL_FLOOR, type LogMelExtractor } from './log-mel.ts';

/** Frames per tile when writing the mel-major output (as log-mel.ts's finish). */
const TILE = 64;
/** Initial room, in samples (4 s): most utterances are short. */
const INITIAL_SAMPLES = 4 * 16000;

export type MelFrames = Pick<LogMelExtractor, 'config' | 'melFrames'>;

export class IncrementalLogMel {
  private readonly x: MelFrames;
  private samples: Float32Array;
  private length = 0;
  /** Frames computed: every frame below reads only samples that have arrived. */
  private done = 0;
  /** Linear mel power of the computed frames, frame-major [done × nMels]. */
  private power: Float32Array;
  /** log10 of each computed value, in double as log-mel.ts uses it (only read above the floor). */
  private logs: Float64Array;
  /** Largest power over frames 0..t (the unrounded sums, as window() takes its max). */
  private runningMax: Float64Array;
  /** The frames past the stable ones, computed per read. */
  private readonly tail: Float32Array;

  constructor(extractor: MelFrames) {
    this.x = extractor;
    const { nFft, hopLength, nMels, chunkSamples } = extractor.config;
    this.samples = new Float32Array(Math.min(INITIAL_SAMPLES, chunkSamples));
    const frames = this.framesFor(this.samples.length);
    this.power = new Float32Array(frames * nMels);
    this.logs = new Float64Array(frames * nMels);
    this.runningMax = new Float64Array(frames);
    this.tail = new Float32Array((Math.ceil(nFft / hopLength) + 1) * nMels);
  }

  /** Samples taken so far (at most one window's). */
  get received(): number {
    return this.length;
  }

  /** Takes the next samples and computes the frames they complete. */
  push(chunk: Float32Array): void {
    const { chunkSamples, nMels } = this.x.config;
    const take = Math.min(chunk.length, chunkSamples - this.length);
    if (take <= 0) return;
    this.grow(this.length + take);
    this.samples.set(chunk.subarray(0, take), this.length);
    this.length += take;
    const to = this.stableFrames(this.length);
    if (to <= this.done) return;
    const power = this.power;
    const logs = this.logs;
    let max = this.done > 0 ? this.runningMax[this.done - 1]! : 0;
    for (let t = this.done; t < to; t++) {
      // Frame by frame: the max window() takes is over the unrounded sums melFrames returns.
      const frameMax = this.x.melFrames(this.samples, this.length, chunkSamples, t, t + 1, power, 0);
      if (frameMax > max) max = frameMax;
      this.runningMax[t] = max;
      for (let i = t * nMels, e = i + nMels; i < e; i++) {
        const v = power[i]!;
        logs[i] = v > MEL_FLOOR ? log10f(v) : LOG_FLOOR;
      }
    }
    this.done = to;
  }

  /**
   * The encoder input for the first `length` samples (default: all received), as
   * LogMelExtractor.window gives it: row-major [nMels × chunkFrames], written into `out` when given.
   */
  window(length: number = this.length, out?: Float32Array): Float32Array {
    const { nMels, chunkFrames, chunkSamples, nFft, hopLength } = this.x.config;
    const content = Math.min(length, chunkSamples);
    if (!Number.isInteger(length) || length < 0 || content > this.length) {
      throw new EarshotError('invalid_argument', 'bad_mel_length', `log-mel of ${length} samples asked, ${this.length} received`);
    }
    const target = out ?? new Float32Array(nMels * chunkFrames);
    if (target.length !== nMels * chunkFrames) {
      throw new EarshotError('invalid_argument', 'bad_output_buffer', `feature output buffer holds ${target.length} values, expected ${nMels * chunkFrames}`);
    }
    const stable = Math.min(this.stableFrames(content), this.done);
    // Frames that read a sample at or past `content` (the rest read only zeros: their power is 0).
    const tailEnd = Math.min(chunkFrames, Math.ceil((content + (nFft >> 1)) / hopLength));
    const tailMax = this.x.melFrames(this.samples, content, chunkSamples, stable, tailEnd, this.tail, stable);
    const stableMax = stable > 0 ? this.runningMax[stable - 1]! : 0;
    const logMax = logOfMax(Math.max(stableMax, tailMax));
    const floorLog = logMax - LOG_RANGE;
    // As log-mel.ts's finish: at or below `clampBelow` the value is the clamp whatever its log.
    const clampBelow = Math.max(10 ** floorLog, MEL_FLOOR);
    const clamped = (Math.max(floorLog, LOG_FLOOR) + 4) * 0.25;
    const power = this.power;
    const logs = this.logs;
    for (let t0 = 0; t0 < stable; t0 += TILE) {
      const n = Math.min(TILE, stable - t0);
      for (let m = 0; m < nMels; m++) {
        const to = m * chunkFrames + t0;
        let at = t0 * nMels + m;
        for (let b = 0; b < n; b++, at += nMels) {
          if (power[at]! > clampBelow) {
            const l = logs[at]!;
            target[to + b] = ((l > floorLog ? l : floorLog) + 4) * 0.25;
          } else target[to + b] = clamped;
        }
      }
    }
    for (let t = stable; t < tailEnd; t++) {
      for (let m = 0; m < nMels; m++) {
        const v = this.tail[(t - stable) * nMels + m]!;
        if (v > clampBelow) {
          const l = log10f(v);
          target[m * chunkFrames + t] = ((l > floorLog ? l : floorLog) + 4) * 0.25;
        } else target[m * chunkFrames + t] = clamped;
      }
    }
    for (let m = 0; m < nMels; m++) target.fill(clamped, m * chunkFrames + Math.max(tailEnd, stable), (m + 1) * chunkFrames);
    return target;
  }

  /**
   * Frames whose every sample (the reflected ones of the first frame included) is below `length`:
   * frame t reads samples up to t·hop + n_fft/2 − 1, and frame 0 reflects sample n_fft/2.
   */
  private stableFrames(length: number): number {
    const { nFft, hopLength, chunkFrames } = this.x.config;
    const half = nFft >> 1;
    return length > half ? Math.min(chunkFrames, Math.floor((length - half) / hopLength) + 1) : 0;
  }

  /** Frames that `samples` samples can complete, plus the overhang: the room the arrays need. */
  private framesFor(samples: number): number {
    return Math.min(this.x.config.chunkFrames, Math.ceil(samples / this.x.config.hopLength) + 1);
  }

  /** Room for `samples` samples and their frames (doubling, up to one window). */
  private grow(samples: number): void {
    if (samples <= this.samples.length) return;
    const { chunkSamples, nMels } = this.x.config;
    const size = Math.min(chunkSamples, Math.max(samples, 2 * this.samples.length));
    const s = new Float32Array(size);
    s.set(this.samples.subarray(0, this.length));
    this.samples = s;
    const frames = this.framesFor(size);
    const p = new Float32Array(frames * nMels);
    p.set(this.power.subarray(0, this.done * nMels));
    this.power = p;
    const l = new Float64Array(frames * nMels);
    l.set(this.logs.subarray(0, this.done * nMels));
    this.logs = l;
    const r = new Float64Array(frames);
    r.set(this.runningMax.subarray(0, this.done));
    this.runningMax = r;
  }
}
