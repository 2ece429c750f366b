// The file-mode VAD filter: how regions are laid out and joined, the mapping of joined-audio times
// back to the original time line, and transcription of regions on a built test model (random
// weights: the assertions are about which audio is decoded and where its timestamps land).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { decodeAudio } from '../../src/audio/index.ts';
import type { Segment } from '../../src/decoding/transcription.ts';
import { transcribeAll, type TranscriptionRun } from '../../src/decoding/transcribe.ts';
import { gatherSpeech, layoutSpeech, toSourceSegment, toSourceTime, transcribeSpeech } from '../../src/decoding/vad-filter.ts';
import { loadWhisper } from '../../src/runtime/model-cache.ts';
import { isEarshotError } from '../../src/errors.ts';
import { JFK } from '../audio/support.ts';

const SR = 16000;
const english = () => loadWhisper(testModelDir({ preset: 'english' }));
/** Greedy and short: enough to get segments out of a random model quickly. */
const quick = { temperature: 0, sampleLen: 12 };

async function gather(run: TranscriptionRun): Promise<Segment[]> {
  const out: Segment[] = [];
  for await (const s of run.segments) out.push(s);
  return out;
}

const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} ≠ ${b}`);

test('layout: regions one after another with a gap, touching regions joined, bad regions refused', () => {
  const l = layoutSpeech(
    [
      { start: 100, end: 200 },
      { start: 300, end: 400 },
      { start: 400, end: 500 },
      { start: 800, end: 900 },
    ],
    1000,
    50,
  );
  assert.deepEqual(l.pieces, [
    { sourceStart: 100, sourceEnd: 200, offset: 0 },
    { sourceStart: 300, sourceEnd: 500, offset: 150 },
    { sourceStart: 800, sourceEnd: 900, offset: 400 },
  ]);
  assert.equal(l.length, 500);
  assert.deepEqual(layoutSpeech([], 1000).pieces, []);
  for (const bad of [
    [{ start: 300, end: 400 }, { start: 100, end: 200 }],
    [{ start: 100, end: 300 }, { start: 200, end: 400 }],
    [{ start: 100, end: 100 }],
    [{ start: 900, end: 1001 }],
    [{ start: 0.5, end: 10 }],
  ]) {
    assert.throws(() => layoutSpeech(bad, 1000), isEarshotError, JSON.stringify(bad));
  }
});

test('gathered audio is the regions\' samples with zeros in the gaps', () => {
  const samples = Float32Array.from({ length: 1000 }, (_, i) => i + 1);
  const l = layoutSpeech([{ start: 10, end: 20 }, { start: 500, end: 505 }], samples.length, 3);
  const joined = gatherSpeech(samples, l);
  assert.deepEqual([...joined], [...samples.subarray(10, 20), 0, 0, 0, ...samples.subarray(500, 505)]);
});

test('time mapping: a shift inside pieces; gaps and seams go to the next piece for starts, the previous for ends', () => {
  // Pieces [1, 2) s, [5, 6) s (two touching regions), [10, 12) s; gaps of 0.1 s.
  const s = (x: number): number => Math.round(x * SR);
  const l = layoutSpeech(
    [
      { start: s(1), end: s(2) },
      { start: s(5), end: s(5.5) },
      { start: s(5.5), end: s(6) },
      { start: s(10), end: s(12) },
    ],
    s(13),
    s(0.1),
  );
  assert.equal(l.length, s(4.2));
  const cases: [number, 'start' | 'end', number][] = [
    [0, 'start', 1],
    [0, 'end', 1],
    [0.5, 'start', 1.5],
    [1.0, 'end', 2],
    [1.0, 'start', 5],
    [1.05, 'start', 5],
    [1.05, 'end', 2],
    [1.1, 'start', 5],
    [1.1, 'end', 2],
    [1.6, 'start', 5.5],
    [1.6, 'end', 5.5],
    [2.1, 'end', 6],
    [2.2, 'start', 10],
    [3.0, 'end', 10.8],
    [4.2, 'end', 12],
    [5.0, 'end', 12],
    [5.0, 'start', 12],
  ];
  for (const [t, edge, want] of cases) close(toSourceTime(l, t, edge), want, `${edge} ${t}`);

  // Without a gap the seam between pieces is one instant: a start there is the next piece's.
  const seam = layoutSpeech([{ start: s(1), end: s(2) }, { start: s(3), end: s(4) }], s(5), 0);
  close(toSourceTime(seam, 1, 'start'), 3, 'start on the seam');
  close(toSourceTime(seam, 1, 'end'), 2, 'end on the seam');
});

test('time mapping: random layouts map every point inside a piece back to where it came from', () => {
  let seed = 99;
  const rand = (n: number): number => {
    seed = (seed * 48271) % 2147483647;
    return seed % n;
  };
  for (let trial = 0; trial < 200; trial++) {
    const regions: { start: number; end: number }[] = [];
    let at = rand(5000);
    for (let k = rand(6); k >= 0; k--) {
      const start = at + (regions.length && rand(3) === 0 ? 0 : 1 + rand(40000));
      const end = start + 1 + rand(60000);
      regions.push({ start, end });
      at = end;
    }
    const l = layoutSpeech(regions, at + rand(1000), rand(4000));
    for (const p of l.pieces) {
      const inside = rand(p.sourceEnd - p.sourceStart);
      const joined = (p.offset + inside) / SR;
      for (const edge of ['start', 'end'] as const) close(toSourceTime(l, joined, edge), (p.sourceStart + inside) / SR, `trial ${trial}`);
      close(toSourceTime(l, (p.offset + p.sourceEnd - p.sourceStart) / SR, 'end'), p.sourceEnd / SR, `end of piece, trial ${trial}`);
    }
  }
});

test('a segment is moved to the original time line, its seek too', () => {
  const l = layoutSpeech([{ start: 3 * SR, end: 40 * SR }], 50 * SR);
  const seg: Segment = {
    id: 0,
    seek: 3000,
    start: 30.5,
    end: 36.02,
    text: ' x',
    tokens: [1],
    temperature: 0,
    avg_logprob: -1,
    compression_ratio: 1,
    no_speech_prob: 0,
  };
  const moved = toSourceSegment(l, seg);
  assert.deepEqual({ ...moved, start: 0, end: 0 }, { ...seg, seek: 3300, start: 0, end: 0 });
  close(moved.start, 33.5, 'start');
  close(moved.end, 39.02, 'end');
});

test('no speech: the transcript is empty, the duration is the file\'s, the options are still checked', async () => {
  const w = await english();
  const run = await transcribeSpeech(w, new Float32Array(30 * SR), [], quick);
  assert.deepEqual(await gather(run), []);
  assert.equal(run.duration, 30);
  assert.equal(run.language, 'en');
  await assert.rejects(transcribeSpeech(w, new Float32Array(SR), [], { language: 'fr' }), isEarshotError, 'options are still checked');
});

test('one region decodes exactly that audio, its timestamps shifted to where it sits', async () => {
  const w = await english();
  const samples = (await decodeAudio(JFK)).samples;
  const region = { start: 2 * SR + 320, end: 7 * SR };
  const alone = await transcribeAll(w, samples.slice(region.start, region.end), quick);
  const run = await transcribeSpeech(w, samples, [region], quick);
  const got = await gather(run);
  assert.equal(run.duration, samples.length / SR);
  assert.ok(alone.segments.length > 0, 'the random model says something');
  assert.equal(got.length, alone.segments.length);
  const a = region.start / SR;
  const b = region.end / SR;
  got.forEach((g, i) => {
    const e = alone.segments[i]!;
    assert.deepEqual(g.tokens, e.tokens);
    assert.equal(g.text, e.text);
    // Shifted, and held inside the region (a random model's timestamps run past its audio).
    close(g.start, Math.min(b, a + e.start), `segment ${i} start`);
    close(g.end, Math.min(b, a + e.end), `segment ${i} end`);
  });
});

test('several regions: every timestamp lands inside a region of the original', async () => {
  const w = await english();
  const samples = (await decodeAudio(JFK)).samples;
  const regions = [
    { start: 0.3 * SR, end: 2.1 * SR },
    { start: 3.5 * SR, end: 5 * SR },
    { start: 8 * SR, end: 10.6 * SR },
  ];
  const got = await gather(await transcribeSpeech(w, samples, regions, quick));
  assert.ok(got.length > 0);
  const inRegion = (t: number): boolean => regions.some((r) => t >= r.start / SR - 1e-9 && t <= r.end / SR + 1e-9);
  for (const s of got) {
    assert.ok(inRegion(s.start) && inRegion(s.end) && s.end >= s.start, `segment ${s.start}..${s.end}`);
  }
});
