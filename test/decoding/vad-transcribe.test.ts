// vad_filter end to end on a built test model. Its random weights invent text on anything, which
// makes the point: without the filter, silence and noise come out as words; with it, nothing does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { loadWhisper } from '../../src/runtime/model-cache.ts';
import { loadSileroVad } from '../../src/vad/silero.ts';
import { detectSpeech } from '../../src/vad/endpointer.ts';
import { transcribeWithVadAll } from '../../src/decoding/vad-filter.ts';
import { noise, SR, withPauses } from '../streaming/support.ts';

const english = () => loadWhisper(testModelDir({ preset: 'english' }));
const quick = { temperature: 0, sampleLen: 12 };

test('30 s of silence and of low noise: empty transcript with vad_filter, invented text without', async () => {
  const w = await english();
  for (const [name, samples] of [
    ['silence', new Float32Array(30 * SR)],
    ['-40 dBFS noise', noise(30 * SR, 0.01, 5)],
  ] as const) {
    const filtered = await transcribeWithVadAll(w, samples, quick);
    assert.equal(filtered.text, '', name);
    assert.deepEqual(filtered.segments, [], name);
    assert.equal(filtered.duration, 30);
    if (name === 'silence') {
      const unfiltered = await transcribeWithVadAll(w, samples, { ...quick, vadFilter: false });
      assert.notEqual(unfiltered.text.trim(), '', 'the random model does invent text on silence');
    }
  }
});

test('speech between long pauses: every timestamp is inside a speech region, none in the pauses', async () => {
  const w = await english();
  const { samples, clips } = await withPauses(['harvard_spk1_snt1', 'goforward']);
  const regions = (await detectSpeech(await loadSileroVad(), samples)).map((r) => [r.start / SR, r.end / SR] as const);
  assert.equal(regions.length, 2);
  const result = await transcribeWithVadAll(w, samples, quick);
  assert.ok(result.segments.length > 0);
  assert.equal(result.duration, samples.length / SR);
  // A segment may run from one region into the next (the regions are decoded joined), but each of
  // its ends lies in a region, near a clip.
  const inRegion = (t: number): boolean => regions.some(([a, b]) => t >= a - 1e-9 && t <= b + 1e-9);
  const nearClip = (t: number): boolean => clips.some(([a, b]) => t >= a - 0.5 && t <= b + 0.8);
  for (const s of result.segments) {
    for (const t of [s.start, s.end]) {
      assert.ok(inRegion(t) && nearClip(t), `segment ${s.start}..${s.end}: ${t} is off the speech (${JSON.stringify(regions)})`);
    }
  }
});
