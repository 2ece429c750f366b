// What the zero padding after a short clip may change, and what not: the language is detected on
// openai/whisper's input (the clip followed by 30 s of zero samples, then the log-mel), the first
// window is decoded on the zero-filled window as before, and no segment comes out empty in time
// while it carries text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { decodeAudio } from '../../src/audio/index.ts';
import { detectLanguage } from '../../src/decoding/detect-language.ts';
import { transcribeAll } from '../../src/decoding/transcribe.ts';
import type { ModelRunner } from '../../src/engine/whisper-model.ts';
import { loadWhisper } from '../../src/runtime/model-cache.ts';
import { JFK } from '../audio/support.ts';

const jfk = async () => (await decodeAudio(JFK)).samples;
const SAMPLES_30S = 30 * 16000;

/** `m` with every encoder input it is given copied into `seen` (the model still runs them). */
function recording(m: ModelRunner, seen: Float32Array[]): ModelRunner {
  return {
    dims: m.dims,
    encode: (features, batch) => {
      seen.push(features.slice());
      return m.encode(features, batch);
    },
    decode: (...a) => m.decode(...a),
    selectRows: (cache, rows) => m.selectRows(cache, rows),
    finish: (h) => m.finish?.(h),
  };
}

test('on a clip under 30 s the language is detected on the log-mel of the clip padded with zero samples, as openai', async () => {
  // Seed 2: a model whose choice differs between the two inputs on jfk.wav (checked below).
  const w = await loadWhisper(testModelDir({ preset: 'multilingual', seed: 2 }));
  const samples = await jfk();
  // openai's detection input, computed apart from the long-form path: 30 s of zero samples
  // appended, the log-mel of the first 30 s (the frames after them are silence, so the max, and the
  // clamp below it, are those of the whole padded file).
  const padded = new Float32Array(samples.length + SAMPLES_30S);
  padded.set(samples);
  const openaiInput = w.features.window(padded);
  const mel = w.features.longForm(samples);
  const zeroFilled = mel.window(0, mel.contentFrames);
  const openaiChoice = await detectLanguage(w.model, w.tokenizer, await w.model.encode(openaiInput, 1));
  const zeroFilledChoice = await detectLanguage(w.model, w.tokenizer, await w.model.encode(zeroFilled, 1));
  assert.notEqual(openaiChoice.language, zeroFilledChoice.language, 'this model tells the two inputs apart');

  const seen: Float32Array[] = [];
  const opts = { temperature: 0, sampleLen: 8, compressionRatioThreshold: null, logprobThreshold: null, noSpeechThreshold: null };
  const detected = await transcribeAll({ ...w, runner: recording(w.model, seen) }, samples, opts);
  assert.equal(detected.language, openaiChoice.language);
  assert.equal(detected.languageProbability, openaiChoice.probability);
  assert.deepEqual(seen[0], openaiInput, 'the detection input is openai\'s');

  // Decoding still reads the zero-filled window: the run is the one with that language given.
  assert.deepEqual(seen[1], zeroFilled, 'the first window is decoded on the zero-filled window');
  const given = await transcribeAll(w, samples, { ...opts, language: openaiChoice.language });
  assert.deepEqual(detected.segments, given.segments);
});

test('on a clip of 30 s or more the detection input is the first window, encoded once', async () => {
  const w = await loadWhisper(testModelDir({ preset: 'multilingual', seed: 2 }));
  const clip = await jfk();
  const samples = new Float32Array(SAMPLES_30S + 16000);
  for (let at = 0; at < samples.length; at += clip.length) samples.set(clip.subarray(0, Math.min(clip.length, samples.length - at)), at);
  const seen: Float32Array[] = [];
  const opts = { temperature: 0, sampleLen: 4, withoutTimestamps: true, compressionRatioThreshold: null, logprobThreshold: null, noSpeechThreshold: null };
  const detected = await transcribeAll({ ...w, runner: recording(w.model, seen) }, samples, opts);
  const first = w.features.longForm(samples).window(0, 3000);
  assert.deepEqual(seen[0], first);
  assert.equal(seen.length, 2, 'two windows, two encodings: the detection\'s is reused for the first');
  const openaiChoice = await detectLanguage(w.model, w.tokenizer, await w.model.encode(first, 1));
  assert.equal(detected.language, openaiChoice.language);
});
