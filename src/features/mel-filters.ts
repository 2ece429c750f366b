// Whisper's mel filter bank: triangular filters on the Slaney mel scale with Slaney (area)
// normalisation, as librosa.filters.mel(sr, n_fft, n_mels) builds them for openai/whisper. Computed
// here rather than read from preprocessor_config.json because most configs (all 128-mel ones) carry
// no `mel_filters`. Each filter touches only a handful of FFT bins, so the hot path uses the bank
// in a sparse form (see MelSegments).

const MIN_LOG_HZ = 1000;
const MIN_LOG_MEL = 15; // MIN_LOG_HZ / (200 / 3)
const LOG_STEP = Math.log(6.4) / 27;

function hzToMel(hz: number): number {
  return hz >= MIN_LOG_HZ ? MIN_LOG_MEL + Math.log(hz / MIN_LOG_HZ) / LOG_STEP : (3 * hz) / 200;
}

function melToHz(mel: number): number {
  return mel >= MIN_LOG_MEL ? MIN_LOG_HZ * Math.exp(LOG_STEP * (mel - MIN_LOG_MEL)) : (200 * mel) / 3;
}

/**
 * Dense filter bank, row-major `[nMels][nFft / 2 + 1]`, spanning 0 Hz to sampleRate / 2.
 */
export function melFilterBank(nMels: number, nFft: number, sampleRate: number): Float64Array {
  const bins = Math.floor(nFft / 2) + 1;
  const fmax = sampleRate / 2;
  const edges = bandEdges(nMels, fmax);
  const bank = new Float64Array(nMels * bins);
  for (let m = 0; m < nMels; m++) {
    const lo = edges[m];
    const mid = edges[m + 1];
    const hi = edges[m + 2];
    const norm = 2 / (hi - lo);
    for (let k = 0; k < bins; k++) {
      const f = binHz(k, bins, fmax);
      const rising = (f - lo) / (mid - lo);
      const falling = (hi - f) / (hi - mid);
      const w = Math.min(rising, falling);
      if (w > 0) bank[m * bins + k] = w * norm;
    }
  }
  return bank;
}

/** Band edges: nMels + 2 points evenly spaced in mel from 0 Hz to fmax, back in Hz. */
function bandEdges(nMels: number, fmax: number): Float64Array {
  const melMax = hzToMel(fmax);
  const edges = new Float64Array(nMels + 2);
  for (let i = 0; i < nMels + 2; i++) edges[i] = melToHz((melMax * i) / (nMels + 1));
  return edges;
}

function binHz(k: number, bins: number, fmax: number): number {
  return (fmax * k) / (bins - 1);
}

/**
 * The bank by segments between consecutive band edges: a bin in segment j (edge j ≤ f < edge j+1)
 * lies on the rising side of band j and the falling side of band j − 1 and in no other band. So
 * one pass over the bins with two running sums gives every band: band j − 1 = (its rising sum from
 * segment j − 1) + (its falling sum from segment j). About half the multiply-adds of a per-band
 * loop (each bin is visited once), and no per-band index lookups.
 */
export interface MelSegments {
  nMels: number;
  /** Segment j (0..nMels) covers bins [end[j − 1], end[j]), with end[−1] = 0. */
  end: Int32Array;
  /** Weight of band j at each bin of segment j (0 in segment nMels). */
  rise: Float64Array;
  /** Weight of band j − 1 at each bin of segment j (0 in segment 0). */
  fall: Float64Array;
}

export function melSegments(nMels: number, nFft: number, sampleRate: number): MelSegments {
  const bins = Math.floor(nFft / 2) + 1;
  const fmax = sampleRate / 2;
  const bank = melFilterBank(nMels, nFft, sampleRate);
  const edges = bandEdges(nMels, fmax);
  const end = new Int32Array(nMels + 1);
  const rise = new Float64Array(bins);
  const fall = new Float64Array(bins);
  let j = 0;
  for (let k = 0; k < bins; k++) {
    const f = binHz(k, bins, fmax);
    while (j < nMels && f >= edges[j + 1]) end[j++] = k;
    if (j < nMels) rise[k] = bank[j * bins + k];
    if (j > 0) fall[k] = bank[(j - 1) * bins + k];
  }
  while (j <= nMels) end[j++] = bins;
  return { nMels, end, rise, fall };
}
