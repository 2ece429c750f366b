// Whisper's mel filter bank: triangular filters on the Slaney mel scale with Slaney (area)
// normalisation, as librosa.filters.mel(sr, n_fft, n_mels) builds them for openai/whisper. Computed
// here rather than read from preprocessor_config.json because most configs (all 128-mel ones) carry
// no `mel_filters`. Each filter touches only a handful of FFT bins, so the bank is also kept in a
// sparse form for the hot path.

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
  const melMax = hzToMel(fmax);
  // Band edges: nMels + 2 points evenly spaced in mel, back in Hz.
  const edges = new Float64Array(nMels + 2);
  for (let i = 0; i < nMels + 2; i++) edges[i] = melToHz((melMax * i) / (nMels + 1));
  const bank = new Float64Array(nMels * bins);
  for (let m = 0; m < nMels; m++) {
    const lo = edges[m];
    const mid = edges[m + 1];
    const hi = edges[m + 2];
    const norm = 2 / (hi - lo);
    for (let k = 0; k < bins; k++) {
      const f = (fmax * k) / (bins - 1);
      const rising = (f - lo) / (mid - lo);
      const falling = (hi - f) / (hi - mid);
      const w = Math.min(rising, falling);
      if (w > 0) bank[m * bins + k] = w * norm;
    }
  }
  return bank;
}

/** The same bank keeping only each filter's non-zero run of bins. */
export interface SparseMelFilters {
  nMels: number;
  /** First bin of filter m. */
  start: Int32Array;
  /** Number of bins of filter m. */
  length: Int32Array;
  /** Offset of filter m's weights in `weights`. */
  offset: Int32Array;
  weights: Float64Array;
}

export function sparseMelFilters(bank: Float64Array, nMels: number): SparseMelFilters {
  const bins = bank.length / nMels;
  const start = new Int32Array(nMels);
  const length = new Int32Array(nMels);
  const offset = new Int32Array(nMels);
  const runs: number[] = [];
  for (let m = 0; m < nMels; m++) {
    const row = bank.subarray(m * bins, (m + 1) * bins);
    let first = row.findIndex((w) => w !== 0);
    let last = bins - 1;
    if (first < 0) first = last = 0; // an empty filter (only with very many mels): one zero weight
    while (last > first && row[last] === 0) last--;
    start[m] = first;
    length[m] = last - first + 1;
    offset[m] = runs.length;
    for (let k = first; k <= last; k++) runs.push(row[k]);
  }
  return { nMels, start, length, offset, weights: Float64Array.from(runs) };
}
