// Temperature fallback (transcribe.py's decode_with_fallback) on hand-built decode results: no
// reference implements it on our models, so each rule gets a case where it fires and one where not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WindowDecodeOptions, WindowDecodeResult } from '../../src/decoding/decode-window.ts';
import { decodeWithFallback, DEFAULT_TEMPERATURES, type FallbackThresholds } from '../../src/decoding/transcribe.ts';

const OPENAI: FallbackThresholds = { compressionRatio: 2.4, logprob: -1.0, noSpeech: 0.6 };

function result(t: number, r: Partial<WindowDecodeResult>): WindowDecodeResult {
  return { tokens: [1], text: 'x', sumLogprob: -0.5, avgLogprob: -0.3, noSpeechProb: 0.01, temperature: t, compressionRatio: 1.2, ...r };
}

/** A decoder whose results, per temperature, come from `byTemperature`; records the options it saw. */
function scripted(byTemperature: (t: number) => Partial<WindowDecodeResult>) {
  const calls: WindowDecodeOptions[] = [];
  const decode = async (o: WindowDecodeOptions) => {
    calls.push(o);
    return result(o.temperature!, byTemperature(o.temperature!));
  };
  return { decode, calls };
}

test('a confident first decode is kept: one call at temperature 0', async () => {
  const s = scripted(() => ({}));
  const r = await decodeWithFallback(s.decode, DEFAULT_TEMPERATURES, {}, OPENAI);
  assert.equal(r.temperature, 0);
  assert.equal(s.calls.length, 1);
});

test('a repetitive decode (compression ratio > 2.4) falls back until one is not', async () => {
  const s = scripted((t) => ({ compressionRatio: t < 0.5 ? 3.1 : 1.5 }));
  const r = await decodeWithFallback(s.decode, DEFAULT_TEMPERATURES, {}, OPENAI);
  assert.deepEqual(s.calls.map((c) => c.temperature), [0, 0.2, 0.4, 0.6]);
  assert.equal(r.temperature, 0.6);
});

test('compression ratio exactly at the threshold does not fall back', async () => {
  const s = scripted(() => ({ compressionRatio: 2.4 }));
  assert.equal((await decodeWithFallback(s.decode, DEFAULT_TEMPERATURES, {}, OPENAI)).temperature, 0);
});

test('an unsure decode (avg_logprob < -1) falls back; the last result is returned when all fail', async () => {
  const s = scripted(() => ({ avgLogprob: -1.5 }));
  const r = await decodeWithFallback(s.decode, DEFAULT_TEMPERATURES, {}, OPENAI);
  assert.equal(s.calls.length, DEFAULT_TEMPERATURES.length);
  assert.equal(r.temperature, 1.0);
});

test('silence (no_speech_prob > 0.6 with low logprob) stops the fallback at once', async () => {
  const s = scripted(() => ({ avgLogprob: -1.5, noSpeechProb: 0.9 }));
  await decodeWithFallback(s.decode, DEFAULT_TEMPERATURES, {}, OPENAI);
  assert.equal(s.calls.length, 1);
  // …but a repetitive one with a high no-speech probability and a good logprob still falls back
  const t = scripted((temp) => ({ compressionRatio: temp === 0 ? 3 : 1, noSpeechProb: 0.9, avgLogprob: -0.2 }));
  await decodeWithFallback(t.decode, DEFAULT_TEMPERATURES, {}, OPENAI);
  assert.equal(t.calls.length, 2);
});

test('null thresholds disable their rule', async () => {
  const s = scripted(() => ({ compressionRatio: 9, avgLogprob: -9 }));
  await decodeWithFallback(s.decode, DEFAULT_TEMPERATURES, {}, { compressionRatio: null, logprob: null, noSpeech: null });
  assert.equal(s.calls.length, 1);
});

test('beam search is used at temperature 0 only, best_of above it', async () => {
  const s = scripted((t) => ({ avgLogprob: t < 0.3 ? -2 : -0.1 }));
  await decodeWithFallback(s.decode, DEFAULT_TEMPERATURES, { beamSize: 5, patience: 2, bestOf: 5 }, OPENAI);
  assert.equal(s.calls[0]!.beamSize, 5);
  assert.equal(s.calls[0]!.patience, 2);
  assert.equal(s.calls[0]!.bestOf, undefined);
  for (const c of s.calls.slice(1)) {
    assert.equal(c.beamSize, undefined);
    assert.equal(c.patience, undefined);
    assert.equal(c.bestOf, 5);
  }
});
