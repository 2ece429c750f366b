// The browser's half of earshot's sample-rate conversion: microphone audio at the AudioContext's
// rate (usually 48 kHz) down to Whisper's 16 kHz, inside the capture AudioWorklet. Plain JS (the
// page has no build step), so it cannot import src/audio/resample.ts; it is written to the same
// specification (Kaiser-windowed sinc, pass band flat to 7/8 of the lower Nyquist, >= 70 dB stop
// band from it up, a pre-computed bank of phases) and test/browser/downsampler.test.ts checks that
// it gives the server resampler's output. Simply dropping samples would fold everything between
// 8 and 24 kHz onto the speech band.

const ATTENUATION_DB = 70;
const PASS_EDGE = 0.875;
/** Rate pairs needing more phases than this share this many, the nearest phase used. */
const MAX_PHASES = 1024;

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Zeroth-order modified Bessel function of the first kind, for the Kaiser window. */
function besselI0(x) {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 200 && term > sum * 1e-17; k++) {
    term *= q / (k * k);
    sum += term;
  }
  return sum;
}

/** Filter bank: row p holds the taps for an output at fractional input position p / phases. */
function design(fromRate, toRate) {
  const g = gcd(fromRate, toRate);
  const l = toRate / g;
  const m = fromRate / g;
  const phases = Math.min(l, MAX_PHASES);
  // Frequencies in cycles per input sample.
  const nyquist = Math.min(fromRate, toRate) / 2 / fromRate;
  const transition = (1 - PASS_EDGE) * nyquist;
  const cutoff = (nyquist * (1 + PASS_EDGE)) / 2;
  const taps = 4 * Math.ceil((ATTENUATION_DB - 7.95) / (14.36 * transition) / 4);
  const beta = 0.1102 * (ATTENUATION_DB - 8.7);
  const half = taps / 2;
  const i0beta = besselI0(beta);
  const coef = new Float64Array(phases * taps);
  for (let p = 0; p < phases; p++) {
    const row = coef.subarray(p * taps, (p + 1) * taps);
    let sum = 0;
    for (let k = 0; k < taps; k++) {
      const d = p / phases + half - 1 - k; // distance of input tap k from the output time
      const x = d / half;
      const w = Math.abs(x) >= 1 ? 0 : besselI0(beta * Math.sqrt(1 - x * x)) / i0beta;
      const a = 2 * cutoff * d;
      row[k] = 2 * cutoff * (a === 0 ? 1 : Math.sin(Math.PI * a) / (Math.PI * a)) * w;
      sum += row[k];
    }
    for (let k = 0; k < taps; k++) row[k] /= sum; // unit gain at DC in every phase
  }
  return { l, m, phases, taps, coef };
}

/**
 * Streaming converter: `push` mono chunks of any size (an AudioWorklet gets 128 samples at a
 * time) and get back the output samples they complete. Output n is the input at time n·from/to,
 * with the input taken as zero before its start, as src/audio/resample.ts does.
 */
export class Downsampler {
  /** @param {number} fromRate @param {number} toRate */
  constructor(fromRate, toRate = 16000) {
    for (const r of [fromRate, toRate]) {
      if (!Number.isInteger(r) || r <= 0) throw new RangeError(`sample rates must be positive integers, got ${r}`);
    }
    this.bank = fromRate === toRate ? null : design(fromRate, toRate);
    const half = this.bank ? this.bank.taps / 2 : 0;
    this.buf = new Float32Array(Math.max(4096, 4 * half));
    // buf[0] is input sample number `start`; the zeros before input 0 are held as real samples.
    this.start = -Math.max(0, half - 1);
    this.len = Math.max(0, half - 1);
    // The next output's time in input samples: base + rem / l.
    this.base = 0;
    this.rem = 0;
  }

  /** @param {Float32Array} input @returns {Float32Array} */
  push(input) {
    const bank = this.bank;
    if (!bank) return Float32Array.from(input);
    const { l, m, phases, taps, coef } = bank;
    const half = taps / 2;
    if (this.len + input.length > this.buf.length) {
      const bigger = new Float32Array(2 * (this.len + input.length));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
    this.buf.set(input, this.len);
    this.len += input.length;

    const buf = this.buf;
    const out = new Float32Array(Math.ceil(((this.len + 1) * l) / m) + 1);
    let n = 0;
    let { base, rem } = this;
    const stepInt = Math.floor(m / l);
    const stepRem = m % l;
    for (;;) {
      let p = phases === l ? rem : Math.round((rem * phases) / l);
      let b = base;
      if (p === phases) {
        p = 0;
        b++;
      }
      const first = b - half + 1 - this.start;
      if (first + taps > this.len) break;
      let acc = 0;
      for (let k = 0, c = p * taps; k < taps; k++, c++) acc += buf[first + k] * coef[c];
      out[n++] = acc;
      base += stepInt;
      rem += stepRem;
      if (rem >= l) {
        rem -= l;
        base++;
      }
    }
    this.base = base;
    this.rem = rem;
    // Keep only what a later output can still reach: from the next output's first tap on.
    const drop = Math.max(0, Math.min(this.len, base - half + 1 - this.start));
    buf.copyWithin(0, drop, this.len);
    this.len -= drop;
    this.start += drop;
    return out.subarray(0, n);
  }
}
