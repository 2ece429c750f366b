// Issue 16, item 3: on WebGPU the encoder output and the K/V caches stay on the device, and
// onnxruntime-node frees such a buffer only when told to. earshot frees each one when its last
// holder lets go (src/engine/device-refs.ts), not when V8's collector gets to the small JavaScript
// object over it: a GPU's memory is invisible to the collector. So after greedy, beam-search,
// batched and withdrawn decodes the live device tensors are back to the idle count with no garbage
// collection in between (the test runner exposes none and nothing here forces one), and the
// collector's safety net freed nothing. Both ways a model is driven: a WhisperModel called directly,
// and the model worker with its batching scheduler (what the server and the CLI use).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { decodeWindow, type WindowDecodeOptions } from '../../src/decoding/decode-window.ts';
import { loadWhisperTokenizer, type WhisperTokenizer } from '../../src/decoding/tokenizer.ts';
import type { DeviceTensorStats } from '../../src/engine/device-refs.ts';
import { parseEngineOptions } from '../../src/engine/execution.ts';
import { RemoteRunner } from '../../src/engine/remote-runner.ts';
import { WhisperModel } from '../../src/engine/whisper-model.ts';
import type { ModelRunner } from '../../src/engine/model-types.ts';
import { features } from '../engine/features.ts';

const GREEDY: WindowDecodeOptions = { language: 'en', withoutTimestamps: true, sampleLen: 6 };
const BEAMS: WindowDecodeOptions = { language: 'en', withoutTimestamps: true, sampleLen: 4, beamSize: 2 };

const dir = testModelDir({ preset: 'english', merged: 'single' });
const files = { encoder: join(dir, 'onnx/encoder_model.onnx'), decoder: join(dir, 'onnx/decoder_model_merged.onnx') };

/** One window: encoded, decoded, and its encoder output finished, as transcribe.ts does. */
async function window(runner: ModelRunner, tok: WhisperTokenizer, seed: number, opts: WindowDecodeOptions): Promise<number[]> {
  const encoded = await runner.encode(features(runner.dims.nMels, seed), 1);
  try {
    return (await decodeWindow(runner, tok, encoded, opts)).tokens;
  } finally {
    runner.finish?.(encoded);
  }
}

/** `r`, except that the call that makes its `at`-th cached step also aborts `ctl` (a job withdrawn mid-window). */
function withdrawnAt(r: ModelRunner, ctl: AbortController, at: number): ModelRunner {
  let steps = 0;
  return {
    dims: r.dims,
    encode: (f, b) => r.encode(f, b),
    decode: (tokens, batch, encoded, cache, opts) => {
      const out = r.decode(tokens, batch, encoded, cache, opts);
      if (cache !== null && ++steps === at) ctl.abort(new Error('withdrawn'));
      return out;
    },
    selectRows: (c, rows) => r.selectRows(c, rows),
    finish: (h) => r.finish?.(h),
  };
}

/** Greedy, beams and a withdrawn window on `runner`; the tokens of the first two. */
async function work(runner: ModelRunner, withdrawable: (signal: AbortSignal) => ModelRunner, tok: WhisperTokenizer) {
  const greedy = await window(runner, tok, 1, GREEDY);
  const beams = await window(runner, tok, 2, BEAMS);
  const ctl = new AbortController();
  await assert.rejects(window(withdrawnAt(withdrawable(ctl.signal), ctl, 2), tok, 3, { ...GREEDY, signal: ctl.signal }), /withdrawn|cancelled/);
  return { greedy, beams };
}

function assertIdle(after: DeviceTensorStats, idle: DeviceTensorStats, what: string): void {
  assert.equal(after.live, idle.live, `${what}: device tensors back to the idle count without a GC (${JSON.stringify(after)})`);
  assert.equal(after.bytes, idle.bytes, `${what}: their bytes too`);
  assert.equal(after.gcFreed, 0, `${what}: none left for the garbage collector to free`);
}

test('WebGPU frees the encoder output and the caches when their holders are done, not at GC', async () => {
  const tok = await loadWhisperTokenizer(dir);

  // A WhisperModel called directly (beam rows are RowSelections gathered at the next step).
  const model = await WhisperModel.load(dir, files, parseEngineOptions({ device: 'webgpu' }));
  let direct: Awaited<ReturnType<typeof work>>;
  try {
    const idle = model.deviceTensors();
    const { nAudioCtx, dModel } = model.dims;
    const encoded = await model.encode(features(model.dims.nMels, 0), 1);
    const held = model.deviceTensors();
    assert.equal(held.live, idle.live + 1, 'an encoder output is one live device tensor');
    assert.equal(held.bytes - idle.bytes, nAudioCtx * dModel * 4, 'of its float32 bytes');
    model.finish(encoded);
    assert.equal(model.deviceTensors().live, idle.live, 'finished, it is freed at once');
    direct = await work(model, () => model, tok);
    assertIdle(model.deviceTensors(), idle, 'WhisperModel');
  } finally {
    await model.release();
  }

  // The model worker and its scheduler: a batched pair (one encoder run cut in two, prompt and
  // step rows of two windows joined) besides greedy, beams and a withdrawn call.
  const remote = await RemoteRunner.start({ dir, files, engine: parseEngineOptions({ device: 'webgpu' }), scheduler: { maxBatch: 4, maxEncodeBatch: 2, maxWaitMs: 50 } });
  try {
    const idle = (await remote.stats()).deviceTensors;
    const served = await work(remote, (signal) => remote.withPriority(0, { signal }), tok);
    assert.deepEqual(served, direct, 'the worker decodes as the model does (nothing freed under a run)');
    const pair = await Promise.all([window(remote, tok, 4, GREEDY), window(remote, tok, 5, GREEDY)]);
    assert.equal(pair.length, 2);
    const stats = await remote.stats();
    assert.ok(stats.rows.encode > stats.runs.encode, `an encoder run took both windows (${stats.runs.encode} runs, ${stats.rows.encode} rows)`);
    assert.equal(stats.handles, 0, 'the worker keeps no handles');
    assertIdle(stats.deviceTensors, idle, 'model worker');
  } finally {
    await remote.release();
  }
});
