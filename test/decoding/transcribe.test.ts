// The long-form loop and the search variants on a built test model (random weights, so the
// assertions are about structure and openai's rules, not words).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { decodeAudio } from '../../src/audio/index.ts';
import { decodeWindow } from '../../src/decoding/decode-window.ts';
import { detectLanguage } from '../../src/decoding/detect-language.ts';
import { transcribe, transcribeAll } from '../../src/decoding/transcribe.ts';
import { loadWhisper } from '../../src/runtime/model-cache.ts';
import { isEarshotError } from '../../src/errors.ts';
import { JFK } from '../audio/support.ts';
import { random as mulberry32 } from '../features/inputs.ts';

const english = () => loadWhisper(testModelDir({ preset: 'english' }));
const multilingual = () => loadWhisper(testModelDir({ preset: 'multilingual' }));
const jfk = async () => (await decodeAudio(JFK)).samples;

test('beam search with one beam is greedy decoding', async () => {
  const w = await english();
  const encoded = await w.model.encode(w.features.window(await jfk()), 1);
  const greedy = await decodeWindow(w.model, w.tokenizer, encoded, { sampleLen: 24 });
  const beam = await decodeWindow(w.model, w.tokenizer, encoded, { sampleLen: 24, beamSize: 1 });
  assert.deepEqual(beam.tokens, greedy.tokens);
  assert.ok(Math.abs(beam.sumLogprob - greedy.sumLogprob) < 1e-4);
});

test('beam search keeps its best candidate at least as likely as the greedy path when lengths match', async () => {
  const w = await english();
  const encoded = await w.model.encode(w.features.window(await jfk()), 1);
  const greedy = await decodeWindow(w.model, w.tokenizer, encoded, { sampleLen: 12, withoutTimestamps: true });
  const beam = await decodeWindow(w.model, w.tokenizer, encoded, { sampleLen: 12, withoutTimestamps: true, beamSize: 4 });
  assert.equal(beam.tokens.length, greedy.tokens.length);
  assert.ok(beam.sumLogprob >= greedy.sumLogprob - 1e-4, `${beam.sumLogprob} < ${greedy.sumLogprob}`);
});

test('sampling is repeatable with a seeded source, and near-greedy at a tiny temperature', async () => {
  const w = await english();
  const encoded = await w.model.encode(w.features.window(await jfk()), 1);
  const opts = { sampleLen: 16, temperature: 1.0, bestOf: 3 };
  const a = await decodeWindow(w.model, w.tokenizer, encoded, { ...opts, random: mulberry32(7) });
  const b = await decodeWindow(w.model, w.tokenizer, encoded, { ...opts, random: mulberry32(7) });
  assert.deepEqual(a.tokens, b.tokens);
  assert.equal(a.temperature, 1.0);
  const greedy = await decodeWindow(w.model, w.tokenizer, encoded, { sampleLen: 16 });
  const cold = await decodeWindow(w.model, w.tokenizer, encoded, { sampleLen: 16, temperature: 1e-4, random: mulberry32(1) });
  assert.deepEqual(cold.tokens, greedy.tokens);
});

test('conflicting search options are refused with a typed error', async () => {
  const w = await english();
  const encoded = await w.model.encode(w.features.window(await jfk()), 1);
  await assert.rejects(decodeWindow(w.model, w.tokenizer, encoded, { beamSize: 2, temperature: 0.5 }), isEarshotError);
  await assert.rejects(decodeWindow(w.model, w.tokenizer, encoded, { beamSize: 0 }), isEarshotError);
});

test('language detection gives a distribution over the model\'s languages', async () => {
  const w = await multilingual();
  const encoded = await w.model.encode(w.features.window(await jfk()), 1);
  const d = await detectLanguage(w.model, w.tokenizer, encoded);
  const total = d.probabilities.reduce((s, p) => s + p.probability, 0);
  assert.ok(Math.abs(total - 1) < 1e-6);
  assert.equal(d.probabilities.length, w.tokenizer.languageTokens.size);
  assert.equal(d.probabilities[0]!.language, d.language);
  for (let i = 1; i < d.probabilities.length; i++) assert.ok(d.probabilities[i - 1]!.probability >= d.probabilities[i]!.probability);
  const run = await transcribe(w, await jfk(), { sampleLen: 4 });
  assert.equal(run.language, d.language, 'transcribe detects on the first window when no language is given');
});

