// The 8-bit weight arithmetic, in the two flavours onnxruntime's dynamic quantiser writes: signed
// symmetric int8 and unsigned asymmetric uint8, per tensor or per channel. Both the model quantiser
// and the test-model builder (scripts/test-model) quantise through these functions, so a built
// "_int8" file and a locally quantised one hold the same numbers.

export type WeightType = 'int8' | 'uint8';

/** One tensor quantised with one scale and zero point. */
export interface Quantized {
  type: WeightType;
  data: Int8Array | Uint8Array;
  scale: number;
  zeroPoint: number;
}

/** A matrix quantised with one scale and zero point per channel (row or column). */
export interface QuantizedChannels {
  type: WeightType;
  data: Int8Array | Uint8Array;
  /** Which axis of the [rows, cols] matrix indexes the channels. */
  axis: 0 | 1;
  scales: Float32Array;
  zeroPoints: Int8Array | Uint8Array;
}

/**
 * int8 uses the reduced 7-bit range [-63, 63] (onnxruntime's `reduce_range`): with full-range
 * weights, x86 CPUs without VNNI saturate the uint8 x int8 pair sums inside MatMulInteger and the
 * results change with the CPU; 7 bits give the same sums everywhere.
 */
const INT8_LIMIT = 63;

interface Params {
  scale: number;
  zeroPoint: number;
}

/** Scale and zero point for values spanning [lo, hi]. */
function params(type: WeightType, lo: number, hi: number): Params {
  if (type === 'int8') {
    const maxAbs = Math.max(Math.abs(lo), Math.abs(hi));
    return { scale: Math.fround(maxAbs > 0 ? maxAbs / INT8_LIMIT : 1), zeroPoint: 0 };
  }
  // uint8 spans [min(0, lo), max(0, hi)] so that 0.0 is exactly representable.
  const low = Math.min(0, lo);
  const high = Math.max(0, hi);
  const scale = high > low ? (high - low) / 255 : 1;
  return { scale: Math.fround(scale), zeroPoint: Math.max(0, Math.min(255, Math.round(-low / scale))) };
}

/**
 * The quantised value of v. Division by the float32 scale (not the double it came from) matches what
 * a client dequantising `(q - zp) * scale` will compute, and what onnxruntime's kernels round.
 */
function quantizeValue(type: WeightType, v: number, p: Params): number {
  const q = Math.round(v / p.scale) + p.zeroPoint;
  return type === 'int8' ? Math.max(-INT8_LIMIT, Math.min(INT8_LIMIT, q)) : Math.max(0, Math.min(255, q));
}

function range(values: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (Number.isNaN(v)) return [NaN, NaN];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return values.length > 0 ? [lo, hi] : [0, 0];
}

function assertFinite(lo: number, hi: number): void {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new RangeError('cannot quantise weights that are NaN or infinite');
}

function storage(type: WeightType, n: number): Int8Array | Uint8Array {
  return type === 'int8' ? new Int8Array(n) : new Uint8Array(n);
}

/** One scale and zero point for the whole tensor. */
export function quantizeTensor(values: Float32Array, type: WeightType): Quantized {
  const [lo, hi] = range(values);
  assertFinite(lo, hi);
  const p = params(type, lo, hi);
  const data = storage(type, values.length);
  for (let i = 0; i < values.length; i++) data[i] = quantizeValue(type, values[i]!, p);
  return { type, data, scale: p.scale, zeroPoint: p.zeroPoint };
}

/** int8, symmetric around zero (zero point 0), in the reduced 7-bit range. */
export function quantizeInt8(values: Float32Array): Quantized {
  return quantizeTensor(values, 'int8');
}

/** uint8, asymmetric over [min(0, min), max(0, max)]. */
export function quantizeUint8(values: Float32Array): Quantized {
  return quantizeTensor(values, 'uint8');
}

/**
 * A [rows, cols] matrix (row-major) with one scale and zero point per channel along `axis`: axis 1
 * gives one per column (the output features of a MatMul weight [in, out]), axis 0 one per row (a
 * Gemm weight with transB, [out, in]).
 */
export function quantizeChannels(
  values: Float32Array,
  rows: number,
  cols: number,
  axis: 0 | 1,
  type: WeightType,
): QuantizedChannels {
  if (rows * cols !== values.length) throw new RangeError(`${values.length} values for a ${rows}x${cols} matrix`);
  const channels = axis === 0 ? rows : cols;
  const lo = new Float64Array(channels).fill(Infinity);
  const hi = new Float64Array(channels).fill(-Infinity);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = values[r * cols + c]!;
      const ch = axis === 0 ? r : c;
      if (Number.isNaN(v)) lo[ch] = NaN;
      if (v < lo[ch]!) lo[ch] = v;
      if (v > hi[ch]!) hi[ch] = v;
    }
  }
  const ps: Params[] = [];
  for (let ch = 0; ch < channels; ch++) {
    assertFinite(lo[ch]!, hi[ch]!);
    ps.push(params(type, lo[ch]!, hi[ch]!));
  }
  const data = storage(type, values.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) data[r * cols + c] = quantizeValue(type, values[r * cols + c]!, ps[axis === 0 ? r : c]!);
  }
  const zeroPoints = storage(type, channels);
  ps.forEach((p, ch) => (zeroPoints[ch] = p.zeroPoint));
  return { type, data, axis, scales: Float32Array.from(ps, (p) => p.scale), zeroPoints };
}

/** What a quantised tensor stands for, value by value. */
export function dequantize(q: Quantized): Float32Array {
  return Float32Array.from(q.data, (v) => (v - q.zeroPoint) * q.scale);
}

/** What a per-channel quantised matrix [rows, cols] stands for. */
export function dequantizeChannels(q: QuantizedChannels, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const ch = q.axis === 0 ? r : c;
      out[r * cols + c] = (q.data[r * cols + c]! - q.zeroPoints[ch]!) * q.scales[ch]!;
    }
  }
  return out;
}
