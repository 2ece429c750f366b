// The merged decoder in optimum's form (`merged: 'if'`, what the hub's decoder_model_merged.onnx
// files are: an If on use_cache_branch over a cached and an uncached decoder sharing the weights)
// computes exactly what the one-graph form computes: every output, byte for byte, on the prompt
// and on cached steps, for every weight format and with cross-attention outputs; and its file
// holds the weights once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnxFileNames, testModelDir, type Dtype, type MergedForm } from '../../scripts/test-model/index.ts';
import { ALL_DTYPES, decode, features, pastFrom, readModel } from './support.ts';

const PROMPT = [
  [50258, 50259, 50359],
  [50258, 50260, 50359],
];
const STEPS = [
  [[440], [2068]],
  [[7051], [291]],
  [[1029], [440]],
];

const dirOf = (merged: MergedForm, timestamped = false) => testModelDir({ preset: 'multilingual', dtypes: ALL_DTYPES, timestamped, merged });

/** Every output of a prompt run and three cached steps, as bytes, by call and name. */
async function outputsOf(dir: string, dtype: Dtype): Promise<Map<string, Buffer>> {
  const files = onnxFileNames(dtype);
  const enc = await ort.InferenceSession.create(join(dir, files.encoder));
  const dec = await ort.InferenceSession.create(join(dir, files.decoder));
  try {
    const hidden = (await enc.run({ input_features: features(80, 2) })).last_hidden_state!;
    const seen = new Map<string, Buffer>();
    const keep = (call: number, out: ort.InferenceSession.OnnxValueMapType) => {
      for (const name of dec.outputNames) {
        const t = out[name] as ort.Tensor;
        const data = t.data as Float32Array;
        seen.set(`${call} ${name} [${t.dims}]`, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      }
    };
    const first = await decode(dec, PROMPT, hidden);
    keep(0, first);
    let out = first;
    for (const [i, tokens] of STEPS.entries()) {
      out = await decode(dec, tokens, hidden, pastFrom(out, first));
      keep(i + 1, out);
    }
    return seen;
  } finally {
    await Promise.all([enc.release(), dec.release()]);
  }
}

function assertSame(a: Map<string, Buffer>, b: Map<string, Buffer>, what: string): void {
  assert.deepEqual([...b.keys()], [...a.keys()], `${what}: the same outputs, shapes and order`);
  for (const [key, bytes] of a) assert.ok(bytes.equals(b.get(key)!), `${what}: ${key} differs`);
}

test('the If form gives the one-graph form\'s outputs byte for byte, prompt and cached steps, every dtype', async () => {
  const single = dirOf('single');
  const withIf = dirOf('if');
  for (const dtype of ALL_DTYPES) assertSame(await outputsOf(single, dtype), await outputsOf(withIf, dtype), dtype);
  // Cross-attention weights (word timestamps) too.
  assertSame(await outputsOf(dirOf('single', true), 'fp32'), await outputsOf(dirOf('if', true), 'fp32'), 'timestamped');
});

test('the If form is an If on use_cache_branch whose branches share one copy of the weights', () => {
  const file = onnxFileNames('fp32').decoder;
  const graph = readModel(dirOf('if'), file).graph!;
  const ifs = graph.node!.filter((n) => n.opType === 'If');
  assert.equal(ifs.length, 1);
  assert.deepEqual(ifs[0]!.input, ['use_cache_branch']);
  assert.deepEqual(ifs[0]!.attribute!.map((a) => a.name).sort(), ['else_branch', 'then_branch']);
  for (const a of ifs[0]!.attribute!) assert.equal(a.g!.initializer?.length ?? 0, 0, `${a.name} holds no weights of its own`);
  assert.equal(readModel(dirOf('single'), file).graph!.node!.some((n) => n.opType === 'If'), false);
  const size = (dir: string) => statSync(join(dir, file)).size;
  assert.ok(Math.abs(size(dirOf('if')) / size(dirOf('single')) - 1) < 0.01, 'about the one-graph file\'s size: the weights are there once');
});