test('an English-only model refuses another language', async () => {
  const w = await english();
  await assert.rejects(transcribe(w, await jfk(), { language: 'de' }), (e) => isEarshotError(e) && e.code === 'unsupported_language');
});

test('long-form without timestamps walks the audio in 30 s windows', async () => {
  const w = await english();
  const one = await jfk();
  const samples = new Float32Array(one.length * 6); // 66 s: windows at 0, 30 and 60 s
  for (let i = 0; i < 6; i++) samples.set(one, i * one.length);
  const progress: number[] = [];
  const r = await transcribeAll(w, samples, {
    withoutTimestamps: true,
    temperature: 0,
    sampleLen: 6,
    onProgress: (done) => progress.push(done),
  });
  assert.deepEqual(r.segments.map((s) => s.seek), [0, 3000, 6000]);
  assert.deepEqual(r.segments.map((s) => s.start), [0, 30, 60]);
  assert.deepEqual(r.segments.map((s) => s.id), [0, 1, 2]);
  assert.ok(Math.abs(r.segments[2]!.end - 66) < 0.02);
  assert.ok(Math.abs(r.duration - 66) < 1e-6);
  assert.deepEqual(progress, [30, 60, 66]);
  assert.equal(r.text, r.segments.map((s) => s.text).join(''));
});

test('long-form with timestamps: segments follow the seek rules', async () => {
  const w = await english();
  const one = await jfk();
  const samples = new Float32Array(one.length * 4);
  for (let i = 0; i < 4; i++) samples.set(one, i * one.length);
  const r = await transcribeAll(w, samples, { temperature: 0, sampleLen: 24, compressionRatioThreshold: null, logprobThreshold: null });
  assert.ok(r.segments.length >= 2);
  let previousSeek = -1;
  for (const s of r.segments) {
    assert.ok(s.seek >= previousSeek, 'windows only move forward');
    previousSeek = s.seek;
    assert.ok(s.start >= s.seek / 100 - 1e-9, 'a segment starts inside its window');
    assert.ok(s.end >= s.start);
    assert.ok(s.end <= s.seek / 100 + 30 + 1e-9, 'a segment ends inside its window');
    if (s.text !== '') {
      assert.ok(s.tokens[0]! >= w.tokenizer.timestampBegin, 'a timed segment opens with a timestamp token');
    }
  }
});

test('windows judged silent are skipped (no_speech_prob over the threshold and a low logprob)', async () => {
  const w = await english();
  const samples = await jfk();
  const base = { temperature: 0, sampleLen: 8, compressionRatioThreshold: null } as const;
  const kept = await transcribeAll(w, samples, { ...base, noSpeechThreshold: null });
  assert.ok(kept.segments.length > 0);
  // Random weights give avg_logprob far below -1, so a zero threshold marks the window silent.
  const skipped = await transcribeAll(w, samples, { ...base, noSpeechThreshold: 0, logprobThreshold: -1 });
  assert.equal(skipped.segments.length, 0);
  // With the logprob threshold below the window's logprob, the window is kept again.
  const rescued = await transcribeAll(w, samples, { ...base, noSpeechThreshold: 0, logprobThreshold: -1000 });
  assert.ok(rescued.segments.length > 0);
});

test('segment times never run past the end of the audio', async () => {
  const w = await english();
  const samples = (await jfk()).subarray(0, 16000 * 3);
  const r = await transcribeAll(w, samples, { temperature: 0, sampleLen: 24, compressionRatioThreshold: null, logprobThreshold: null, noSpeechThreshold: null });
  assert.ok(r.segments.length > 0);
  for (const s of r.segments) assert.ok(s.start <= 3 && s.end <= 3, `${s.start}–${s.end} on 3 s of audio`);
});
