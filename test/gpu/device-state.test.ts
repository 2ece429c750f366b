// Item 3 of issue 16: on WebGPU the model's state stays on the device. The encoder output and the
// K/V caches are kept there between runs (preferredOutputLocation 'gpu-buffer', see
// src/engine/device-tensors.ts), so a cached decoder step copies only its token ids in and its
// logits out, not the caches; and decoding gives the CPU's tokens, with one window, with beams
// (rows regathered on the device) and through the batching scheduler (rows of several windows
// gathered, an encoder batch cut, on the device). The counter is WhisperModel.transfers: bytes of
// host tensors fed to or fetched from each session.run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MERGED_FORMS, testModelDir } from '../../scripts/test-model/index.ts';
import { decodeWindow, type WindowDecodeOptions } from '../../src/decoding/decode-window.ts';
import { loadWhisperTokenizer } from '../../src/decoding/tokenizer.ts';
import { parseEngineOptions } from '../../src/engine/execution.ts';
import { BatchScheduler } from '../../src/engine/scheduler.ts';
import { WhisperModel } from '../../src/engine/whisper-model.ts';
import type { ModelRunner } from '../../src/engine/model-types.ts';
import { features } from '../engine/features.ts';

const GREEDY: WindowDecodeOptions = { language: 'en', withoutTimestamps: true, sampleLen: 6 };
const BEAMS: WindowDecodeOptions = { language: 'en', withoutTimestamps: true, sampleLen: 4, beamSize: 2 };

for (const merged of MERGED_FORMS) {
  test(`WebGPU (merged decoder: ${merged}) keeps the caches on the device: a step copies only ids and logits, tokens as on the CPU`, async () => {
    const dir = testModelDir({ preset: 'english', merged });
    const files = { encoder: join(dir, 'onnx/encoder_model.onnx'), decoder: join(dir, 'onnx/decoder_model_merged.onnx') };
    const tokenizer = await loadWhisperTokenizer(dir);
    const runs = async (model: WhisperModel) => {
      const one = (runner: ModelRunner, seed: number, opts: WindowDecodeOptions) =>
        runner.encode(features(model.dims.nMels, seed), 1).then(async (e) => (await decodeWindow(runner, tokenizer, e, opts)).tokens);
      const greedy = await one(model, 1, GREEDY);
      const g = { ...model.transfers.step };
      const greedyPerStep = (g.up + g.down) / g.runs;
      const beams = await one(model, 1, BEAMS);
      // Two windows at once through the scheduler: one encoder batch cut in two, prompt rows joined.
      const sched = new BatchScheduler(model, { maxBatch: 4 });
      const batched = await Promise.all([one(sched, 1, GREEDY), one(sched, 2, GREEDY)]);
      const step = model.transfers.step;
      return { tokens: { greedy, beams, batched }, greedyPerStep, perStep: (step.up + step.down) / step.runs, steps: step.runs };
    };
    const load = async (device: 'cpu' | 'webgpu', keepOnDevice?: boolean) => {
      const model = await WhisperModel.load(dir, files, parseEngineOptions({ device }), { keepOnDevice });
      try {
        return await runs(model);
      } finally {
        await model.release();
      }
    };
    const cpu = await load('cpu');
    const copied = await load('webgpu', false);
    const kept = await load('webgpu');
    assert.deepEqual(copied.tokens, cpu.tokens, 'WebGPU with host copies: tokens');
    assert.deepEqual(kept.tokens, cpu.tokens, 'WebGPU with the state on the device: tokens');
    assert.ok(kept.steps >= 10, `a few cached steps (${kept.steps})`);

    const { dModel, vocabSize, decoderLayers, nAudioCtx } = (await WhisperModel.load(dir, files, parseEngineOptions({ device: 'cpu' }))).dims;
    // One row's cross-attention K/V: what every step used to upload, per row, before anything else.
    const crossPerRow = decoderLayers * 2 * nAudioCtx * dModel * 4;
    assert.ok(copied.perStep > crossPerRow, `host copies: ${copied.perStep} bytes per step, more than one row's cross K/V (${crossPerRow})`);
    // Kept on the device: per row, the logits (4 bytes a token) and the token id in, nothing else
    // of size; a step has at most 4 rows here (two windows of two beams).
    const idsAndLogits = 4 * (vocabSize * 4 + 8) + 64;
    assert.ok(kept.perStep <= idsAndLogits, `on the device: ${kept.perStep} bytes per step, at most ids and logits (${idsAndLogits})`);
    // Greedy steps pick on the device: the token and the mask (a few hundred suppressed ids) go up,
    // six numbers per row come back; never a row of logits (${vocabSize * 4} bytes).
    assert.ok(kept.greedyPerStep < 4096, `greedy on the device: ${kept.greedyPerStep} bytes per step, less than 4 KiB`);
    assert.ok(copied.greedyPerStep > vocabSize * 4, `greedy via the host: ${copied.greedyPerStep} bytes per step, more than a row of logits`);
  });
}
