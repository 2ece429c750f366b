// The rewritten graphs: the layout of onnxruntime's dynamic quantisation on the Whisper test model
// (8-bit weights behind MatMulInteger/ConvInteger, one DynamicQuantizeLinear per activation, the tied
// embedding stored once at 8 bits for both of its uses), and the less common paths on a small graph
// of their own (Gemm with alpha/beta/bias and without transB, weights read inside If branches),
// each checked by running it against its fp32 original with onnxruntime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DIMS, PRESET_SPECS } from '../../scripts/test-model/index.ts';
import { quantizeModel } from '../../src/models/quantize/index.ts';
import { DataType, dimsOf, makeTensor, onnx, type Model, type Node } from '../../src/models/quantize/onnx.ts';
import { randomValues } from '../../scripts/test-model/random.ts';
import { quantizedCopy } from './support.ts';

const SMALL = DIMS.small;
const VOCAB = PRESET_SPECS.english.vocabSize;
const EMBED = 'model.decoder.embed_tokens.weight';

const read = (path: string): Model => onnx.ModelProto.decode(readFileSync(path));
const nodes = (m: Model, op: string): Node[] => m.graph!.node!.filter((n) => n.opType === op);
const init = (m: Model, name: string) => m.graph!.initializer!.find((t) => t.name === name);
const consumers = (m: Model, name: string): Node[] => m.graph!.node!.filter((n) => n.input!.includes(name));

const int8 = quantizedCopy('english', 'int8');

test('decoder: every linear layer is a MatMulInteger on int8 weights, activations quantised once each', () => {
  const dec = read(join(int8.outDir, 'onnx/decoder_model_merged_int8.onnx'));
  // q, k, v, out for self- and cross-attention plus fc1, fc2 per layer, and the output projection.
  const matmuls = nodes(dec, 'MatMulInteger');
  assert.equal(matmuls.length, 10 * SMALL.decoderLayers + 1);
  assert.equal(nodes(dec, 'MatMul').filter((n) => init(dec, n.input![1]!)).length, 0);
  assert.equal(nodes(dec, 'Gemm').length, 0);
  // q/k/v of self-attention share one input: 6 per layer (qkv, out, cross q, cross out, fc1, fc2),
  // plus one for the encoder states that every layer's cross k/v read, plus the output projection's.
  const dql = nodes(dec, 'DynamicQuantizeLinear');
  assert.equal(dql.length, 6 * SMALL.decoderLayers + 2);
  assert.equal(new Set(dql.map((n) => n.input![0])).size, dql.length);
  for (const n of matmuls) {
    const producer = dec.graph!.node!.find((p) => p.output!.includes(n.input![1]!));
    const weight = init(dec, producer?.opType === 'Transpose' ? producer.input![0]! : n.input![1]!);
    assert.equal(weight?.dataType, DataType.INT8, n.name!);
    assert.deepEqual(dimsOf(init(dec, n.input![3]!)!), [], 'per-tensor zero point');
  }
  // Nothing float the size of a weight matrix is left but the position table.
  const floats = dec.graph!.initializer!.filter((t) => t.dataType === DataType.FLOAT && dimsOf(t).reduce((a, b) => a * b, 1) >= SMALL.dModel ** 2);
  assert.deepEqual(floats.map((t) => t.name), ['model.decoder.embed_positions.weight']);
});

test('decoder: the tied embedding is one 8-bit table for the lookup and the output projection', () => {
  const dec = read(join(int8.outDir, 'onnx/decoder_model_merged_int8.onnx'));
  const tables = dec.graph!.initializer!.filter((t) => dimsOf(t).join() === `${VOCAB},${SMALL.dModel}`);
  assert.deepEqual(tables.map((t) => [t.name, t.dataType]), [[`${EMBED}_quantized`, DataType.INT8]]);
  const users = consumers(dec, `${EMBED}_quantized`);
  assert.deepEqual(users.map((n) => n.opType).sort(), ['Gather', 'Transpose']);
  const gather = users.find((n) => n.opType === 'Gather')!;
  assert.deepEqual(consumers(dec, gather.output![0]!).map((n) => n.opType), ['DequantizeLinear']);
  const transpose = users.find((n) => n.opType === 'Transpose')!;
  assert.deepEqual(consumers(dec, transpose.output![0]!).map((n) => n.opType), ['MatMulInteger']);
  assert.equal(init(dec, EMBED), undefined, 'the float table is gone');
});

test('encoder: convolutions become ConvInteger with uint8 weights (the CPU kernel takes no int8)', () => {
  const enc = read(join(int8.outDir, 'onnx/encoder_model_int8.onnx'));
  assert.equal(nodes(enc, 'Conv').length, 0);
  const convs = nodes(enc, 'ConvInteger');
  assert.equal(convs.length, 2);
  for (const n of convs) {
    assert.equal(init(enc, n.input![1]!)?.dataType, DataType.UINT8);
    assert.ok(n.attribute!.some((a) => a.name === 'strides'), 'attributes carried over');
  }
  assert.equal(nodes(enc, 'MatMulInteger').length, 6 * SMALL.encoderLayers);
});

