// The 8-bit arithmetic: uint8 against onnxruntime's own DynamicQuantizeLinear kernel (the reference
// for asymmetric uint8 quantisation, the same formula quantize_dynamic uses for weights), int8's
// symmetric 7-bit range, and per-channel scales.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/engine/onnx-graph.ts';
import { randomValues } from '../../scripts/test-model/random.ts';
import {
  dequantize,
  dequantizeChannels,
  quantizeChannels,
  quantizeInt8,
  quantizeTensor,
  quantizeUint8,
} from '../../src/models/quantize/weights.ts';

async function ortDynamicQuantize(values: Float32Array): Promise<{ data: Uint8Array; scale: number; zeroPoint: number }> {
  const g = new GraphBuilder('dql');
  const x = g.input('x', 'float', [values.length]);
  const [q, s, zp] = g.op('DynamicQuantizeLinear', [x], {}, 3);
  g.output(q!, 'q', 'uint8', [values.length]);
  g.output(s!, 's', 'float', []);
  g.output(zp!, 'zp', 'uint8', []);
  const session = await ort.InferenceSession.create(g.toBytes('test'));
  const out = await session.run({ x: new ort.Tensor('float32', values, [values.length]) });
  await session.release();
  return { data: out.q!.data as Uint8Array, scale: (out.s!.data as Float32Array)[0]!, zeroPoint: (out.zp!.data as Uint8Array)[0]! };
}

const cases: [string, Float32Array][] = [
  ['mixed signs', randomValues(7, 'mixed', 4096, 0.3, 0.05)],
  ['all positive', randomValues(7, 'positive', 1000, 0.1, 1)],
  ['all negative', randomValues(7, 'negative', 1000, 0.2, -2)],
];

for (const [name, values] of cases) {
  test(`uint8 matches onnxruntime's DynamicQuantizeLinear (${name})`, async () => {
    const ours = quantizeUint8(values);
    const ref = await ortDynamicQuantize(values);
    assert.equal(ours.type, 'uint8');
    assert.equal(ours.scale, ref.scale);
    assert.equal(ours.zeroPoint, ref.zeroPoint);
    // The kernel rounds exact halves to even, we round them up: allow a step on such ties only.
    let differing = 0;
    for (let i = 0; i < values.length; i++) {
      const d = Math.abs(ours.data[i]! - ref.data[i]!);
      assert.ok(d <= 1, `value ${i}: ${ours.data[i]} vs ${ref.data[i]}`);
      differing += d;
    }
    assert.ok(differing <= values.length / 1000, `${differing} values differ`);
  });
}

test('int8 is symmetric in the reduced range [-63, 63] and dequantises within half a step', () => {
  const values = randomValues(3, 'int8', 5000, 0.5, 0.1);
  const q = quantizeInt8(values);
  assert.equal(q.zeroPoint, 0);
  const maxAbs = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.equal(q.scale, Math.fround(maxAbs / 63));
  assert.equal(Math.max(...q.data.map(Math.abs)), 63);
  const back = dequantize(q);
  for (let i = 0; i < values.length; i++) assert.ok(Math.abs(back[i]! - values[i]!) <= q.scale / 2 + 1e-7);
});

test('zero is exact and constant tensors do not divide by zero', () => {
  const withZero = Float32Array.of(-1.3, 0, 0.25, 2.9);
  assert.equal(dequantize(quantizeUint8(withZero))[1], 0);
  for (const type of ['int8', 'uint8'] as const) {
    const q = quantizeTensor(new Float32Array(8), type);
    assert.deepEqual([...dequantize(q)], new Array(8).fill(0));
  }
  assert.throws(() => quantizeInt8(Float32Array.of(1, NaN)), /NaN or infinite/);
});

test('per-channel: each channel gets its own scale, so small channels keep their precision', () => {
  const rows = 64;
  const cols = 16;
  // Column c has magnitude 2^(c/2): per-tensor scales would flatten the small columns to 0.
  const values = Float32Array.from(randomValues(5, 'channels', rows * cols, 1), (v, i) => v * 2 ** ((i % cols) / 2));
  for (const type of ['int8', 'uint8'] as const) {
    const q = quantizeChannels(values, rows, cols, 1, type);
    assert.equal(q.scales.length, cols);
    const back = dequantizeChannels(q, rows, cols);
    const perTensor = dequantize(quantizeTensor(values, type));
    for (let c = 0; c < cols; c++) {
      let errChannel = 0;
      let errTensor = 0;
      for (let r = 0; r < rows; r++) {
        const i = r * cols + c;
        errChannel = Math.max(errChannel, Math.abs(back[i]! - values[i]!));
        errTensor = Math.max(errTensor, Math.abs(perTensor[i]! - values[i]!));
      }
      assert.ok(errChannel <= q.scales[c]! / 2 + 1e-6, `${type} column ${c}`);
      if (c < cols / 2) assert.ok(errChannel < errTensor, `${type} column ${c}: ${errChannel} vs per-tensor ${errTensor}`);
    }
    // The same channels along rows of the transposed matrix give the same numbers.
    const t = new Float32Array(values.length);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = values[r * cols + c]!;
    const qt = quantizeChannels(t, cols, rows, 0, type);
    assert.deepEqual([...qt.scales], [...q.scales]);
    assert.deepEqual([...qt.zeroPoints], [...q.zeroPoints]);
  }
});
