// Power spectrum of one real frame via an FFT. Hand-written because it is the hot path of the
// front end (3000 frames per 30 s window) and Whisper's n_fft = 400 is not a power of two, which
// general npm FFTs either reject or handle through a slower Bluestein detour.
//
// How: a real input of even length N is packed into N/2 complex values (even samples as real
// parts, odd as imaginary), transformed with a mixed-radix (4, 2, 5) Stockham FFT, and the N/2 + 1
// non-negative-frequency bins are unpacked from that half-length result. For N = 400 that is a
// 200-point complex FFT (5 · 5 · 4 · 2). All buffers and twiddles live in the plan: no allocation
// per frame.
import { EarshotError } from '../errors.ts';

interface Stage {
  radix: number;
  /** Size of the sub-transforms already combined before this stage. */
  ns: number;
  /** cos/sin of the twiddles r·θ(j), interleaved per butterfly j and r = 1..radix-1; empty when ns = 1. */
  twiddles: Float64Array;
}

/** Splits n into radices 5, 4 and 2 (radix 5 first: the first stage needs no twiddles). */
function factorize(n: number): number[] | null {
  const radices: number[] = [];
  let rest = n;
  while (rest % 5 === 0) {
    radices.push(5);
    rest /= 5;
  }
  while (rest % 4 === 0) {
    radices.push(4);
    rest /= 4;
  }
  while (rest % 2 === 0) {
    radices.push(2);
    rest /= 2;
  }
  return rest === 1 ? radices : null;
}

const C1 = Math.cos((2 * Math.PI) / 5);
const C2 = Math.cos((4 * Math.PI) / 5);
const S1 = Math.sin((2 * Math.PI) / 5);
const S2 = Math.sin((4 * Math.PI) / 5);

/** A reusable plan computing |X[k]|², k = 0..n/2, of real frames of length n. */
export class RealPowerSpectrum {
  /** Frame length (the FFT size). */
  readonly size: number;
  /** Number of output bins, size / 2 + 1. */
  readonly bins: number;
  private readonly half: number;
  private readonly stages: Stage[];
  private bufA: Float64Array;
  private bufB: Float64Array;
  /** cos/sin of 2πk/size for the real-input unpacking, k = 0..half. */
  private readonly unpack: Float64Array;

  constructor(size: number) {
    const radices = size >= 2 && size % 2 === 0 ? factorize(size / 2) : null;
    if (!Number.isInteger(size) || radices === null) {
      throw new EarshotError(
        'invalid_argument',
        'unsupported_fft_size',
        `FFT size ${size} is not supported: it must be even with size/2 made of factors 2 and 5 (Whisper uses 400)`,
      );
    }
    this.size = size;
    this.half = size / 2;
    this.bins = this.half + 1;
    this.bufA = new Float64Array(2 * this.half);
    this.bufB = new Float64Array(2 * this.half);
    this.stages = [];
    let ns = 1;
    for (const radix of radices) {
      const count = this.half / radix;
      const twiddles = new Float64Array(ns === 1 ? 0 : count * (radix - 1) * 2);
      if (ns > 1) {
        for (let j = 0; j < count; j++) {
          const angle = (-2 * Math.PI * (j % ns)) / (ns * radix);
          for (let r = 1; r < radix; r++) {
            const at = (j * (radix - 1) + r - 1) * 2;
            twiddles[at] = Math.cos(r * angle);
            twiddles[at + 1] = Math.sin(r * angle);
          }
        }
      }
      this.stages.push({ radix, ns, twiddles });
      ns *= radix;
    }
    this.unpack = new Float64Array(2 * (this.half + 1));
    for (let k = 0; k <= this.half; k++) {
      this.unpack[2 * k] = Math.cos((2 * Math.PI * k) / size);
      this.unpack[2 * k + 1] = Math.sin((2 * Math.PI * k) / size);
    }
  }

  /**
   * Writes |X[k]|² of the windowed real frame into `power` (length `bins`). `frame` and `window`
   * have length `size`; `frame` is read from `offset`.
   */
  compute(frame: ArrayLike<number>, offset: number, window: Float64Array, power: Float64Array): void {
    const half = this.half;
    let src = this.bufA;
    let dst = this.bufB;
    for (let n = 0; n < half; n++) {
      src[2 * n] = frame[offset + 2 * n] * window[2 * n];
      src[2 * n + 1] = frame[offset + 2 * n + 1] * window[2 * n + 1];
    }
    for (const stage of this.stages) {
      this.pass(stage, src, dst);
      const t = src;
      src = dst;
      dst = t;
    }
    // Unpack: with Z the half-length transform, E[k] = (Z[k] + conj Z[h-k]) / 2 and
    // O[k] = (Z[k] - conj Z[h-k]) / 2i are the spectra of the even and odd samples, and
    // X[k] = E[k] + e^{-2πik/N} O[k].
    const w = this.unpack;
    for (let k = 0; k <= half; k++) {
      const a = k === half ? 0 : k;
      const b = k === 0 ? 0 : half - k;
      const zr = src[2 * a];
      const zi = src[2 * a + 1];
      const cr = src[2 * b];
      const ci = -src[2 * b + 1];
      const er = 0.5 * (zr + cr);
      const ei = 0.5 * (zi + ci);
      // (Z - conj Z') / 2i = (dI/2, -dR/2) for d = Z - conj Z'.
      const or = 0.5 * (zi - ci);
      const oi = -0.5 * (zr - cr);
      const c = w[2 * k];
      const s = -w[2 * k + 1];
      const xr = er + c * or - s * oi;
      const xi = ei + c * oi + s * or;
      power[k] = xr * xr + xi * xi;
    }
  }

