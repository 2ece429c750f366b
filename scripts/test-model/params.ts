// Parameterised layers written in the chosen weight format. The fp32 values are always drawn the
// same way (see random.ts); the format only decides how they are stored and multiplied:
//   fp32  plain initializers;
//   fp16  FLOAT16 initializers cast up to float32 at use, so compute stays float32; inputs and
//         outputs stay float32, as transformers.js's conversion (keep_io_types) leaves the hub's
//         fp16 files, unless the model is built with `halfIo` (float16 I/O, cast at the graph's
//         edges: encoder.ts, decoder.ts);
//   q8    uint8 weights, int8 the signed variant: each weight matmul/conv becomes onnxruntime's
//         dynamic-quantisation pattern DynamicQuantizeLinear(x) -> MatMulInteger/ConvInteger ->
//         Cast -> Mul(x_scale * w_scale), so the file really holds 8-bit weights.
import type { GraphBuilder } from '../../src/engine/onnx-graph.ts';
import type { Dtype } from './options.ts';
import { randomValues } from './random.ts';
import { quantizeInt8, quantizeUint8, toFloat16Bits, type Quantized } from './precision.ts';

/** ONNX's element type numbers, for Cast's `to`. */
export const FLOAT = 1;
export const FLOAT16 = 10;

export interface ParamContext {
  g: GraphBuilder;
  dtype: Dtype;
  seed: number;
}

/** Values are drawn around `mean` with standard deviation `std`. */
export interface Init {
  std: number;
  mean?: number;
}

function isQuantized(dtype: Dtype): boolean {
  return dtype === 'q8' || dtype === 'int8';
}

/**
 * The signed/unsigned choice per layer kind. ConvInteger on onnxruntime's CPU provider takes
 * uint8 weights only, which is also why the hub's quantiser picks uint8 for models with a Conv.
 */
function quantizeFor(dtype: Dtype, kind: 'matmul' | 'conv'): (v: Float32Array) => Quantized {
  return dtype === 'int8' && kind === 'matmul' ? quantizeInt8 : quantizeUint8;
}

/** A float parameter that is not quantised (norms, biases, position tables), as a float32 value. */
export function floatParam(ctx: ParamContext, name: string, dims: number[], values: Float32Array): string {
  if (ctx.dtype === 'fp16') {
    const half = ctx.g.initializer(name, 'float16', dims, toFloat16Bits(values));
    return ctx.g.op1('Cast', [half], { to: { i: 1 } });
  }
  return ctx.g.initializer(name, 'float', dims, values);
}

/** A random float parameter (see floatParam). */
export function randomParam(ctx: ParamContext, name: string, dims: number[], init: Init): string {
  const count = dims.reduce((a, b) => a * b, 1);
  return floatParam(ctx, name, dims, randomValues(ctx.seed, name, count, init.std, init.mean));
}

function quantizedInitializers(ctx: ParamContext, name: string, dims: number[], q: Quantized) {
  const { g } = ctx;
  return {
    weight: g.initializer(`${name}_quantized`, q.type, dims, q.data),
    scale: g.initializer(`${name}_scale`, 'float', [], Float32Array.of(q.scale)),
    zeroPoint: g.initializer(
      `${name}_zero_point`,
      q.type,
      [],
      q.type === 'int8' ? Int8Array.of(q.zeroPoint) : Uint8Array.of(q.zeroPoint),
    ),
  };
}

/** DynamicQuantizeLinear on an activation: [x_q (uint8), x_scale, x_zero_point]. */
function quantizeActivation(g: GraphBuilder, x: string): [string, string, string] {
  const [q, scale, zp] = g.op('DynamicQuantizeLinear', [x], {}, 3);
  return [q!, scale!, zp!];
}

/** int32 accumulator -> float, times x_scale * w_scale. */
function rescale(g: GraphBuilder, acc: string, xScale: string, wScale: string): string {
  const scale = g.op1('Mul', [xScale, wScale]);
  return g.op1('Mul', [g.op1('Cast', [acc], { to: { i: 1 } }), scale]);
}

/**
 * x[..., inDim] @ W[inDim, outDim] (+ b): a Linear layer, weight stored as the export does, [in, out].
 * Weights have standard deviation gain / sqrt(inDim), so unit-variance inputs give outputs of
 * variance gain^2.
 */
