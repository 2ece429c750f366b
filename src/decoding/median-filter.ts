// Median filter along the last axis, as openai/whisper's timing.py smooths cross-attention weights
// before aligning words: the row is padded by reflection (the edge value itself not repeated, as
// torch's "reflect" mode), and a row no longer than half the width is left as it is.
// Hand-written: it is a few lines of the product's core, and no maintained npm package has these
// exact edge rules.
import { EarshotError } from '../errors.ts';

/** Filters each `length`-long row of `data` in place with an odd `width`. */
export function medianFilterRows(data: Float32Array | Float64Array, length: number, width: number): void {
  if (!(Number.isInteger(width) && width > 0 && width % 2 === 1)) {
    throw new EarshotError('invalid_argument', 'bad_filter_width', `median filter width must be a positive odd number, got ${width}`);
  }
  if (!(Number.isInteger(length) && length > 0 && data.length % length === 0)) {
    throw new EarshotError('invalid_argument', 'bad_filter_input', `${data.length} values are not rows of ${length}`);
  }
  const pad = width >> 1;
  if (length <= pad) return;
  const padded = new Float64Array(length + 2 * pad);
  const window = new Float64Array(width);
  for (let r = 0; r < data.length; r += length) {
    const row = data.subarray(r, r + length);
    for (let i = 0; i < padded.length; i++) {
      let k = i - pad;
      if (k < 0) k = -k;
      else if (k >= length) k = 2 * (length - 1) - k;
      padded[i] = row[k]!;
    }
    for (let i = 0; i < length; i++) {
      window.set(padded.subarray(i, i + width));
      window.sort();
      row[i] = window[pad]!;
    }
  }
}