  /** One Stockham pass (decimation in time, natural-order output). */
  private pass(stage: Stage, x: Float64Array, y: Float64Array): void {
    const { radix, ns, twiddles } = stage;
    const count = this.half / radix; // butterflies in this pass, also the input stride
    const hasTw = ns > 1;
    if (radix === 5) {
      for (let j = 0; j < count; j++) {
        let a0r = x[2 * j], a0i = x[2 * j + 1];
        let a1r = x[2 * (j + count)], a1i = x[2 * (j + count) + 1];
        let a2r = x[2 * (j + 2 * count)], a2i = x[2 * (j + 2 * count) + 1];
        let a3r = x[2 * (j + 3 * count)], a3i = x[2 * (j + 3 * count) + 1];
        let a4r = x[2 * (j + 4 * count)], a4i = x[2 * (j + 4 * count) + 1];
        if (hasTw) {
          const t = j * 8;
          let c = twiddles[t], s = twiddles[t + 1], tr = a1r;
          a1r = tr * c - a1i * s; a1i = tr * s + a1i * c;
          c = twiddles[t + 2]; s = twiddles[t + 3]; tr = a2r;
          a2r = tr * c - a2i * s; a2i = tr * s + a2i * c;
          c = twiddles[t + 4]; s = twiddles[t + 5]; tr = a3r;
          a3r = tr * c - a3i * s; a3i = tr * s + a3i * c;
          c = twiddles[t + 6]; s = twiddles[t + 7]; tr = a4r;
          a4r = tr * c - a4i * s; a4i = tr * s + a4i * c;
        }
        const b1r = a1r + a4r, b1i = a1i + a4i, d1r = a1r - a4r, d1i = a1i - a4i;
        const b2r = a2r + a3r, b2i = a2i + a3i, d2r = a2r - a3r, d2i = a2i - a3i;
        // y1/y4 = p1 ∓ i·q1, y2/y3 = p2 ∓ i·q2
        const p1r = a0r + C1 * b1r + C2 * b2r, p1i = a0i + C1 * b1i + C2 * b2i;
        const q1r = S1 * d1r + S2 * d2r, q1i = S1 * d1i + S2 * d2i;
        const p2r = a0r + C2 * b1r + C1 * b2r, p2i = a0i + C2 * b1i + C1 * b2i;
        const q2r = S2 * d1r - S1 * d2r, q2i = S2 * d1i - S1 * d2i;
        const k = j % ns;
        const d = (j - k) * 5 + k;
        y[2 * d] = a0r + b1r + b2r; y[2 * d + 1] = a0i + b1i + b2i;
        let o = 2 * (d + ns);
        y[o] = p1r + q1i; y[o + 1] = p1i - q1r;
        o = 2 * (d + 2 * ns);
        y[o] = p2r + q2i; y[o + 1] = p2i - q2r;
        o = 2 * (d + 3 * ns);
        y[o] = p2r - q2i; y[o + 1] = p2i + q2r;
        o = 2 * (d + 4 * ns);
        y[o] = p1r - q1i; y[o + 1] = p1i + q1r;
      }
    } else if (radix === 4) {
      for (let j = 0; j < count; j++) {
        const a0r = x[2 * j], a0i = x[2 * j + 1];
        let a1r = x[2 * (j + count)], a1i = x[2 * (j + count) + 1];
        let a2r = x[2 * (j + 2 * count)], a2i = x[2 * (j + 2 * count) + 1];
        let a3r = x[2 * (j + 3 * count)], a3i = x[2 * (j + 3 * count) + 1];
        if (hasTw) {
          const t = j * 6;
          let c = twiddles[t], s = twiddles[t + 1], tr = a1r;
          a1r = tr * c - a1i * s; a1i = tr * s + a1i * c;
          c = twiddles[t + 2]; s = twiddles[t + 3]; tr = a2r;
          a2r = tr * c - a2i * s; a2i = tr * s + a2i * c;
          c = twiddles[t + 4]; s = twiddles[t + 5]; tr = a3r;
          a3r = tr * c - a3i * s; a3i = tr * s + a3i * c;
        }
        const t0r = a0r + a2r, t0i = a0i + a2i, t1r = a0r - a2r, t1i = a0i - a2i;
        const t2r = a1r + a3r, t2i = a1i + a3i;
        // -i · (a1 - a3)
        const t3r = a1i - a3i, t3i = a3r - a1r;
        const k = j % ns;
        const d = (j - k) * 4 + k;
        y[2 * d] = t0r + t2r; y[2 * d + 1] = t0i + t2i;
        let o = 2 * (d + ns);
        y[o] = t1r + t3r; y[o + 1] = t1i + t3i;
        o = 2 * (d + 2 * ns);
        y[o] = t0r - t2r; y[o + 1] = t0i - t2i;
        o = 2 * (d + 3 * ns);
        y[o] = t1r - t3r; y[o + 1] = t1i - t3i;
      }
    } else {
      for (let j = 0; j < count; j++) {
        const a0r = x[2 * j], a0i = x[2 * j + 1];
        let a1r = x[2 * (j + count)], a1i = x[2 * (j + count) + 1];
        if (hasTw) {
          const c = twiddles[2 * j], s = twiddles[2 * j + 1], tr = a1r;
          a1r = tr * c - a1i * s; a1i = tr * s + a1i * c;
        }
        const k = j % ns;
        const d = (j - k) * 2 + k;
        y[2 * d] = a0r + a1r; y[2 * d + 1] = a0i + a1i;
        const o = 2 * (d + ns);
        y[o] = a0r - a1r; y[o + 1] = a0i - a1i;
      }
    }
  }
}
