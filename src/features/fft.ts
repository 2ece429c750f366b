// Power spectrum of one real frame via an FFT. Hand-written because it is the hot path of the
// front end (3000 frames per 30 s window) and Whisper's n_fft = 400 is not a power of two, which
// general npm FFTs either reject or handle through a slower Bluestein detour.
//
// How: a real input of even length N is packed into N/2 complex values (even samples as real
// parts, odd as imaginary), transformed with a mixed-radix (5, 8, 4, 2) Stockham FFT, and the N/2 + 1
// non-negative-frequency bins are unpacked from that half-length result. For N = 400 that is a
// 200-point complex FFT (5 · 5 · 8). All buffers and twiddles live in the plan: no allocation
// per frame.
import { EarshotError } from '../errors.ts';

interface Stage {
  radix: number;
  /** Size of the sub-transforms already combined before this stage. */
  ns: number;
  /** cos/sin of the twiddles r·2πk/(ns·radix), interleaved per k = 0..ns-1 and r = 1..radix-1. */
  twiddles: Float64Array;
}

/** Splits n into radices 5, 8, 4 and 2 (few passes; the first one needs no twiddles). */
function factorize(n: number): number[] | null {
  const radices: number[] = [];
  let rest = n;
  while (rest % 5 === 0) {
    radices.push(5);
    rest /= 5;
  }
  while (rest % 8 === 0) {
    radices.push(8);
    rest /= 8;
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
const R2 = Math.SQRT1_2;

/** A reusable plan computing |X[k]|², k = 0..n/2, of real frames of length n. */
export class RealPowerSpectrum {
  /** Frame length (the FFT size). */
  readonly size: number;
  /** Number of output bins, size / 2 + 1. */
  readonly bins: number;
  private readonly half: number;
  private readonly stages: Stage[];
  private readonly window: Float64Array;
  private readonly bufA: Float64Array;
  private readonly bufB: Float64Array;
  /** cos/sin of 2πk/size for the real-input unpacking, k = 0..half. */
  private readonly unpack: Float64Array;

  /** `window` (length = frame size) is applied to every frame. */
  constructor(window: Float64Array) {
    const size = window.length;
    const radices = size >= 2 && size % 2 === 0 ? factorize(size / 2) : null;
    if (!Number.isInteger(size) || radices === null) {
      throw new EarshotError(
        'invalid_argument',
        'unsupported_fft_size',
        `FFT size ${size} is not supported: it must be even with size/2 made of factors 2 and 5 (Whisper uses 400)`,
      );
    }
    this.size = size;
    this.window = window;
    this.half = size / 2;
    this.bins = this.half + 1;
    this.bufA = new Float64Array(2 * this.half);
    this.bufB = new Float64Array(2 * this.half);
    this.stages = [];
    let ns = 1;
    for (const radix of radices) {
      const twiddles = new Float64Array(ns * (radix - 1) * 2);
      for (let k = 0; k < ns; k++) {
        const angle = (-2 * Math.PI * k) / (ns * radix);
        for (let r = 1; r < radix; r++) {
          const at = (k * (radix - 1) + r - 1) * 2;
          twiddles[at] = Math.cos(r * angle);
          twiddles[at + 1] = Math.sin(r * angle);
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

  /** Writes |X[k]|² of the windowed frame `samples[offset .. offset + size)` into `power` (length `bins`). */
  compute(samples: Float32Array, offset: number, power: Float64Array): void {
    const half = this.half;
    const window = this.window;
    let src = this.bufA;
    let dst = this.bufB;
    let first = 0;
    if (this.stages.length > 0 && this.stages[0].radix === 5) {
      this.firstPass5(samples, offset, src);
      first = 1;
    } else {
      for (let n = 0; n < 2 * half; n++) src[n] = samples[offset + n] * window[n];
    }
    for (let i = first; i < this.stages.length; i++) {
      const { radix, ns, twiddles } = this.stages[i];
      const count = half / radix;
      if (radix === 5) pass5(src, dst, count, ns, twiddles);
      else if (radix === 8) pass8(src, dst, count, ns, twiddles);
      else if (radix === 4) pass4(src, dst, count, ns, twiddles);
      else pass2(src, dst, count, ns, twiddles);
      const t = src;
      src = dst;
      dst = t;
    }
    // Unpack: with Z the half-length transform, E[k] = (Z[k] + conj Z[h-k]) / 2 and
    // O[k] = (Z[k] - conj Z[h-k]) / 2i are the spectra of the even and odd samples, and
    // X[k] = E[k] + e^{-2πik/N} O[k]. Since E[h-k] = conj E[k], O[h-k] = conj O[k] and
    // e^{-2πi(h-k)/N} = -conj e^{-2πik/N}: |X[h-k]| = |E[k] - e^{-2πik/N} O[k]|.
    const w = this.unpack;
    for (let k = 0; 2 * k <= half; k++) {
      const b = k === 0 ? 0 : half - k;
      const zr = src[2 * k];
      const zi = src[2 * k + 1];
      const cr = src[2 * b];
      const ci = -src[2 * b + 1];
      const er = 0.5 * (zr + cr);
      const ei = 0.5 * (zi + ci);
      // (Z - conj Z') / 2i = (dI/2, -dR/2) for d = Z - conj Z'.
      const or = 0.5 * (zi - ci);
      const oi = -0.5 * (zr - cr);
      const c = w[2 * k];
      const s = -w[2 * k + 1];
      const tr = c * or - s * oi;
      const ti = c * oi + s * or;
      power[k] = (er + tr) * (er + tr) + (ei + ti) * (ei + ti);
      power[half - k] = (er - tr) * (er - tr) + (ei - ti) * (ei - ti);
    }
  }

  /**
   * The first radix-5 pass (no twiddles) reading the windowed frame directly, which saves the
   * packing pass: complex input j is (sample 2j, sample 2j + 1), each times its window value.
   */
  private firstPass5(samples: Float32Array, offset: number, y: Float64Array): void {
    const w = this.window;
    const count = this.half / 5;
    const s1 = 2 * count, s2 = 4 * count, s3 = 6 * count, s4 = 8 * count;
    for (let j = 0; j < count; j++) {
      const i = 2 * j;
      const a0r = samples[offset + i] * w[i], a0i = samples[offset + i + 1] * w[i + 1];
      const a1r = samples[offset + i + s1] * w[i + s1], a1i = samples[offset + i + s1 + 1] * w[i + s1 + 1];
      const a2r = samples[offset + i + s2] * w[i + s2], a2i = samples[offset + i + s2 + 1] * w[i + s2 + 1];
      const a3r = samples[offset + i + s3] * w[i + s3], a3i = samples[offset + i + s3 + 1] * w[i + s3 + 1];
      const a4r = samples[offset + i + s4] * w[i + s4], a4i = samples[offset + i + s4 + 1] * w[i + s4 + 1];
      const b1r = a1r + a4r, b1i = a1i + a4i, d1r = a1r - a4r, d1i = a1i - a4i;
      const b2r = a2r + a3r, b2i = a2i + a3i, d2r = a2r - a3r, d2i = a2i - a3i;
      const p1r = a0r + C1 * b1r + C2 * b2r, p1i = a0i + C1 * b1i + C2 * b2i;
      const q1r = S1 * d1r + S2 * d2r, q1i = S1 * d1i + S2 * d2i;
      const p2r = a0r + C2 * b1r + C1 * b2r, p2i = a0i + C2 * b1i + C1 * b2i;
      const q2r = S2 * d1r - S1 * d2r, q2i = S2 * d1i - S1 * d2i;
      const o = 10 * j;
      y[o] = a0r + b1r + b2r; y[o + 1] = a0i + b1i + b2i;
      y[o + 2] = p1r + q1i; y[o + 3] = p1i - q1r;
      y[o + 4] = p2r + q2i; y[o + 5] = p2i - q2r;
      y[o + 6] = p2r - q2i; y[o + 7] = p2i + q2r;
      y[o + 8] = p1r - q1i; y[o + 9] = p1i + q1r;
    }
  }
}

// Stockham passes (decimation in time, natural-order output), one function per radix so that each
// stays small enough for the JIT: butterfly j = g·ns + k reads x[j + r·count] and writes
// y[g·ns·radix + k + r·ns], r = 0..radix-1; `count` = n / radix butterflies.

function pass5(x: Float64Array, y: Float64Array, count: number, ns: number, twiddles: Float64Array): void {
  const groups = count / ns;
  const hasTw = ns > 1;
  const s1 = 2 * count, s2 = 4 * count, s3 = 6 * count, s4 = 8 * count;
  const o1 = 2 * ns, o2 = 4 * ns, o3 = 6 * ns, o4 = 8 * ns;
  for (let g = 0; g < groups; g++) {
    for (let k = 0; k < ns; k++) {
      const i = 2 * (g * ns + k);
      let a1r = x[i + s1], a1i = x[i + s1 + 1];
      let a2r = x[i + s2], a2i = x[i + s2 + 1];
      let a3r = x[i + s3], a3i = x[i + s3 + 1];
      let a4r = x[i + s4], a4i = x[i + s4 + 1];
      const a0r = x[i], a0i = x[i + 1];
      if (hasTw) {
        const t = k * 8;
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
      const o = 2 * (g * ns * 5 + k);
      y[o] = a0r + b1r + b2r; y[o + 1] = a0i + b1i + b2i;
      y[o + o1] = p1r + q1i; y[o + o1 + 1] = p1i - q1r;
      y[o + o2] = p2r + q2i; y[o + o2 + 1] = p2i - q2r;
      y[o + o3] = p2r - q2i; y[o + o3 + 1] = p2i + q2r;
      y[o + o4] = p1r - q1i; y[o + o4 + 1] = p1i + q1r;
    }
  }
}

function pass8(x: Float64Array, y: Float64Array, count: number, ns: number, twiddles: Float64Array): void {
  const groups = count / ns;
  const hasTw = ns > 1;
  const s1 = 2 * count;
  const o1 = 2 * ns;
  for (let g = 0; g < groups; g++) {
    for (let k = 0; k < ns; k++) {
      const i = 2 * (g * ns + k);
      const a0r = x[i], a0i = x[i + 1];
      let a1r = x[i + 1 * s1], a1i = x[i + 1 * s1 + 1];
      let a2r = x[i + 2 * s1], a2i = x[i + 2 * s1 + 1];
      let a3r = x[i + 3 * s1], a3i = x[i + 3 * s1 + 1];
      let a4r = x[i + 4 * s1], a4i = x[i + 4 * s1 + 1];
      let a5r = x[i + 5 * s1], a5i = x[i + 5 * s1 + 1];
      let a6r = x[i + 6 * s1], a6i = x[i + 6 * s1 + 1];
      let a7r = x[i + 7 * s1], a7i = x[i + 7 * s1 + 1];
      if (hasTw) {
        const t = k * 14;
        let c: number, s: number, u: number;
        c = twiddles[t + 0]; s = twiddles[t + 1]; u = a1r;
        a1r = u * c - a1i * s; a1i = u * s + a1i * c;
        c = twiddles[t + 2]; s = twiddles[t + 3]; u = a2r;
        a2r = u * c - a2i * s; a2i = u * s + a2i * c;
        c = twiddles[t + 4]; s = twiddles[t + 5]; u = a3r;
        a3r = u * c - a3i * s; a3i = u * s + a3i * c;
        c = twiddles[t + 6]; s = twiddles[t + 7]; u = a4r;
        a4r = u * c - a4i * s; a4i = u * s + a4i * c;
        c = twiddles[t + 8]; s = twiddles[t + 9]; u = a5r;
        a5r = u * c - a5i * s; a5i = u * s + a5i * c;
        c = twiddles[t + 10]; s = twiddles[t + 11]; u = a6r;
        a6r = u * c - a6i * s; a6i = u * s + a6i * c;
        c = twiddles[t + 12]; s = twiddles[t + 13]; u = a7r;
        a7r = u * c - a7i * s; a7i = u * s + a7i * c;
      }
      // Two 4-point DFTs (even and odd inputs), then combined with e^{-2πik/8}.
      let t0r = a0r + a4r, t0i = a0i + a4i, t1r = a0r - a4r, t1i = a0i - a4i;
      let t2r = a2r + a6r, t2i = a2i + a6i, t3r = a2i - a6i, t3i = a6r - a2r;
      const e0r = t0r + t2r, e0i = t0i + t2i, e2r = t0r - t2r, e2i = t0i - t2i;
      const e1r = t1r + t3r, e1i = t1i + t3i, e3r = t1r - t3r, e3i = t1i - t3i;
      t0r = a1r + a5r; t0i = a1i + a5i; t1r = a1r - a5r; t1i = a1i - a5i;
      t2r = a3r + a7r; t2i = a3i + a7i; t3r = a3i - a7i; t3i = a7r - a3r;
      const f0r = t0r + t2r, f0i = t0i + t2i;
      const g1r = t1r + t3r, g1i = t1i + t3i;
      const g2r = t0r - t2r, g2i = t0i - t2i;
      const g3r = t1r - t3r, g3i = t1i - t3i;
      // f1 = g1 · (1 - i)/√2, f2 = g2 · (-i), f3 = g3 · (-1 - i)/√2
      const f1r = R2 * (g1r + g1i), f1i = R2 * (g1i - g1r);
      const f2r = g2i, f2i = -g2r;
      const f3r = R2 * (g3i - g3r), f3i = -R2 * (g3r + g3i);
      const o = 2 * (g * ns * 8 + k);
      y[o] = e0r + f0r; y[o + 1] = e0i + f0i;
      y[o + o1] = e1r + f1r; y[o + o1 + 1] = e1i + f1i;
      y[o + 2 * o1] = e2r + f2r; y[o + 2 * o1 + 1] = e2i + f2i;
      y[o + 3 * o1] = e3r + f3r; y[o + 3 * o1 + 1] = e3i + f3i;
      y[o + 4 * o1] = e0r - f0r; y[o + 4 * o1 + 1] = e0i - f0i;
      y[o + 5 * o1] = e1r - f1r; y[o + 5 * o1 + 1] = e1i - f1i;
      y[o + 6 * o1] = e2r - f2r; y[o + 6 * o1 + 1] = e2i - f2i;
      y[o + 7 * o1] = e3r - f3r; y[o + 7 * o1 + 1] = e3i - f3i;
    }
  }
}

function pass4(x: Float64Array, y: Float64Array, count: number, ns: number, twiddles: Float64Array): void {
  const groups = count / ns;
  const hasTw = ns > 1;
  const s1 = 2 * count, s2 = 4 * count, s3 = 6 * count;
  const o1 = 2 * ns, o2 = 4 * ns, o3 = 6 * ns;
  for (let g = 0; g < groups; g++) {
    for (let k = 0; k < ns; k++) {
      const i = 2 * (g * ns + k);
      let a1r = x[i + s1], a1i = x[i + s1 + 1];
      let a2r = x[i + s2], a2i = x[i + s2 + 1];
      let a3r = x[i + s3], a3i = x[i + s3 + 1];
      const a0r = x[i], a0i = x[i + 1];
      if (hasTw) {
        const t = k * 6;
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
      const o = 2 * (g * ns * 4 + k);
      y[o] = t0r + t2r; y[o + 1] = t0i + t2i;
      y[o + o1] = t1r + t3r; y[o + o1 + 1] = t1i + t3i;
      y[o + o2] = t0r - t2r; y[o + o2 + 1] = t0i - t2i;
      y[o + o3] = t1r - t3r; y[o + o3 + 1] = t1i - t3i;
    }
  }
}

function pass2(x: Float64Array, y: Float64Array, count: number, ns: number, twiddles: Float64Array): void {
  const groups = count / ns;
  const hasTw = ns > 1;
  const s1 = 2 * count;
  const o1 = 2 * ns;
  for (let g = 0; g < groups; g++) {
    for (let k = 0; k < ns; k++) {
      const i = 2 * (g * ns + k);
      let a1r = x[i + s1], a1i = x[i + s1 + 1];
      const a0r = x[i], a0i = x[i + 1];
      if (hasTw) {
        const c = twiddles[2 * k], s = twiddles[2 * k + 1], tr = a1r;
        a1r = tr * c - a1i * s; a1i = tr * s + a1i * c;
      }
      const o = 2 * (g * ns * 2 + k);
      y[o] = a0r + a1r; y[o + 1] = a0i + a1i;
      y[o + o1] = a0r - a1r; y[o + o1 + 1] = a0i - a1i;
    }
  }
}
