// Lower-precision copies of fp32 weights: IEEE half floats, and per-tensor 8-bit quantisation in the
// two flavours onnxruntime's dynamic quantiser writes (signed symmetric, unsigned asymmetric).
import { Float16Array } from '@petamoriken/float16';

/** The bits of `values` rounded to float16, ready to be stored as a FLOAT16 tensor. */
export function toFloat16Bits(values: Float32Array): Uint16Array {
  const half = new Float16Array(values); // the typed-array constructor takes the library's fast path
  return new Uint16Array(half.buffer, half.byteOffset, half.length);
}

export interface Quantized {
  type: 'int8' | 'uint8';
  data: Int8Array | Uint8Array;
  scale: number;
  zeroPoint: number;
}

/**
 * int8, symmetric around zero (zero point 0), in the reduced 7-bit range [-63, 63] (onnxruntime's
 * `reduce_range`): with full-range weights, x86 CPUs without VNNI saturate the uint8 x int8 pair sums
 * inside MatMulInteger and the results change with the CPU; 7 bits give the same sums everywhere.
 */
export function quantizeInt8(values: Float32Array): Quantized {
  let maxAbs = 0;
  for (const v of values) maxAbs = Math.max(maxAbs, Math.abs(v));
  const scale = maxAbs > 0 ? maxAbs / 63 : 1;
  const data = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = Math.max(-63, Math.min(63, Math.round(values[i]! / scale)));
  return { type: 'int8', data, scale: Math.fround(scale), zeroPoint: 0 };
}

/** uint8, asymmetric over [min(0, min), max(0, max)] so that 0.0 is exactly representable. */
export function quantizeUint8(values: Float32Array): Quantized {
  let lo = 0;
  let hi = 0;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  const zeroPoint = Math.max(0, Math.min(255, Math.round(-lo / scale)));
  const data = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    data[i] = Math.max(0, Math.min(255, Math.round(values[i]! / scale) + zeroPoint));
  }
  return { type: 'uint8', data, scale: Math.fround(scale), zeroPoint };
}

/** What a quantised tensor stands for, value by value. */
export function dequantize(q: Quantized): Float32Array {
  return Float32Array.from(q.data, (v) => (v - q.zeroPoint) * q.scale);
}
