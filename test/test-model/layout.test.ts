// A built folder has the hub's layout, its JSON files are the real ones with our dimensions patched
// in, and its ONNX files declare the inputs and outputs a merged-decoder client expects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { isEarshotError } from '../../src/errors.ts';
import { buildTestModel, DTYPE_SUFFIX, resolveOptions } from '../../scripts/test-model/index.ts';
import { configFiles } from '../../scripts/test-model/configs.ts';
import { encode, HEAD_DIM, modelDir, session, SMALL } from './support.ts';

const fixtures = new URL('../fixtures/', import.meta.url).pathname;
const json = (dir: string, file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8'));

test('the folder holds the JSON files and one encoder + merged decoder per dtype under onnx/', () => {
  const dir = modelDir('multilingual');
  for (const f of ['config.json', 'generation_config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
    assert.ok(existsSync(join(dir, f)), f);
  }
  for (const suffix of Object.values(DTYPE_SUFFIX)) {
    assert.ok(existsSync(join(dir, `onnx/encoder_model${suffix}.onnx`)), `encoder${suffix}`);
    assert.ok(existsSync(join(dir, `onnx/decoder_model_merged${suffix}.onnx`)), `decoder${suffix}`);
  }
  assert.equal(
    readFileSync(join(dir, 'tokenizer.json'), 'utf8'),
    readFileSync(join(fixtures, 'whisper-tiny/tokenizer.json'), 'utf8'),
  );
});

test('config.json carries the builder dimensions and keeps the rest of the real file', () => {
  for (const [preset, fixture, vocab] of [
    ['english', 'whisper-tiny.en', 51864],
    ['multilingual', 'whisper-tiny', 51865],
  ] as const) {
    const config = json(modelDir(preset), 'config.json');
    const real = json(join(fixtures, fixture), 'config.json');
    assert.equal(config.d_model, SMALL.dModel);
    assert.equal(config.encoder_layers, SMALL.encoderLayers);
    assert.equal(config.decoder_layers, SMALL.decoderLayers);
    assert.equal(config.decoder_attention_heads, SMALL.heads);
    assert.equal(config.encoder_ffn_dim, SMALL.ffnDim);
    assert.equal(config.vocab_size, vocab);
    assert.equal(config.num_mel_bins, 80);
    assert.deepEqual(config.suppress_tokens, real.suppress_tokens);
    assert.equal(config.decoder_start_token_id, real.decoder_start_token_id);
    assert.equal(config.earshot_test_model.preset, preset);
  }
  const generation = json(modelDir('multilingual'), 'generation_config.json');
  for (const [layer, head] of generation.alignment_heads) {
    assert.ok(layer < SMALL.decoderLayers && head < SMALL.heads, `alignment head [${layer}, ${head}] out of range`);
  }
});

test('--dims tiny patches in the real whisper-tiny sizes', () => {
  const files = configFiles(resolveOptions({ preset: 'multilingual', dims: 'tiny' }), 'v');
  const config = JSON.parse(files.get('config.json')!);
  const real = json(join(fixtures, 'whisper-tiny'), 'config.json');
  for (const key of ['d_model', 'encoder_layers', 'decoder_layers', 'encoder_attention_heads', 'decoder_ffn_dim', 'vocab_size']) {
    assert.equal(config[key], real[key], key);
  }
  // Real alignment heads fit the real sizes and are kept.
  const realHeads = json(join(fixtures, 'whisper-tiny'), 'generation_config.json').alignment_heads;
  assert.deepEqual(JSON.parse(files.get('generation_config.json')!).alignment_heads, realHeads);
});

test('mel128: 128 mel bins, no 80-band filters, and an encoder that takes 128 bands', async () => {
  const dir = modelDir('mel128');
  assert.equal(json(dir, 'config.json').num_mel_bins, 128);
  const pre = json(dir, 'preprocessor_config.json');
  assert.equal(pre.feature_size, 128);
  assert.equal('mel_filters' in pre, false);
  assert.ok('mel_filters' in json(modelDir('multilingual'), 'preprocessor_config.json'));
  const enc = await session(dir, 'encoder');
  const meta = enc.inputMetadata.find((m) => m.name === 'input_features')!;
  assert.ok(meta.isTensor);
  assert.deepEqual(meta.shape, ['batch_size', 128, 3000]);
  assert.deepEqual((await encode(dir, 'mel128')).dims, [1, 1500, SMALL.dModel]);
});

test('the encoder maps [batch, 80, 3000] to [batch, 1500, d_model], batch items independently', async () => {
  const dir = modelDir('multilingual');
  const two = await encode(dir, 'multilingual', 'fp32', 2);
  assert.deepEqual(two.dims, [2, 1500, SMALL.dModel]);
  const one = await encode(dir, 'multilingual', 'fp32', 1);
  const a = one.data as Float32Array;
  const b = (two.data as Float32Array).subarray(0, a.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  assert.ok(max < 1e-4);
  assert.ok(a.every(Number.isFinite));
  // Final LayerNorm: each position's vector is (near) unit-variance, not exploding.
  let sq = 0;
  for (let i = 0; i < SMALL.dModel; i++) sq += a[i]! ** 2;
  assert.ok(sq / SMALL.dModel > 0.3 && sq / SMALL.dModel < 3);
});

test('the merged decoder declares the hub signature, with concrete heads and head size', async () => {
  const dec = await session(modelDir('multilingual'), 'decoder');
  const inputs = new Map(dec.inputMetadata.map((m) => [m.name, m]));
  const shapeOf = (m: ort.InferenceSession.ValueMetadata | undefined) => {
    assert.ok(m?.isTensor, `${m?.name}`);
    return { type: m.type, shape: m.shape };
  };
  assert.deepEqual(shapeOf(inputs.get('input_ids')), { type: 'int64', shape: ['batch_size', 'decoder_sequence_length'] });
  assert.deepEqual(shapeOf(inputs.get('use_cache_branch')), { type: 'bool', shape: [1] });
  assert.equal(shapeOf(inputs.get('encoder_hidden_states')).shape[2], SMALL.dModel);
  for (let l = 0; l < SMALL.decoderLayers; l++) {
    for (const kind of ['decoder', 'encoder']) {
      for (const kv of ['key', 'value']) {
        const { type, shape } = shapeOf(inputs.get(`past_key_values.${l}.${kind}.${kv}`));
        assert.equal(type, 'float32');
        assert.equal(shape[0], 'batch_size');
        assert.equal(typeof shape[2], 'string'); // the sequence dimension is symbolic: clients size it 0
        assert.deepEqual([shape[1], shape[3]], [SMALL.heads, HEAD_DIM]);
      }
    }
  }
  assert.equal(inputs.size, 3 + 4 * SMALL.decoderLayers);
  const outputs = dec.outputNames.slice().sort();
  const expected = ['logits'];
  for (let l = 0; l < SMALL.decoderLayers; l++) {
    for (const kind of ['decoder', 'encoder']) for (const kv of ['key', 'value']) expected.push(`present.${l}.${kind}.${kv}`);
  }
  assert.deepEqual(outputs, expected.sort());
});

test('the same seed gives byte-identical files; another seed gives other weights', () => {
  const root = mkdtempSync(join(tmpdir(), 'earshot-seed-'));
  try {
    for (const [name, seed] of [['a', 7], ['b', 7], ['c', 8]] as const) {
      buildTestModel({ preset: 'english', seed, outDir: join(root, name) });
    }
    const file = (name: string) => readFileSync(join(root, name, 'onnx/decoder_model_merged.onnx'));
    assert.ok(file('a').equals(file('b')));
    assert.ok(!file('a').equals(file('c')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('bad options are refused with a typed invalid_argument error', () => {
  for (const bad of [
    { preset: 'klingon' },
    { preset: 'english', dims: 'huge' },
    { preset: 'english', dtypes: ['int4'] },
    { preset: 'english', seed: -1 },
  ]) {
    assert.throws(
      () => resolveOptions(bad as never),
      (e: unknown) => isEarshotError(e) && e.kind === 'invalid_argument' && /unknown|seed/.test(e.message),
    );
  }
});
