// transcribe()'s resume options, which crash recovery relies on: a run started from a ResumePoint
// (startSeek + previousTokens) that an earlier run reported gives the same later segments as the
// run that never stopped. Built test model with random weights, temperature 0 (deterministic).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { decodeAudio } from '../../src/audio/index.ts';
import type { Segment } from '../../src/decoding/transcription.ts';
import { transcribe, transcribeAll, type ResumePoint, type TranscribeOptions } from '../../src/decoding/transcribe.ts';
import { loadWhisper } from '../../src/runtime/model-cache.ts';
import { isEarshotError } from '../../src/errors.ts';

const JFK = new URL('../../samples/jfk.wav', import.meta.url).pathname;

async function longClip(times: number): Promise<Float32Array> {
  const one = (await decodeAudio(JFK)).samples;
  const out = new Float32Array(one.length * times);
  for (let i = 0; i < times; i++) out.set(one, i * one.length);
  return out;
}

const strip = (segments: readonly Segment[]) => segments.map(({ id: _id, ...rest }) => rest);

test('a run resumed from a reported ResumePoint continues exactly as the uninterrupted run', async () => {
  const w = await loadWhisper(testModelDir({ preset: 'english' }));
  const samples = await longClip(7); // 77 s: three windows at least
  const base: TranscribeOptions = { temperature: 0, sampleLen: 6, initialPrompt: 'Ask not.' };
  const points: ResumePoint[] = [];
  const full = await transcribeAll(w, samples, { ...base, onProgress: (_d, _t, p) => points.push(p) });
  assert.ok(points.length >= 3, `expected several windows, got ${points.length}`);
  // Every point reports the seek where the next window's segments start.
  const seeks = [...new Set(full.segments.map((s) => s.seek))];
  for (const s of seeks.slice(1)) assert.ok(points.some((p) => p.seek === s), `window at ${s} has a resume point`);

  for (const k of [0, 1]) {
    const at = points[k]!;
    const expected = full.segments.filter((s) => s.seek >= at.seek);
    assert.ok(expected.length > 0);
    const run = await transcribe(w, samples, { ...base, startSeek: at.seek, previousTokens: at.previousTokens });
    const resumed: Segment[] = [];
    for await (const s of run.segments) resumed.push(s);
    assert.deepEqual(strip(resumed), strip(expected));
  }
});

test('previousTokens replaces initialPrompt, and startSeek must be a whole frame count', async () => {
  const w = await loadWhisper(testModelDir({ preset: 'english' }));
  const samples = await longClip(3);
  const opts: TranscribeOptions = { temperature: 0, sampleLen: 6 };
  const plain = await transcribeAll(w, samples, { ...opts, previousTokens: [] });
  const prompted = await transcribeAll(w, samples, { ...opts, initialPrompt: 'Ask not what your country can do for you.' });
  const overridden = await transcribeAll(w, samples, { ...opts, initialPrompt: 'Ask not what your country can do for you.', previousTokens: [] });
  assert.deepEqual(overridden.segments, plain.segments);
  assert.notDeepEqual(prompted.segments.map((s) => s.tokens), plain.segments.map((s) => s.tokens));
  for (const bad of [-1, 1.5, Number.NaN]) {
    await assert.rejects(transcribe(w, samples, { startSeek: bad }), (e) => isEarshotError(e) && e.code === 'bad_start_seek');
  }
  const past = await transcribeAll(w, samples, { ...opts, startSeek: 1_000_000 });
  assert.deepEqual(past.segments, [], 'a seek past the end decodes nothing');
});
