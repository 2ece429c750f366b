// What the zero padding after a short clip may change, and what not: the language is detected on
// openai/whisper's input (the clip followed by 30 s of zero samples, then the log-mel), the first
// window is decoded on the zero-filled window as before, and no segment comes out empty in time
// while it carries text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { decodeAudio } from '../../src/audio/index.ts';
import { detectLanguage } from '../../src/decoding/detect-language.ts';
import { fitToAudio, type UnnumberedSegment } from '../../src/decoding/segment-times.ts';
import { transcribeAll } from '../../src/decoding/transcribe.ts';
import type { ModelRunner } from '../../src/engine/model-types.ts';
import { render } from '../../src/output/formats.ts';
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

test('a segment the model timed in the padding is joined to the one before it: no SRT cue is empty in time', async () => {
  // On jfk.wav (11 s) this model's second segment starts in the padding: before the rule it came
  // out as `00:00:11,000 --> 00:00:11,000` with its text.
  const w = await loadWhisper(testModelDir({ preset: 'english' }));
  const samples = await jfk();
  const duration = samples.length / 16000;
  const r = await transcribeAll(w, samples, { temperature: 0, sampleLen: 24, compressionRatioThreshold: null, logprobThreshold: null, noSpeechThreshold: null });
  const tokens = r.segments.flatMap((s) => s.tokens);
  const tsBegin = w.tokenizer.timestampBegin;
  const pastEnd = tokens.filter((t) => t >= tsBegin && (t - tsBegin) * 0.02 > duration);
  assert.ok(pastEnd.length > 0, 'the model placed timestamps past the end of the audio');
  for (const s of r.segments) {
    assert.ok(s.start >= 0 && s.end <= duration, `${s.start}–${s.end} lies within ${duration} s`);
    if (s.text.trim() !== '') assert.ok(s.end > s.start, `segment ${s.id} "${s.text}" spans ${s.start}–${s.end}`);
  }
  assert.deepEqual(r.segments.map((s) => s.id), r.segments.map((_, i) => i), 'ids stay consecutive');
  assert.equal(r.text, w.tokenizer.decode(tokens.filter((t) => t < w.tokenizer.eot)), 'no text is lost');
  for (const [, from, to] of render(r, 'srt').matchAll(/^(\S+) --> (\S+)$/gm)) assert.notEqual(from, to, `cue ${from} --> ${to}`);
});

const seg = (start: number, end: number, text: string, words?: [number, number][]): UnnumberedSegment => ({
  seek: 0,
  start,
  end,
  text,
  tokens: [text.length],
  temperature: 0,
  avg_logprob: -1,
  compression_ratio: 1,
  no_speech_prob: 0,
  ...(words ? { words: words.map(([a, b], i) => ({ word: ` w${i}`, start: a, end: b })) } : {}),
});

test('the segment-time rule: clamp to the audio, join a segment past the end to the one before, else start it at its window', () => {
  // Inside the audio: untouched; across the end: clamped.
  assert.deepEqual(fitToAudio([seg(1, 2, ' a'), seg(2, 3.4, ' b')], 0, 3), [seg(1, 2, ' a'), { ...seg(2, 3, ' b'), tokens: [2] }]);
  // Past the end, after another: joined, words and all, the joined one ending at the end.
  const joined = fitToAudio([seg(1, 2, ' a', [[1, 2]]), seg(3.2, 3.6, ' b', [[3.2, 3.6]])], 0, 3);
  assert.equal(joined.length, 1);
  assert.deepEqual([joined[0]!.start, joined[0]!.end, joined[0]!.text, joined[0]!.tokens], [1, 3, ' a b', [2, 2]]);
  assert.deepEqual(joined[0]!.words!.map((w) => [w.start, w.end]), [[1, 2], [3, 3]]);
  // Past the end and first in its window: it starts where the window starts.
  const alone = fitToAudio([seg(20.5, 21, ' c'), seg(21, 22, ' d')], 19.8, 20.2);
  assert.deepEqual(alone.map((s) => [s.start, s.end, s.text]), [[19.8, 20.2, ' c d']]);
});
