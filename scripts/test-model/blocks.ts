// The pieces Whisper's encoder and decoder share: LayerNorm, exact (erf) GELU, multi-head attention
// and the feed-forward block, written as plain ONNX ops the way the hub's exports compute them.
import type { GraphBuilder } from '../../src/engine/onnx-graph.ts';
import { linear, randomParam, type ParamContext } from './params.ts';

export function layerNorm(ctx: ParamContext, x: string, name: string, dModel: number): string {
  // Gains near 1 and small offsets keep activations bounded whatever the depth.
  const gamma = randomParam(ctx, `${name}.weight`, [dModel], { std: 0.1, mean: 1 });
  const beta = randomParam(ctx, `${name}.bias`, [dModel], { std: 0.02 });
  return ctx.g.op1('LayerNormalization', [x, gamma, beta], { axis: { i: -1 }, epsilon: { f: 1e-5 } });
}

/** gelu(x) = 0.5 x (1 + erf(x / sqrt 2)), the exact form Whisper uses. */
export function gelu(g: GraphBuilder, x: string): string {
  const erf = g.op1('Erf', [g.op1('Mul', [x, g.float([Math.SQRT1_2])])]);
  return g.op1('Mul', [g.op1('Mul', [x, g.float([0.5])]), g.op1('Add', [erf, g.float([1])])]);
}

/** [batch, seq, heads*headDim] -> [batch, heads, seq, headDim]; shapes are computed, so seq may be 0. */
export function splitHeads(g: GraphBuilder, x: string, heads: number, headDim: number): string {
  const shape = g.op1('Concat', [g.op1('Shape', [x], { start: { i: 0 }, end: { i: 2 } }), g.int64([heads, headDim])], {
    axis: { i: 0 },
  });
  return g.op1('Transpose', [g.op1('Reshape', [x, shape])], { perm: { ints: [0, 2, 1, 3] } });
}

/** [batch, heads, seq, headDim] -> [batch, seq, heads*headDim] */
export function mergeHeads(g: GraphBuilder, x: string, dModel: number): string {
  const t = g.op1('Transpose', [x], { perm: { ints: [0, 2, 1, 3] } });
  const shape = g.op1('Concat', [g.op1('Shape', [t], { start: { i: 0 }, end: { i: 2 } }), g.int64([dModel])], {
    axis: { i: 0 },
  });
  return g.op1('Reshape', [t, shape]);
}

/**
 * softmax(q k^T) v over [batch, heads, *, headDim] tensors; q is already scaled. `allowed`, if given,
 * is a bool [q_len, k_len] mask: scores where it is false become -inf before the softmax.
 */
export function attend(g: GraphBuilder, q: string, k: string, v: string, allowed?: string): string {
  return attendWithWeights(g, q, k, v, allowed).out;
}

/**
 * `attend`, also giving the attention weights after the softmax, [batch, heads, q_len, k_len]:
 * what the hub's `*_timestamped` decoders expose as `cross_attentions.N`.
 */
export function attendWithWeights(
  g: GraphBuilder,
  q: string,
  k: string,
  v: string,
  allowed?: string,
): { out: string; weights: string } {
  let scores = g.op1('MatMul', [q, g.op1('Transpose', [k], { perm: { ints: [0, 1, 3, 2] } })]);
  if (allowed) scores = g.op1('Where', [allowed, scores, g.float([-Infinity])]);
  const weights = g.op1('Softmax', [scores], { axis: { i: -1 } });
  return { out: g.op1('MatMul', [weights, v]), weights };
}

/**
 * Attention over keys/values given as two parts [k1; k2], [v1; v2] without joining them: the scores
 * are joined for one softmax and the weights split again, so neither part is copied (the cross cache
 * is large). Also gives the weights after the softmax over both parts.
 */
