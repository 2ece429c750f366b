// The text decoder graph with the merged-decoder signature of the hub (decoder_model_merged*.onnx).
// One graph serves both branches without an If node:
//  - self-attention keys/values are the past ones concatenated with this step's; the causal mask and
//    the learned positions both start at the past length, so a cached step sees position past_len;
//  - cross-attention keys/values are projected from encoder_hidden_states sliced to length 0 when
//    use_cache_branch is true (else to its full length); attention runs over the past encoder
//    keys/values and these fresh ones as two parts (scores joined for one softmax), so the cached
//    branch reads the past ones in place. Like the hub's cached branch, it outputs the fresh (here
//    empty) encoder keys/values as `present.N.encoder.*` rather than a copy of the whole cross cache,
//    which at batch 16 on tiny dims is ~300 MB a step.
// The output projection is tied to the token embedding (one initializer, used by both).
// With `crossAttentions`, the graph also outputs every layer's cross-attention weights (after the
// softmax) as `cross_attentions.N`, [batch, heads, seq, encoder positions], after the usual outputs:
// the extra outputs of the hub's `*_timestamped` exports, which word-level timestamps read.
import { GraphBuilder, type Dim } from '../../src/engine/onnx-graph.ts';
import { attend, attendTwoParts, attentionOutput, feedForward, keyValueHeads, layerNorm, queryHeads } from './blocks.ts';
import { randomParam, tiedEmbedding, type ParamContext } from './params.ts';
import type { Dtype, ModelDims } from './options.ts';

/** Symbolic dimension names, as in the hub's merged decoders (transformers.js sizes all but batch_size to 0). */
export const DECODER_DIMS = {
  batch: 'batch_size',
  seq: 'decoder_sequence_length',
  encoderSeq: 'encoder_sequence_length / 2',
  pastSeq: 'past_decoder_sequence_length',
  encoderOut: 'encoder_sequence_length_out',
  presentSeq: 'past_decoder_sequence_length + decoder_sequence_length',
} as const;

/**
 * Output gains of the residual branches. With all at 1 the near-uniform cross-attention average
 * dominates the residual stream and a random model repeats one token forever; a strong MLP branch
 * (a random non-linear function of token and position) makes the next token vary with both, so
 * decoding tests see varied sequences that depend on the cache and positions being right.
 */
const GAIN = { self: 1, cross: 0.5, mlp: 3 };

export interface DecoderBuildOptions {
  /** Also output `cross_attentions.N` (the hub's `*_timestamped` decoders). */
  crossAttentions?: boolean;
}

