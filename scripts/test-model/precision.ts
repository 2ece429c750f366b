// Lower-precision copies of fp32 weights: IEEE half floats here, and per-tensor 8-bit quantisation in
// the two flavours onnxruntime's dynamic quantiser writes (signed symmetric, unsigned asymmetric),
// which is src/models/quantize/weights.ts re-exported.
import { Float16Array } from '@petamoriken/float16';

/** The bits of `values` rounded to float16, ready to be stored as a FLOAT16 tensor. */
export function toFloat16Bits(values: Float32Array): Uint16Array {
  const half = new Float16Array(values); // the typed-array constructor takes the library's fast path
  return new Uint16Array(half.buffer, half.byteOffset, half.length);
}

// The 8-bit arithmetic lives in src/ once; the builder quantises its weights through it.
export { dequantize, quantizeInt8, quantizeUint8, type Quantized } from '../../src/models/quantize/weights.ts';
