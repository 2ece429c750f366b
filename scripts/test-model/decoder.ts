// The text decoder graph with the merged-decoder signature of the hub (decoder_model_merged*.onnx),
// in one of two forms (`merged`):
//  - `single` (the default): one graph serves both branches without an If node:
//    - self-attention keys/values are the past ones concatenated with this step's; the causal mask and
//      the learned positions both start at the past length, so a cached step sees position past_len;
//    - cross-attention keys/values are projected from encoder_hidden_states sliced to length 0 when
//      use_cache_branch is true (else to its full length); attention runs over the past encoder
//      keys/values and these fresh ones as two parts (scores joined for one softmax), so the cached
//      branch reads the past ones in place. Like the hub's cached branch, it outputs the fresh (here
//      empty) encoder keys/values as `present.N.encoder.*` rather than a copy of the whole cross cache,
//      which at batch 16 on tiny dims is ~300 MB a step.
//  - `if`: optimum's form (what the hub's real decoders are): an If on use_cache_branch whose
//    branches are two decoders sharing the weights, the cached one attending over the past cross
//    keys/values only (and outputting empty `present.N.encoder.*`), the other over fresh ones from
//    encoder_hidden_states. Both forms compute the same numbers.
// The output projection is tied to the token embedding (one initializer, used by both).
// With `crossAttentions`, the graph also outputs every layer's cross-attention weights (after the
// softmax) as `cross_attentions.N`, [batch, heads, seq, encoder positions], after the usual outputs:
// the extra outputs of the hub's `*_timestamped` exports, which word-level timestamps read.
// With `halfIo`, encoder_hidden_states, the past K/V, every present K/V, the logits and the
// cross-attention weights are float16 (cast at the graph's edges; the If's outputs are cast after
// it), the I/O of an fp16 conversion without keep_io_types (options.ts).
import { GraphBuilder, type Dim } from '../../src/engine/onnx-graph.ts';
import { attend, attendTwoParts, attendWithWeights, attentionOutput, feedForward, keyValueHeads, layerNorm, queryHeads } from './blocks.ts';
import { FLOAT, FLOAT16, randomParam, tiedEmbedding, type ParamContext } from './params.ts';
import type { Dtype, MergedForm, ModelDims } from './options.ts';

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
  /** The merged decoder's form (see the header); `single` by default. */
  merged?: MergedForm;
  /** float16 inputs and outputs (see the header). */
  halfIo?: boolean;
}

interface PastInputs {
  dk: string;
  dv: string;
  ek: string;
  ev: string;
}

/** Where a decoder's cross-attention keys/values come from. */
type CrossSource =
  /** Past and fresh (projected from `encoder`, sliced to none on the cached branch), as two parts. */
  | { kind: 'two-parts'; encoder: string }
  /** The past ones only (the If form's cached branch). */
  | { kind: 'past' }
  /** Fresh ones only, projected from `encoder` (the If form's uncached branch). */
  | { kind: 'fresh'; encoder: string };

/** The graph inputs and the values computed from them that every form shares. */
interface DecoderInputs {
  ids: string;
  past: PastInputs[];
  /** Positions of this call's tokens, past_len .. past_len + seq - 1. */
  queryPos: string;
  /** The causal mask over all past_len + seq keys. */
  causal: string;
}

interface NamedOutput {
  value: string;
  name: string;
  shape: Dim[];
}

