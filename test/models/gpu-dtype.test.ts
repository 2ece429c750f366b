// The default dtype by device: a model that runs on a GPU (webgpu, cuda) with no --dtype asked loads
// its fp16 files where it has them; on the CPU, or for a model without fp16 files, the model's own
// default; a dtype asked for is kept everywhere. Each choice says why (the CLI and the startup log
// show it). Real test-model folders and the real catalogue; hub models offline, where the store
// names the files the choice needs in its error.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { defaultDtypeChoice, formatDtypeSpec } from '../../src/models/dtype.ts';
import { parseModelRef } from '../../src/models/model-ref.ts';
import { offersFp16, resolveModel } from '../../src/models/store.ts';

const home = mkdtempSync(join(tmpdir(), 'earshot-gpu-dtype-'));
after(() => rmSync(home, { recursive: true, force: true }));
const offline = { home, endpoint: 'http://127.0.0.1:9', offline: true };

test('the rule: fp16 on a GPU where the model offers it, else the model\'s default', () => {
  assert.deepEqual(defaultDtypeChoice('fp32', true, true).dtype, { encoder: 'fp16', decoder: 'fp16' });
  assert.match(defaultDtypeChoice('fp32', true, true).reason, /GPU default/);
  assert.deepEqual(defaultDtypeChoice('q8', false, true).dtype, { encoder: 'q8', decoder: 'q8' });
  assert.deepEqual(defaultDtypeChoice('q8', true, false).dtype, { encoder: 'q8', decoder: 'q8' });
  assert.match(defaultDtypeChoice('q8', true, false).reason, /no fp16 files/);
});

test('a local folder with fp16 files: fp16 on a GPU, the default on the CPU, fp32 when asked', async () => {
  const dir = testModelDir({ preset: 'english', dtypes: ['fp16'] });
  const gpu = await resolveModel(dir, { gpu: true, settings: offline });
  assert.equal(formatDtypeSpec(gpu.dtype), 'fp16');
  assert.equal(gpu.encoderPath, join(dir, 'onnx/encoder_model_fp16.onnx'));
  assert.equal(gpu.decoderPath, join(dir, 'onnx/decoder_model_merged_fp16.onnx'));
  assert.match(gpu.dtypeReason, /GPU default/);
  const cpu = await resolveModel(dir, { gpu: false, settings: offline });
  assert.equal(formatDtypeSpec(cpu.dtype), 'fp32');
  assert.equal(cpu.decoderPath, join(dir, 'onnx/decoder_model_merged.onnx'));
  assert.equal(cpu.dtypeReason, "the model's default");
  const asked = await resolveModel(dir, { gpu: true, dtype: 'fp32', settings: offline });
  assert.equal(formatDtypeSpec(asked.dtype), 'fp32');
  assert.equal(asked.dtypeReason, 'asked');
  const mixed = await resolveModel(dir, { gpu: true, dtype: 'decoder=fp16', settings: offline });
  assert.equal(formatDtypeSpec(mixed.dtype), 'encoder=fp32,decoder=fp16', 'a part asked: the rest is the model\'s own default');
});

test('a local folder without fp16 files keeps its default on a GPU, and says why', async () => {
  const dir = testModelDir({ preset: 'english' });
  assert.equal(offersFp16(parseModelRef(dir), dir), false);
  const gpu = await resolveModel(dir, { gpu: true, settings: offline });
  assert.equal(formatDtypeSpec(gpu.dtype), 'fp32');
  assert.match(gpu.dtypeReason, /no fp16 files/);
});

test('catalogue models: fp16 on a GPU where the repository holds it (offline, the store names the fp16 files)', async () => {
  assert.equal(offersFp16(parseModelRef('tiny.en'), home), true);
  assert.equal(offersFp16(parseModelRef('large-v3'), home), false, 'Xenova/whisper-large-v3 has no fp16 graphs');
  const missing = (spec: string, gpu: boolean) =>
    resolveModel(spec, { gpu, settings: offline }).then(
      () => assert.fail('offline with an empty cache: nothing to load'),
      (e: Error) => e.message,
    );
  assert.match(await missing('tiny.en', true), /encoder_model_fp16\.onnx.*--dtype fp16/);
  assert.match(await missing('tiny.en', false), /--dtype fp32/);
  assert.match(await missing('medium.en', false), /--dtype q8/, "medium's own default on the CPU");
  assert.match(await missing('medium.en', true), /--dtype fp16/);
  assert.match(await missing('large-v3', true), /--dtype q8/, 'no fp16: the default');
});
