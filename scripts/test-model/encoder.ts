// The audio encoder graph (encoder_model*.onnx): log-mel [batch, n_mels, 3000] -> two conv1d + GELU
// (the second with stride 2) -> sinusoidal positions -> pre-LayerNorm transformer blocks -> final
// LayerNorm -> last_hidden_state [batch, 1500, d_model], as Whisper computes it. With `halfIo` the
// features come in and the states go out as float16 (cast at the edges; see options.ts).
import { GraphBuilder } from '../../src/engine/onnx-graph.ts';
import { attend, attentionOutput, feedForward, gelu, keyValueHeads, layerNorm, queryHeads } from './blocks.ts';
import { conv1d, FLOAT, FLOAT16, floatParam, type ParamContext } from './params.ts';
import type { Dtype, ModelDims } from './options.ts';

/** Whisper's fixed sinusoidal position table [length, channels]: sines then cosines. */
export function sinusoids(length: number, channels: number): Float32Array {
  const half = channels / 2;
  const increment = Math.log(10000) / (half - 1);
  const out = new Float32Array(length * channels);
  for (let t = 0; t < length; t++) {
    for (let i = 0; i < half; i++) {
      const x = t * Math.exp(-increment * i);
      out[t * channels + i] = Math.sin(x);
      out[t * channels + half + i] = Math.cos(x);
    }
  }
  return out;
}

export function buildEncoder(dims: ModelDims, nMels: number, dtype: Dtype, seed: number, halfIo = false): GraphBuilder {
  const g = new GraphBuilder('whisper_encoder');
  const ctx: ParamContext = { g, dtype, seed };
  const d = { dModel: dims.dModel, heads: dims.heads };

  const io = halfIo ? 'float16' : 'float';
  const input = g.input('input_features', io, ['batch_size', nMels, dims.melFrames]);
  const features = halfIo ? g.op1('Cast', [input], { to: { i: FLOAT } }) : input;
  let x = gelu(g, conv1d(ctx, features, 'model.encoder.conv1', nMels, dims.dModel, 1));
  x = gelu(g, conv1d(ctx, x, 'model.encoder.conv2', dims.dModel, dims.dModel, 2));
  x = g.op1('Transpose', [x], { perm: { ints: [0, 2, 1] } });
  const positions = sinusoids(dims.sourcePositions, dims.dModel);
  const table = floatParam(ctx, 'model.encoder.embed_positions.weight', [dims.sourcePositions, dims.dModel], positions);
  x = g.op1('Add', [x, table]);

  for (let l = 0; l < dims.encoderLayers; l++) {
    const p = `model.encoder.layers.${l}`;
    const h = layerNorm(ctx, x, `${p}.self_attn_layer_norm`, dims.dModel);
    const q = queryHeads(ctx, h, `${p}.self_attn`, d);
    const [k, v] = keyValueHeads(ctx, h, `${p}.self_attn`, d);
    x = g.op1('Add', [x, attentionOutput(ctx, attend(g, q, k, v), `${p}.self_attn`, d)]);
    const h2 = layerNorm(ctx, x, `${p}.final_layer_norm`, dims.dModel);
    x = g.op1('Add', [x, feedForward(ctx, h2, p, dims.dModel, dims.ffnDim)]);
  }
  x = layerNorm(ctx, x, 'model.encoder.layer_norm', dims.dModel);
  g.output(halfIo ? g.op1('Cast', [x], { to: { i: FLOAT16 } }) : x, 'last_hidden_state', io, ['batch_size', dims.sourcePositions, dims.dModel]);
  return g;
}