/** Embedding, layers and logits into `ctx.g`; returns the outputs in the hub's order. */
function decoderBody(
  ctx: ParamContext,
  dims: ModelDims,
  vocabSize: number,
  io: DecoderInputs,
  cross: CrossSource,
  opts: DecoderBuildOptions,
): NamedOutput[] {
  const { g } = ctx;
  const D = DECODER_DIMS;
  const d = { dModel: dims.dModel, heads: dims.heads };
  const headDim = dims.dModel / dims.heads;
  const kvShape = (seq: Dim): Dim[] => [D.batch, dims.heads, seq, headDim];
  const outputs: NamedOutput[] = [];

  const embedding = tiedEmbedding(ctx, 'model.decoder.embed_tokens.weight', vocabSize, dims.dModel);
  const positions = randomParam(ctx, 'model.decoder.embed_positions.weight', [dims.targetPositions, dims.dModel], {
    std: 2 / Math.sqrt(dims.dModel),
  });
  let x = g.op1('Add', [embedding.lookup(io.ids), g.op1('Gather', [positions, io.queryPos], { axis: { i: 0 } })]);

  const crossWeights: string[] = [];
  for (let l = 0; l < dims.decoderLayers; l++) {
    const p = `model.decoder.layers.${l}`;
    const cache = io.past[l]!;
    const concat = (a: string, b: string) => g.op1('Concat', [a, b], { axis: { i: 2 } });

    const h = layerNorm(ctx, x, `${p}.self_attn_layer_norm`, dims.dModel);
    const q = queryHeads(ctx, h, `${p}.self_attn`, d);
    const [kNew, vNew] = keyValueHeads(ctx, h, `${p}.self_attn`, d);
    const k = concat(cache.dk, kNew);
    const v = concat(cache.dv, vNew);
    outputs.push({ value: k, name: `present.${l}.decoder.key`, shape: kvShape(D.presentSeq) });
    outputs.push({ value: v, name: `present.${l}.decoder.value`, shape: kvShape(D.presentSeq) });
    x = g.op1('Add', [x, attentionOutput(ctx, attend(g, q, k, v, io.causal), `${p}.self_attn`, d, GAIN.self)]);

    const hc = layerNorm(ctx, x, `${p}.encoder_attn_layer_norm`, dims.dModel);
    const qc = queryHeads(ctx, hc, `${p}.encoder_attn`, d);
    let attended: { out: string; weights: string };
    let present: [string, string];
    if (cross.kind === 'past') {
      // Like the hub's cached branch: the cross keys/values stay where they are, and the outputs
      // for them are empty.
      const none = (t: string) => g.op1('Slice', [t, g.int64([0]), g.int64([0]), g.int64([2])]);
      present = [none(cache.ek), none(cache.ev)];
      attended = attendWithWeights(g, qc, cache.ek, cache.ev);
    } else {
      const [ekNew, evNew] = keyValueHeads(ctx, cross.encoder, `${p}.encoder_attn`, d);
      present = [ekNew, evNew];
      attended =
        cross.kind === 'fresh' ? attendWithWeights(g, qc, ekNew, evNew) : attendTwoParts(g, qc, [cache.ek, cache.ev], [ekNew, evNew]);
    }
    outputs.push({ value: present[0], name: `present.${l}.encoder.key`, shape: kvShape(D.encoderOut) });
    outputs.push({ value: present[1], name: `present.${l}.encoder.value`, shape: kvShape(D.encoderOut) });
    crossWeights.push(attended.weights);
    x = g.op1('Add', [x, attentionOutput(ctx, attended.out, `${p}.encoder_attn`, d, GAIN.cross)]);

    const hf = layerNorm(ctx, x, `${p}.final_layer_norm`, dims.dModel);
    x = g.op1('Add', [x, feedForward(ctx, hf, p, dims.dModel, dims.ffnDim, GAIN.mlp)]);
  }
  x = layerNorm(ctx, x, 'model.decoder.layer_norm', dims.dModel);

  // Logits through the tied embedding, on [batch*seq, d_model] rows, reshaped back.
  const rows = g.op1('Flatten', [x], { axis: { i: 2 } });
  const logitsShape = g.op1('Concat', [g.op1('Shape', [x], { start: { i: 0 }, end: { i: 2 } }), g.int64([vocabSize])], {
    axis: { i: 0 },
  });
  outputs.push({ value: g.op1('Reshape', [embedding.project(rows), logitsShape]), name: 'logits', shape: [D.batch, D.seq, vocabSize] });
  if (opts.crossAttentions) {
    crossWeights.forEach((w, l) => outputs.push({ value: w, name: `cross_attentions.${l}`, shape: [D.batch, dims.heads, D.seq, D.encoderOut] }));
  }
  return outputs;
}