test('per-channel: one scale and zero point per output column, the tied table stays per tensor', () => {
  const q = quantizedCopy('english', 'q8', { perChannel: true });
  const dec = read(join(q.outDir, 'onnx/decoder_model_merged_quantized.onnx'));
  for (const n of nodes(dec, 'MatMulInteger')) {
    const zp = init(dec, n.input![3]!)!;
    assert.equal(zp.dataType, DataType.UINT8);
    const tied = n.input![1]!.startsWith(EMBED);
    assert.deepEqual(dimsOf(zp), tied ? [] : [dimsOf(init(dec, n.input![1]!)!)[1]!], n.name!);
  }
});

test('a graph that is already quantised is refused', () => {
  const built = read(join(int8.source, 'onnx/decoder_model_merged.onnx'));
  const once = onnx.ModelProto.decode(onnx.ModelProto.encode(built).finish());
  quantizeModel(once, int8.source, 'decoder', { to: 'int8' });
  assert.throws(() => quantizeModel(once, int8.source, 'decoder', { to: 'int8' }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'already_quantized');
    assert.match(e.message, /^decoder is already quantised \(it has \w+ nodes\)/);
    return true;
  });
});

// A small graph for the paths Whisper's exports do not take: x [3, 8] -> Gemm(alpha 0.5, W [6, 8],
// transB, beta 2, C [6]) -> If(flag) { then: MatMul(., V [6, 5]); else: Gemm(., V, no bias) + 1 }.
function gemmIfModel(): Model {
  const t = (name: string, dims: number[]) => makeTensor(name, dims, randomValues(11, name, dims.reduce((a, b) => a * b, 1), 0.5));
  const vi = (name: string, type: number, dims: (number | string)[]) => ({
    name,
    type: { tensorType: { elemType: type, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  const branch = (name: string, body: Node[], out: string) => ({ name, node: body, output: [vi(out, DataType.FLOAT, [3, 5])] });
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'gemm_if',
      input: [vi('x', DataType.FLOAT, [3, 8]), vi('flag', DataType.BOOL, [])],
      output: [vi('y', DataType.FLOAT, [3, 5])],
      initializer: [t('W', [6, 8]), t('C', [6]), t('V', [6, 5]), makeTensor('one', [], Float32Array.of(1))],
      node: [
        {
          opType: 'Gemm',
          input: ['x', 'W', 'C'],
          output: ['h'],
          attribute: [
            { name: 'alpha', type: 1, f: 0.5 },
            { name: 'beta', type: 1, f: 2 },
            { name: 'transB', type: 2, i: 1 },
          ],
        },
        {
          opType: 'If',
          input: ['flag'],
          output: ['y'],
          attribute: [
            { name: 'then_branch', type: 5, g: branch('then', [{ opType: 'MatMul', input: ['h', 'V'], output: ['yt'] }], 'yt') },
            {
              name: 'else_branch',
              type: 5,
              g: branch('else', [
                { opType: 'Gemm', input: ['h', 'V'], output: ['ye0'] },
                { opType: 'Add', input: ['ye0', 'one'], output: ['ye'] },
              ], 'ye'),
            },
          ],
        },
      ],
    },
  };
}

test('Gemm (alpha, beta, bias, with and without transB) and weights used inside If branches', async () => {
  const fp32 = gemmIfModel();
  const q = onnx.ModelProto.decode(onnx.ModelProto.encode(fp32).finish());
  const stats = quantizeModel(q, '.', 'gemm_if', { to: 'int8', perChannel: true });
  assert.deepEqual([stats.gemm, stats.matmul], [2, 1]);
  // V is used by both branches in the same [in, out] layout: one 8-bit copy serves both.
  assert.equal(stats.weights, 2);
  const branches = q.graph!.node!.find((n) => n.opType === 'If')!.attribute!.map((a) => a.g!);
  for (const g of branches) assert.equal(g.node!.filter((n) => n.opType === 'MatMulInteger').length, 1);
  assert.deepEqual(q.graph!.initializer!.filter((t) => t.dataType === DataType.FLOAT && dimsOf(t).length === 2), []);

  const x = new ort.Tensor('float32', randomValues(2, 'x', 24, 1), [3, 8]);
  const run = async (m: Model, flag: boolean) => {
    const s = await ort.InferenceSession.create(onnx.ModelProto.encode(m).finish());
    const y = (await s.run({ x, flag: new ort.Tensor('bool', Uint8Array.of(flag ? 1 : 0), []) })).y!.data as Float32Array;
    await s.release();
    return y;
  };
  for (const flag of [true, false]) {
    const ref = await run(fp32, flag);
    const got = await run(q, flag);
    const scale = Math.max(...ref.map(Math.abs));
    const err = Math.max(...ref.map((v, i) => Math.abs(v - got[i]!)));
    assert.ok(err < 0.05 * scale && err > 0, `flag ${flag}: error ${err} of ${scale}`);
  }
});