export function buildDecoder(
  dims: ModelDims,
  vocabSize: number,
  dtype: Dtype,
  seed: number,
  opts: DecoderBuildOptions = {},
): GraphBuilder {
  const g = new GraphBuilder('whisper_decoder_merged');
  const ctx: ParamContext = { g, dtype, seed };
  const D = DECODER_DIMS;
  const d = { dModel: dims.dModel, heads: dims.heads };
  const headDim = dims.dModel / dims.heads;
  const kvShape = (seq: Dim): Dim[] => [D.batch, dims.heads, seq, headDim];

  const ids = g.input('input_ids', 'int64', [D.batch, D.seq]);
  const encoder = g.input('encoder_hidden_states', 'float', [D.batch, D.encoderSeq, dims.dModel]);
  const past: { dk: string; dv: string; ek: string; ev: string }[] = [];
  for (let l = 0; l < dims.decoderLayers; l++) {
    const p = `past_key_values.${l}`;
    past.push({
      dk: g.input(`${p}.decoder.key`, 'float', kvShape(D.pastSeq)),
      dv: g.input(`${p}.decoder.value`, 'float', kvShape(D.pastSeq)),
      ek: g.input(`${p}.encoder.key`, 'float', kvShape(D.encoderOut)),
      ev: g.input(`${p}.encoder.value`, 'float', kvShape(D.encoderOut)),
    });
  }
  const useCache = g.input('use_cache_branch', 'bool', [1]);

  // Positions past_len .. past_len + seq - 1, and the causal mask over all past_len + seq keys.
  const squeeze = (t: string) => g.op1('Squeeze', [t, g.int64([0])]);
  const pastLen = g.op1('Shape', [past[0]!.dk], { start: { i: 2 }, end: { i: 3 } });
  const seqLen = g.op1('Shape', [ids], { start: { i: 1 }, end: { i: 2 } });
  const total = g.op1('Add', [pastLen, seqLen]);
  const one = g.int64([1], []);
  const queryPos = g.op1('Range', [squeeze(pastLen), squeeze(total), one]);
  const keyPos = g.op1('Range', [g.int64([0], []), squeeze(total), one]);
  const causal = g.op1('LessOrEqual', [
    g.op1('Unsqueeze', [keyPos, g.int64([0])]),
    g.op1('Unsqueeze', [queryPos, g.int64([1])]),
  ]);

  // encoder_hidden_states[:, :0] on the cached branch, [:, :all] otherwise.
  const notCached = g.op1('Sub', [g.int64([1]), g.op1('Cast', [useCache], { to: { i: 7 } })]);
  const encoderLen = g.op1('Mul', [notCached, g.op1('Shape', [encoder], { start: { i: 1 }, end: { i: 2 } })]);
  const encoderFresh = g.op1('Slice', [encoder, g.int64([0]), encoderLen, g.int64([1])]);

  const embedding = tiedEmbedding(ctx, 'model.decoder.embed_tokens.weight', vocabSize, dims.dModel);
  const positions = randomParam(ctx, 'model.decoder.embed_positions.weight', [dims.targetPositions, dims.dModel], {
    std: 2 / Math.sqrt(dims.dModel),
  });
  let x = g.op1('Add', [embedding.lookup(ids), g.op1('Gather', [positions, queryPos], { axis: { i: 0 } })]);

  const crossWeights: string[] = [];
  for (let l = 0; l < dims.decoderLayers; l++) {
    const p = `model.decoder.layers.${l}`;
    const cache = past[l]!;
    const concat = (a: string, b: string) => g.op1('Concat', [a, b], { axis: { i: 2 } });

    const h = layerNorm(ctx, x, `${p}.self_attn_layer_norm`, dims.dModel);
    const q = queryHeads(ctx, h, `${p}.self_attn`, d);
    const [kNew, vNew] = keyValueHeads(ctx, h, `${p}.self_attn`, d);
    const k = concat(cache.dk, kNew);
    const v = concat(cache.dv, vNew);
    g.output(k, `present.${l}.decoder.key`, 'float', kvShape(D.presentSeq));
    g.output(v, `present.${l}.decoder.value`, 'float', kvShape(D.presentSeq));
    x = g.op1('Add', [x, attentionOutput(ctx, attend(g, q, k, v, causal), `${p}.self_attn`, d, GAIN.self)]);

    const hc = layerNorm(ctx, x, `${p}.encoder_attn_layer_norm`, dims.dModel);
    const qc = queryHeads(ctx, hc, `${p}.encoder_attn`, d);
    const [ekNew, evNew] = keyValueHeads(ctx, encoderFresh, `${p}.encoder_attn`, d);
    g.output(ekNew, `present.${l}.encoder.key`, 'float', kvShape(D.encoderOut));
    g.output(evNew, `present.${l}.encoder.value`, 'float', kvShape(D.encoderOut));
    const cross = attendTwoParts(g, qc, [cache.ek, cache.ev], [ekNew, evNew]);
    crossWeights.push(cross.weights);
    x = g.op1('Add', [x, attentionOutput(ctx, cross.out, `${p}.encoder_attn`, d, GAIN.cross)]);

    const hf = layerNorm(ctx, x, `${p}.final_layer_norm`, dims.dModel);
    x = g.op1('Add', [x, feedForward(ctx, hf, p, dims.dModel, dims.ffnDim, GAIN.mlp)]);
  }
  x = layerNorm(ctx, x, 'model.decoder.layer_norm', dims.dModel);

  // Logits through the tied embedding, on [batch*seq, d_model] rows, reshaped back.
  const rows = g.op1('Flatten', [x], { axis: { i: 2 } });
  const logitsShape = g.op1('Concat', [g.op1('Shape', [x], { start: { i: 0 }, end: { i: 2 } }), g.int64([vocabSize])], {
    axis: { i: 0 },
  });
  const logits = g.op1('Reshape', [embedding.project(rows), logitsShape]);
  g.output(logits, 'logits', 'float', [D.batch, D.seq, vocabSize]);
  if (opts.crossAttentions) {
    crossWeights.forEach((w, l) => g.output(w, `cross_attentions.${l}`, 'float', [D.batch, dims.heads, D.seq, D.encoderOut]));
  }
  return g;
}
