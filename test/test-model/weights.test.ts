// The files hold what their names claim: one tied embedding, real 8-bit weights behind MatMulInteger /
// ConvInteger in the int8 and q8 files, half-float weights with float32 I/O in the fp16 files, and
// all of them computing (nearly) what the fp32 file computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import type onnxProto from 'onnx-proto';
import { onnxFileNames, PRESET_SPECS, type Dtype } from '../../scripts/test-model/index.ts';
import { dequantize, type Quantized } from '../../scripts/test-model/precision.ts';
import { correlation, decode, encode, maxAbsDiff, modelDir, onnx, readModel, row, session, SMALL } from './support.ts';

const dir = modelDir('multilingual');
const VOCAB = PRESET_SPECS.multilingual.vocabSize;
const T = onnx.TensorProto.DataType;
const EMBED = 'model.decoder.embed_tokens.weight';

type Model = ReturnType<typeof readModel>;
const decoderOf = (dtype: Dtype) => readModel(dir, onnxFileNames(dtype).decoder);
const encoderOf = (dtype: Dtype) => readModel(dir, onnxFileNames(dtype).encoder);
const size = (t: onnxProto.onnx.ITensorProto) => (t.dims ?? []).reduce<number>((a: number, b) => a * Number(b), 1);
const nodes = (m: Model, op: string) => m.graph!.node!.filter((n) => n.opType === op);
const init = (m: Model, name: string) => m.graph!.initializer!.find((t) => t.name === name);

for (const dtype of ['fp32', 'fp16', 'q8', 'int8'] as Dtype[]) {
  test(`${dtype}: the token embedding is stored once and also serves as the output projection`, () => {
    const m = decoderOf(dtype);
    const tables = m.graph!.initializer!.filter((t) => size(t) === VOCAB * SMALL.dModel);
    assert.equal(tables.length, 1);
    assert.deepEqual(tables[0]!.dims!.map(Number), [VOCAB, SMALL.dModel]);
    // Follow the one table through a Cast (fp16) or Transpose (8-bit) to both of its users.
    const users = (name: string): string[] =>
      m.graph!.node!.filter((n) => n.input!.includes(name)).flatMap((n) =>
        n.opType === 'Cast' || n.opType === 'Transpose' ? users(n.output![0]!) : [n.opType!],
      );
    const expected = dtype === 'q8' || dtype === 'int8' ? ['Gather', 'MatMulInteger'] : ['Gather', 'Gemm'];
    assert.deepEqual(users(tables[0]!.name!).sort(), expected);
    if (expected.includes('Gemm')) {
      const gemm = nodes(m, 'Gemm')[0]!;
      assert.equal(Number(gemm.attribute!.find((a) => a.name === 'transB')?.i), 1);
    }
  });
}

for (const dtype of ['int8', 'q8'] as Dtype[]) {
  test(`${dtype}: weights are real 8-bit tensors multiplied with MatMulInteger/ConvInteger`, () => {
    const weightType = dtype === 'int8' ? T.INT8 : T.UINT8;
    const dec = decoderOf(dtype);
    // q,k,v,out for self- and cross-attention plus fc1, fc2 per layer, and the output projection.
    const linears = 10 * SMALL.decoderLayers + 1;
    assert.equal(nodes(dec, 'MatMulInteger').length, linears);
    assert.equal(nodes(dec, 'DynamicQuantizeLinear').length, linears);
    for (const n of nodes(dec, 'MatMulInteger')) {
      const weight = init(dec, n.input![1]!) ?? init(dec, EMBED + '_quantized');
      assert.equal(weight?.dataType, weightType, n.name!);
    }
    // No float copy of any matrix is left: the largest float tensor is the position table.
    const floats = dec.graph!.initializer!.filter((t) => t.dataType === T.FLOAT && size(t) > SMALL.dModel * SMALL.dModel);
    assert.deepEqual(floats.map((t) => t.name), ['model.decoder.embed_positions.weight']);
    assert.equal(nodes(dec, 'MatMul').filter((n) => init(dec, n.input![1]!)).length, 0);

    const enc = encoderOf(dtype);
    assert.equal(nodes(enc, 'ConvInteger').length, 2);
    assert.equal(nodes(enc, 'Conv').length, 0);
    for (const n of nodes(enc, 'ConvInteger')) assert.equal(init(enc, n.input![1]!)?.dataType, T.UINT8);
    assert.equal(nodes(enc, 'MatMulInteger').length, 6 * SMALL.encoderLayers);
  });

  test(`${dtype}: the 8-bit embedding dequantises to the fp32 one within half a step`, () => {
    const q = decoderOf(dtype);
    const data = init(q, `${EMBED}_quantized`)!;
    const scale = init(q, `${EMBED}_scale`)!;
    const zp = init(q, `${EMBED}_zero_point`)!;
    const raw = data.rawData!;
    const quantized: Quantized = {
      type: data.dataType === T.INT8 ? 'int8' : 'uint8',
      data: data.dataType === T.INT8 ? new Int8Array(raw.buffer, raw.byteOffset, raw.length) : raw,
      scale: Buffer.from(scale.rawData!).readFloatLE(0),
      zeroPoint: data.dataType === T.INT8 ? Buffer.from(zp.rawData!).readInt8(0) : zp.rawData![0]!,
    };
    const fp = init(decoderOf('fp32'), EMBED)!.rawData!;
    const reference = new Float32Array(fp.buffer.slice(fp.byteOffset, fp.byteOffset + fp.length));
    assert.ok(maxAbsDiff(dequantize(quantized), reference) <= quantized.scale / 2 + 1e-6);
  });
}

test('fp16: half-float weights, float32 inputs and outputs (as the hub keeps its I/O types)', async () => {
  const m = decoderOf('fp16');
  const big = m.graph!.initializer!.filter((t) => size(t) > SMALL.dModel);
  assert.ok(big.length > 10);
  for (const t of big) assert.equal(t.dataType, T.FLOAT16, t.name!);
  const fp32Bytes = decoderOf('fp32').graph!.initializer!.find((t) => t.name === EMBED)!.rawData!.length;
  assert.equal(init(m, EMBED)!.rawData!.length, fp32Bytes / 2);
  for (const kind of ['encoder', 'decoder'] as const) {
    const s = await session(dir, kind, 'fp16');
    for (const meta of [...s.inputMetadata, ...s.outputMetadata]) {
      if (meta.name === 'input_ids' || meta.name === 'use_cache_branch') continue;
      assert.ok(meta.isTensor && meta.type === 'float32', `${kind} ${meta.name}`);
    }
  }
});

for (const [dtype, minCorrelation] of [['fp16', 0.9999], ['q8', 0.99], ['int8', 0.99]] as const) {
  test(`${dtype}: logits follow the fp32 model's`, async () => {
    const tokens = [[50258, 50259, 50359, 50363, 440, 2068]];
    const logitsOf = async (d: Dtype) =>
      (await decode(await session(dir, 'decoder', d), tokens, await encode(dir, 'multilingual', d))).logits as ort.Tensor;
    const ref = await logitsOf('fp32');
    const out = await logitsOf(dtype);
    for (let t = 0; t < tokens[0]!.length; t++) {
      const c = correlation(row(out, 0, t), row(ref, 0, t));
      assert.ok(c > minCorrelation, `position ${t}: correlation ${c}`);
    }
  });
}
