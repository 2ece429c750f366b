// The dtype spec parser and the dtype → file-name mapping, checked against transformers.js's own
// table and its own list of files for a Whisper model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isEarshotError } from '../../src/errors.ts';
import { DTYPES, DTYPE_SUFFIX, formatDtypeSpec, onnxFile, parseDtypeSpec } from '../../src/models/dtype.ts';
import { requiredFiles } from '../../src/models/model-files.ts';

const TJS = new URL('../../node_modules/@huggingface/transformers/', import.meta.url);

test('a single dtype applies to both graphs', () => {
  assert.deepEqual(parseDtypeSpec('q8'), { encoder: 'q8', decoder: 'q8' });
  assert.deepEqual(parseDtypeSpec(' fp16 '), { encoder: 'fp16', decoder: 'fp16' });
});

test('per-component specs, with a fallback for the component left out', () => {
  assert.deepEqual(parseDtypeSpec('encoder=fp32,decoder=q8'), { encoder: 'fp32', decoder: 'q8' });
  assert.deepEqual(parseDtypeSpec('decoder=q4, encoder=fp16'), { encoder: 'fp16', decoder: 'q4' });
  assert.deepEqual(parseDtypeSpec('decoder=int8', { encoder: 'fp32', decoder: 'fp32' }), { encoder: 'fp32', decoder: 'int8' });
});

test('bad specs are typed errors that say what is wrong', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty/],
    ['q3', /unknown dtype "q3"/],
    ['encoder=fp32,decoder=fp64', /unknown dtype "fp64"/],
    ['joiner=fp32', /unknown component "joiner"/],
    ['encoder=fp32,encoder=q8', /given twice/],
    ['encoder=fp32', /no dtype for decoder/],
    ['encoder=', /cannot read/],
    ['encoder=fp32=q8', /cannot read/],
  ];
  for (const [spec, why] of cases) {
    assert.throws(
      () => parseDtypeSpec(spec),
      (e: unknown) => isEarshotError(e) && e.kind === 'invalid_argument' && e.code === 'bad_dtype' && why.test(e.message),
      spec,
    );
  }
});

test('formatDtypeSpec round-trips through the parser', () => {
  for (const d of [{ encoder: 'q8', decoder: 'q8' }, { encoder: 'fp32', decoder: 'q4f16' }] as const) {
    assert.deepEqual(parseDtypeSpec(formatDtypeSpec(d)), d);
  }
  assert.equal(formatDtypeSpec({ encoder: 'q8', decoder: 'q8' }), 'q8');
});

test('file-name suffixes match transformers.js', async () => {
  const ref = await import(new URL('src/utils/dtypes.js', TJS).href);
  for (const d of DTYPES) assert.equal(DTYPE_SUFFIX[d], ref.DEFAULT_DTYPE_SUFFIX_MAPPING[d], d);
  assert.equal(onnxFile('decoder', 'q8'), 'onnx/decoder_model_merged_quantized.onnx');
});

test('graph and external-data files match what transformers.js would load for Whisper', async () => {
  const { ModelRegistry } = await import('@huggingface/transformers');
  const base = JSON.parse(readFileSync(new URL('../fixtures/whisper-tiny/config.json', import.meta.url), 'utf8'));
  const settings: unknown[] = [
    undefined,
    true,
    2,
    { 'encoder_model.onnx': 1 },
    { decoder_model_merged: 3 },
    { 'decoder_model_merged_q4.onnx': true, model: 2 },
    { encoder_model: 2 }, // not a key transformers.js reads for Whisper: no external data
  ];
  for (const ext of settings) {
    const config = { ...base, 'transformers.js_config': ext === undefined ? {} : { use_external_data_format: ext } };
    for (const [enc, dec] of [['fp32', 'fp32'], ['fp32', 'q4'], ['q8', 'fp16'], ['bnb4', 'uint8']] as const) {
      const ours = requiredFiles({ encoder: enc, decoder: dec }, config).filter((f) => f.startsWith('onnx/'));
      const theirs = (
        await ModelRegistry.get_model_files('x/y', { config, dtype: { model: enc, decoder_model_merged: dec } })
      ).filter((f: string) => f.startsWith('onnx/'));
      assert.deepEqual(ours.sort(), [...theirs].sort(), `${JSON.stringify(ext)} ${enc}/${dec}`);
    }
  }
});