export function attendTwoParts(
  g: GraphBuilder,
  q: string,
  [k1, v1]: readonly [string, string],
  [k2, v2]: readonly [string, string],
): { out: string; weights: string } {
  const scoresOf = (k: string) => g.op1('MatMul', [q, g.op1('Transpose', [k], { perm: { ints: [0, 1, 3, 2] } })]);
  const weights = g.op1('Softmax', [g.op1('Concat', [scoresOf(k1), scoresOf(k2)], { axis: { i: -1 } })], { axis: { i: -1 } });
  const len1 = g.op1('Shape', [k1], { start: { i: 2 }, end: { i: 3 } });
  const big = g.int64([Number.MAX_SAFE_INTEGER]);
  const last = g.int64([-1]);
  const w1 = g.op1('Slice', [weights, g.int64([0]), len1, last]);
  const w2 = g.op1('Slice', [weights, len1, big, last]);
  // One of the two parts is always empty (the past one without a cache, the fresh one with it).
  return { out: g.op1('Add', [matMulMaybeEmpty(g, w1, v1), matMulMaybeEmpty(g, w2, v2)]), weights };
}

/**
 * MatMul(a, b) of [batch, heads, m, k] x [batch, heads, k, n] where k may be 0, which makes the
 * product zeros. onnxruntime 1.30's WebGPU provider crashes the process on a MatMul whose inner
 * dimension is 0 (see scripts/test-model/WEBGPU.md), so when k is 0 the rows of `a` are cut to none
 * (an empty product, which no provider computes) and padded back with zeros. With k > 0 this is the
 * plain MatMul: the same numbers on every provider, for the cost of copying `a` and the product.
 */
export function matMulMaybeEmpty(g: GraphBuilder, a: string, b: string): string {
  const m = g.op1('Shape', [a], { start: { i: 2 }, end: { i: 3 } });
  const k = g.op1('Shape', [a], { start: { i: 3 }, end: { i: 4 } });
  const rows = g.op1('Mul', [m, g.op1('Min', [k, g.int64([1])])]);
  const product = g.op1('MatMul', [g.op1('Slice', [a, g.int64([0]), rows, g.int64([2])]), b]);
  const pads = g.op1('Concat', [g.int64([0, 0, 0, 0, 0, 0]), g.op1('Sub', [m, rows]), g.int64([0])], { axis: { i: 0 } });
  return g.op1('Pad', [product, pads]);
}

export interface AttentionDims {
  dModel: number;
  heads: number;
}

/** q_proj (with bias, scaled by headDim^-0.5), split into heads. */
export function queryHeads(ctx: ParamContext, h: string, name: string, d: AttentionDims): string {
  const headDim = d.dModel / d.heads;
  const q = linear(ctx, h, `${name}.q_proj`, d.dModel, d.dModel, true);
  return splitHeads(ctx.g, ctx.g.op1('Mul', [q, ctx.g.float([headDim ** -0.5])]), d.heads, headDim);
}

/** k_proj (no bias, as in Whisper) and v_proj (with bias) of `src`, split into heads. */
export function keyValueHeads(ctx: ParamContext, src: string, name: string, d: AttentionDims): [string, string] {
  const headDim = d.dModel / d.heads;
  const k = linear(ctx, src, `${name}.k_proj`, d.dModel, d.dModel, false);
  const v = linear(ctx, src, `${name}.v_proj`, d.dModel, d.dModel, true);
  return [splitHeads(ctx.g, k, d.heads, headDim), splitHeads(ctx.g, v, d.heads, headDim)];
}

/** Merges attention heads and applies out_proj (see `linear` for `gain`). */
export function attentionOutput(ctx: ParamContext, heads: string, name: string, d: AttentionDims, gain = 1): string {
  return linear(ctx, mergeHeads(ctx.g, heads, d.dModel), `${name}.out_proj`, d.dModel, d.dModel, true, gain);
}

/** fc1 -> GELU -> fc2 (see `linear` for `gain`). */
export function feedForward(
  ctx: ParamContext,
  h: string,
  name: string,
  dModel: number,
  ffnDim: number,
  gain = 1,
): string {
  const inner = gelu(ctx.g, linear(ctx, h, `${name}.fc1`, dModel, ffnDim, true));
  return linear(ctx, inner, `${name}.fc2`, ffnDim, dModel, true, gain);
}