export function buildDecoder(
  dims: ModelDims,
  vocabSize: number,
  dtype: Dtype,
  seed: number,
  opts: DecoderBuildOptions = {},
): GraphBuilder {
  const g = new GraphBuilder('whisper_decoder_merged');
  const D = DECODER_DIMS;
  const headDim = dims.dModel / dims.heads;
  const kvShape = (seq: Dim): Dim[] => [D.batch, dims.heads, seq, headDim];

  const half = opts.halfIo ?? false;
  const ioType = half ? 'float16' : 'float';
  /** A float input, as float32 inside. */
  const floatInput = (name: string, shape: Dim[]) => {
    const x = g.input(name, ioType, shape);
    return half ? g.op1('Cast', [x], { to: { i: FLOAT } }) : x;
  };
  /** A float output, of the I/O type. */
  const floatOutput = (value: string, name: string, shape: Dim[]) => g.output(half ? g.op1('Cast', [value], { to: { i: FLOAT16 } }) : value, name, ioType, shape);

  const ids = g.input('input_ids', 'int64', [D.batch, D.seq]);
  const encoder = floatInput('encoder_hidden_states', [D.batch, D.encoderSeq, dims.dModel]);
  const past: PastInputs[] = [];
  for (let l = 0; l < dims.decoderLayers; l++) {
    const p = `past_key_values.${l}`;
    past.push({
      dk: floatInput(`${p}.decoder.key`, kvShape(D.pastSeq)),
      dv: floatInput(`${p}.decoder.value`, kvShape(D.pastSeq)),
      ek: floatInput(`${p}.encoder.key`, kvShape(D.encoderOut)),
      ev: floatInput(`${p}.encoder.value`, kvShape(D.encoderOut)),
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
  const io: DecoderInputs = { ids, past, queryPos, causal };

  if ((opts.merged ?? 'single') === 'single') {
    // encoder_hidden_states[:, :0] on the cached branch, [:, :all] otherwise.
    const notCached = g.op1('Sub', [g.int64([1]), g.op1('Cast', [useCache], { to: { i: 7 } })]);
    const encoderLen = g.op1('Mul', [notCached, g.op1('Shape', [encoder], { start: { i: 1 }, end: { i: 2 } })]);
    const encoderFresh = g.op1('Slice', [encoder, g.int64([0]), encoderLen, g.int64([1])]);
    for (const o of decoderBody({ g, dtype, seed }, dims, vocabSize, io, { kind: 'two-parts', encoder: encoderFresh }, opts)) {
      floatOutput(o.value, o.name, o.shape);
    }
    return g;
  }

  // The If form: each branch a decoder of its own over the shared weights; the If's outputs are
  // the graph's, in the same order.
  const branch = (name: string, cross: CrossSource): { graph: GraphBuilder; outputs: NamedOutput[] } => {
    const graph = g.subgraph(name);
    const outputs = decoderBody({ g: graph, dtype, seed }, dims, vocabSize, io, cross, opts);
    for (const o of outputs) graph.output(o.value, `${name}.${o.name}`, 'float', o.shape);
    return { graph, outputs };
  };
  const withPast = branch('with_past', { kind: 'past' });
  const withoutPast = branch('without_past', { kind: 'fresh', encoder });
  const results = g.op(
    'If',
    [useCache],
    { then_branch: { g: withPast.graph }, else_branch: { g: withoutPast.graph } },
    withPast.outputs.length,
  );
  withPast.outputs.forEach((o, i) => floatOutput(results[i]!, o.name, o.shape));
  return g;
}
