// Sample-rate conversion to Whisper's 16 kHz: a polyphase windowed-sinc (Kaiser) resampler.
// Hand-written because it is product core and small: every input that is not already 16 kHz goes
// through it, the anti-aliasing quality is specified (passband flat to 7/8 of the lower Nyquist,
// >= 70 dB stop-band from the lower Nyquist up), and it must be fast (a pre-computed filter bank,
// one multiply-add per tap; an hour of 48 kHz audio takes seconds, not minutes).
import { EarshotError } from '../errors.ts';

/** Stop-band attenuation of the anti-aliasing filter, in dB. */
const ATTENUATION_DB = 70;
/** Pass-band edge as a fraction of the lower of the two Nyquist frequencies; stop-band starts at 1. */
const PASS_EDGE = 0.875;
/** Rates whose ratio needs more phases than this share a bank of this many, nearest phase used. */
const MAX_PHASES = 1024;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Zeroth-order modified Bessel function of the first kind (power series). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 200; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

interface Bank {
  /** Output-time step in input samples, as an exact fraction step = m / l. */
  l: number;
  m: number;
  phases: number;
  taps: number;
  /** phases x taps coefficients; row p is the kernel at fractional offset p / phases. */
  coef: Float64Array;
}

/** Recently used filter banks. Few rates occur in practice; the bound stops a stream of files
 * with ever-different rates from growing memory. */
const banks = new Map<string, Bank>();
const MAX_BANKS = 8;

function design(fromRate: number, toRate: number): Bank {
  const key = `${fromRate}:${toRate}`;
  const cached = banks.get(key);
  if (cached) {
    banks.delete(key); // re-insert: Map order is least recently used first
    banks.set(key, cached);
    return cached;
  }
  const g = gcd(fromRate, toRate);
  const l = toRate / g;
  const m = fromRate / g;
  const phases = Math.min(l, MAX_PHASES);
  // All frequencies below are in cycles per input sample.
  const nyquist = Math.min(fromRate, toRate) / 2 / fromRate;
  const transition = (1 - PASS_EDGE) * nyquist;
  const cutoff = nyquist * (1 + PASS_EDGE) / 2;
  // Kaiser's estimates for window length and shape at the requested attenuation.
  const length = (ATTENUATION_DB - 7.95) / (14.36 * transition);
  const beta = 0.1102 * (ATTENUATION_DB - 8.7);
  const taps = 4 * Math.ceil(length / 4);
  const half = taps / 2;
  const coef = new Float64Array(phases * taps);
  const i0beta = besselI0(beta);
  for (let p = 0; p < phases; p++) {
    const frac = p / phases;
    let sum = 0;
    for (let k = 0; k < taps; k++) {
      // Tap k multiplies input sample (base - half + 1 + k); its distance from the output time.
      const d = frac + half - 1 - k;
      const x = d / half;
      const w = Math.abs(x) >= 1 ? 0 : besselI0(beta * Math.sqrt(1 - x * x)) / i0beta;
      const a = 2 * cutoff * d;
      const sinc = a === 0 ? 1 : Math.sin(Math.PI * a) / (Math.PI * a);
      const v = 2 * cutoff * sinc * w;
      coef[p * taps + k] = v;
      sum += v;
    }
    // Unit gain at DC in every phase, so no phase-dependent ripple on constant signals.
    for (let k = 0; k < taps; k++) coef[p * taps + k]! /= sum;
  }
  const bank = { l, m, phases, taps, coef };
  banks.set(key, bank);
  if (banks.size > MAX_BANKS) banks.delete(banks.keys().next().value!);
  return bank;
}

function checkRate(name: string, rate: number): void {
  if (!Number.isInteger(rate) || rate <= 0) {
    throw new EarshotError('invalid_argument', 'bad_sample_rate', `${name} must be a positive integer, got ${rate}`);
  }
}

/**
 * Streaming resampler: feed mono chunks with `push`, then call `end` once. The output is the same
 * as one `resample` call over the concatenated input, so a long decode never needs to hold its
 * audio at the source rate. When the rates are equal, `push` returns its argument.
 */
export class StreamResampler {
  private readonly bank: Bank | undefined;
  private buf: Float32Array;
  /** Virtual index of buf[0]; the input is preceded by zeros (index < 0) and followed by zeros. */
  private bufStart: number;
  private bufLen: number;
  private inputs = 0;
  private j = 0;
  private base = 0;
  private rem = 0;
  private ended = false;