export function linear(
  ctx: ParamContext,
  x: string,
  name: string,
  inDim: number,
  outDim: number,
  bias: boolean,
  gain = 1,
): string {
  const { g } = ctx;
  const w = randomValues(ctx.seed, `${name}.weight`, inDim * outDim, gain / Math.sqrt(inDim));
  let y: string;
  if (isQuantized(ctx.dtype)) {
    const qw = quantizedInitializers(ctx, `${name}.weight`, [inDim, outDim], quantizeFor(ctx.dtype, 'matmul')(w));
    const [xq, xs, xzp] = quantizeActivation(g, x);
    y = rescale(g, g.op1('MatMulInteger', [xq, qw.weight, xzp, qw.zeroPoint]), xs, qw.scale);
  } else {
    y = g.op1('MatMul', [x, floatParam(ctx, `${name}.weight`, [inDim, outDim], w)]);
  }
  if (!bias) return y;
  return g.op1('Add', [y, randomParam(ctx, `${name}.bias`, [outDim], { std: 0.02 })]);
}

/** Conv1d with kernel 3 and padding 1 over x [batch, inCh, frames]. */
export function conv1d(
  ctx: ParamContext,
  x: string,
  name: string,
  inCh: number,
  outCh: number,
  stride: number,
): string {
  const { g } = ctx;
  const kernel = 3;
  const attrs = { kernel_shape: { ints: [kernel] }, pads: { ints: [1, 1] }, strides: { ints: [stride] } };
  const w = randomValues(ctx.seed, `${name}.weight`, outCh * inCh * kernel, 1 / Math.sqrt(inCh * kernel));
  const b = randomValues(ctx.seed, `${name}.bias`, outCh, 0.02);
  if (!isQuantized(ctx.dtype)) {
    const wName = floatParam(ctx, `${name}.weight`, [outCh, inCh, kernel], w);
    return g.op1('Conv', [x, wName, floatParam(ctx, `${name}.bias`, [outCh], b)], attrs);
  }
  const qw = quantizedInitializers(ctx, `${name}.weight`, [outCh, inCh, kernel], quantizeFor(ctx.dtype, 'conv')(w));
  const [xq, xs, xzp] = quantizeActivation(g, x);
  const y = rescale(g, g.op1('ConvInteger', [xq, qw.weight, xzp, qw.zeroPoint], attrs), xs, qw.scale);
  return g.op1('Add', [y, floatParam(ctx, `${name}.bias`, [outCh, 1], b)]);
}

/** The token embedding, shared (tied) with the output projection: one initializer serves both. */
export interface TiedEmbedding {
  /** ids [batch, seq] int64 -> [batch, seq, dModel] */
  lookup(ids: string): string;
  /** h [rows, dModel] -> logits [rows, vocab] */
  project(h2d: string): string;
}

export function tiedEmbedding(ctx: ParamContext, name: string, vocab: number, dModel: number): TiedEmbedding {
  const { g } = ctx;
  const values = randomValues(ctx.seed, name, vocab * dModel, 2 / Math.sqrt(dModel));
  if (!isQuantized(ctx.dtype)) {
    const table = floatParam(ctx, name, [vocab, dModel], values);
    return {
      lookup: (ids) => g.op1('Gather', [table, ids], { axis: { i: 0 } }),
      project: (h2d) => g.op1('Gemm', [h2d, table], { transB: { i: 1 } }),
    };
  }
  const q = quantizedInitializers(ctx, name, [vocab, dModel], quantizeFor(ctx.dtype, 'matmul')(values));
  return {
    lookup: (ids) =>
      g.op1('DequantizeLinear', [g.op1('Gather', [q.weight, ids], { axis: { i: 0 } }), q.scale, q.zeroPoint]),
    project: (h2d) => {
      // MatMulInteger wants [in, out]: a transposed view of the same initializer, which onnxruntime
      // folds once at load time; the file still holds one copy.
      const wT = g.op1('Transpose', [q.weight], { perm: { ints: [1, 0] } });
      const [xq, xs, xzp] = quantizeActivation(g, h2d);
      return rescale(g, g.op1('MatMulInteger', [xq, wT, xzp, q.zeroPoint]), xs, q.scale);
    },
  };
}