  constructor(fromRate: number, toRate: number) {
    checkRate('fromRate', fromRate);
    checkRate('toRate', toRate);
    this.bank = fromRate === toRate ? undefined : design(fromRate, toRate);
    const taps = this.bank?.taps ?? 0;
    this.buf = new Float32Array(Math.max(1024, 4 * taps));
    // Zeros before the first sample, so the first outputs need no special case.
    this.bufStart = -(taps / 2 - 1);
    this.bufLen = Math.max(0, taps / 2 - 1);
  }

  push(samples: Float32Array): Float32Array {
    if (this.ended) throw new EarshotError('internal', 'resampler_ended', 'push after end');
    this.inputs += samples.length;
    if (!this.bank) return samples;
    this.append(samples);
    return this.produce(Infinity);
  }

  end(): Float32Array {
    if (this.ended) throw new EarshotError('internal', 'resampler_ended', 'end called twice');
    this.ended = true;
    if (!this.bank) return new Float32Array(0);
    const { l, m, taps } = this.bank;
    this.append(new Float32Array(taps + 1)); // trailing zeros
    return this.produce(Math.ceil((this.inputs * l) / m));
  }

  private append(x: Float32Array): void {
    const need = this.bufLen + x.length;
    if (need > this.buf.length) {
      const bigger = new Float32Array(Math.max(need, 2 * this.buf.length));
      bigger.set(this.buf.subarray(0, this.bufLen));
      this.buf = bigger;
    }
    this.buf.set(x, this.bufLen);
    this.bufLen += x.length;
  }

  /** Computes every output whose taps are all in the buffer (and below `limit`), then compacts. */
  private produce(limit: number): Float32Array {
    const { l, m, phases, taps, coef } = this.bank!;
    const half = taps / 2;
    const stepInt = Math.floor(m / l);
    const stepRem = m % l;
    const buf = this.buf;
    const avail = this.bufStart + this.bufLen;
    // Upper bound on the outputs whose last tap is below `avail`.
    const room = Math.min(limit, Math.ceil(((avail - half + 1) * l) / m) + 1) - this.j;
    const out = new Float32Array(Math.max(0, room));
    let k = 0;
    let { j, base, rem } = this;
    while (j < limit && k < out.length) {
      let p = phases === l ? rem : Math.round((rem * phases) / l);
      let b = base;
      if (p === phases) {
        p = 0;
        b++;
      }
      const start = b - half + 1 - this.bufStart;
      if (start + taps > this.bufLen) break;
      const row = p * taps;
      // Four independent sums let the CPU overlap the multiply-adds (taps is a multiple of 4).
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (let t = 0, i = start, c = row; t < taps; t += 4, i += 4, c += 4) {
        a0 += buf[i]! * coef[c]!;
        a1 += buf[i + 1]! * coef[c + 1]!;
        a2 += buf[i + 2]! * coef[c + 2]!;
        a3 += buf[i + 3]! * coef[c + 3]!;
      }
      out[k++] = a0 + a1 + a2 + a3;
      j++;
      base += stepInt;
      rem += stepRem;
      if (rem >= l) {
        rem -= l;
        base++;
      }
    }
    this.j = j;
    this.base = base;
    this.rem = rem;
    // Drop input no later output can need (everything before the next output's first tap).
    const keepFrom = Math.max(0, Math.min(this.bufLen, base - half + 1 - this.bufStart));
    if (keepFrom > 0) {
      buf.copyWithin(0, keepFrom, this.bufLen);
      this.bufLen -= keepFrom;
      this.bufStart += keepFrom;
    }
    return k === out.length ? out : out.subarray(0, k);
  }
}

/**
 * Resamples mono `samples` from `fromRate` to `toRate` (both integer Hz). Returns the input itself
 * when the rates are equal. Output length is ceil(n * toRate / fromRate); no delay is added.
 */
export function resample(samples: Float32Array, fromRate: number, toRate: number): Float32Array {
  const r = new StreamResampler(fromRate, toRate);
  const head = r.push(samples);
  const tail = r.end();
  if (tail.length === 0) return head;
  const out = new Float32Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}
