// The speech segmenter on hand-built probability sequences: each rule alone, the event timing of
// the streaming form, and random sequences against a plain offline implementation of the same
// rules written here as the oracle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FRAME_SAMPLES,
  type SpeechEvent,
  type SpeechRegion,
  SpeechSegmenter,
  type SpeechSegmentOptions,
  speechRegions,
} from '../../src/vad/speech-segments.ts';
import { isEarshotError } from '../../src/errors.ts';

const F = FRAME_SAMPLES;
/** Milliseconds of `n` frames (32 ms each). */
const ms = (n: number): number => (n * F * 1000) / 16000;

/** One frame per character: '#' speech (0.9), '.' silence (0.05), '~' in between the thresholds (0.4). */
function probs(pattern: string): number[] {
  const value: Record<string, number> = { '#': 0.9, '.': 0.05, '~': 0.4 };
  return [...pattern.replace(/ /g, '')].map((c) => value[c]!);
}

/** Regions in frames, from a pattern whose frames are all whole. */
function framesOf(pattern: string, options: SpeechSegmentOptions): [number, number][] {
  const p = probs(pattern);
  return speechRegions(p, p.length * F, options).map((r) => [r.start / F, r.end / F]);
}

const bare: SpeechSegmentOptions = { minSpeechMs: 0, minSilenceMs: 0, speechPadMs: 0 };

test('hysteresis: onset at the threshold, offset below negThreshold, in-between frames keep the state', () => {
  assert.deepEqual(framesOf('..~~~~..', bare), [], 'frames between the thresholds start nothing');
  assert.deepEqual(framesOf('..##~~~~##..', bare), [[2, 10]], 'they do not end speech either');
  assert.deepEqual(framesOf('..##.##..', bare), [[2, 4], [5, 7]], 'a frame below the offset does');
  // With 3 frames of silence needed, '~' after '.' continues the silence run: it ends at frame 5.
  assert.deepEqual(framesOf('#####.~~####', { ...bare, minSilenceMs: ms(3) }), [[0, 5], [8, 12]]);
  // A value exactly at the thresholds: onset is inclusive, the offset exclusive.
  const p = [0.05, 0.5, 0.5, 0.35, 0.35, 0.05, 0.05];
  assert.deepEqual(
    speechRegions(p, p.length * F, { ...bare, threshold: 0.5, negThreshold: 0.35 }).map((r) => [r.start / F, r.end / F]),
    [[1, 5]],
  );
});

test('min speech: shorter regions are dropped, regions of exactly that length kept', () => {
  const o = { ...bare, minSpeechMs: ms(3) };
  assert.deepEqual(framesOf('..##......', o), []);
  assert.deepEqual(framesOf('..###.....', o), [[2, 5]]);
  assert.deepEqual(framesOf('.#..###..##.', o), [[4, 7]]);
});

test('min silence: shorter pauses are bridged, longer ones split', () => {
  const o = { ...bare, minSilenceMs: ms(3) };
  assert.deepEqual(framesOf('###..###....', o), [[0, 8]]);
  assert.deepEqual(framesOf('###...###...', o), [[0, 3], [6, 9]]);
  // A region still in a short pause when the audio ends stops where the pause began.
  assert.deepEqual(framesOf('..####..', o), [[2, 6]]);
  assert.deepEqual(framesOf('..####', o), [[2, 6]]);
});

test('padding: both sides, clamped to the audio, a short gap shared half and half', () => {
  const o = { ...bare, speechPadMs: ms(2) };
  assert.deepEqual(framesOf('.......####.......', o), [[5, 13]]);
  assert.deepEqual(framesOf('.####..', o), [[0, 7]], 'clamped at both ends');
  // Gap of 2 frames < 2 pads (4 frames): each region takes 1 frame of it.
  assert.deepEqual(framesOf('......###..###......', o), [[4, 10], [10, 16]]);
  // Gap of exactly 2 pads: a full pad each.
  assert.deepEqual(framesOf('......###....###......', o), [[4, 11], [11, 18]]);
  assert.deepEqual(framesOf('......###.....###......', o), [[4, 11], [12, 19]]);
});

test('padding is measured on the samples, so a partial last frame clamps the end exactly', () => {
  const p = probs('...####');
  const total = 6 * F + 100;
  assert.deepEqual(speechRegions(p, total, { ...bare, speechPadMs: ms(2) }), [{ start: F, end: total }]);
  assert.throws(() => speechRegions(p, 6 * F, bare), isEarshotError, 'the frame count must fit the sample count');
});

test('max speech: a long region is cut at its quietest frame, and speech goes on from there', () => {
  const p = probs('#'.repeat(100));
  p[40] = 0.6;
  p[70] = 0.55;
  const maxSpeechS = (60 * F) / 16000;
  const r = speechRegions(p, p.length * F, { ...bare, maxSpeechS }).map((x) => [x.start / F, x.end / F]);
  // Over 60 frames at frame 60: cut at 40 (0.6 is the lowest so far); then [40..100] is 60 frames,
  // which is not over the limit.
  assert.deepEqual(r, [[0, 40], [40, 100]]);
  // Ties go to the latest frame: a flat region is cut as late as possible.
  const flat = speechRegions(probs('#'.repeat(130)), 130 * F, { ...bare, maxSpeechS }).map((x) => [x.start / F, x.end / F]);
  assert.deepEqual(flat, [[0, 60], [60, 120], [120, 130]]);
});

test('max speech: inside a pause the cut is where the pause began; padding counts toward the limit', () => {
  // The limit is passed at frame 60, three frames into a pause that began at 58: the region ends
  // at 58 (the quietest-frame rule would have cut at 60 and kept the pause as speech).
  const p = probs('#'.repeat(58) + '....' + '#'.repeat(30));
  const maxSpeechS = (60 * F) / 16000;
  const r = speechRegions(p, p.length * F, { ...bare, minSilenceMs: 1000, maxSpeechS }).map((x) => [x.start / F, x.end / F]);
  assert.deepEqual(r, [[0, 58], [62, 92]]);
  const padded = speechRegions(probs('.'.repeat(20) + '#'.repeat(200) + '.'.repeat(20)), 240 * F, {
    ...bare,
    speechPadMs: ms(5),
    maxSpeechS,
  });
  for (const x of padded) assert.ok(x.end - x.start <= 60 * F, `${x.start / F}..${x.end / F} is over the limit`);
  assert.equal(padded[0]!.start, 15 * F);
  assert.equal(padded[padded.length - 1]!.end, 225 * F);
  for (let i = 1; i < padded.length; i++) assert.equal(padded[i]!.start, padded[i - 1]!.end, 'cut regions stay contiguous');
});

test('streaming: starts are sent once min speech is sure, ends once min silence has passed', () => {
  const seg = new SpeechSegmenter({ minSpeechMs: ms(3), minSilenceMs: ms(5), speechPadMs: ms(1) });
  const p = probs('.'.repeat(10) + '#'.repeat(20) + '.'.repeat(20));
  const got: [number, SpeechEvent][] = [];
  p.forEach((x, i) => seg.push(x).forEach((e) => got.push([i, e])));
  assert.deepEqual(seg.finish(), []);
  assert.deepEqual(got, [
    [12, { type: 'speech-start', sample: 9 * F }],
    // Silence from frame 30; 5 frames of it are seen at frame 34; the pad needs 2 pads clear (frame 31).
    [34, { type: 'speech-end', sample: 31 * F }],
  ]);
});

test('streaming: an end waits for a region that may share its gap', () => {
  const o = { minSpeechMs: ms(3), minSilenceMs: ms(2), speechPadMs: ms(4) };
  const seg = new SpeechSegmenter(o);
  const p = probs('#'.repeat(10) + '..' + '#'.repeat(10) + '.'.repeat(12));
  const got: [number, SpeechEvent][] = [];
  const tentative: (number | null)[] = [];
  p.forEach((x, i) => {
    seg.push(x).forEach((e) => got.push([i, e]));
    tentative.push(seg.tentativeEnd);
  });
  // While the first end waits (frames 11-13), the tentative end is a full pad after the raw end;
  // the shared gap then moves it up to one pad earlier.
  assert.deepEqual(tentative.slice(11, 14), [14 * F, 14 * F, 14 * F]);
  // The first region closes at frame 11 (raw end 10), but the second starts at 12, closer than two
  // pads, and is sure at frame 14: only then is the first end known (the 2-frame gap split 1 / 1).
  // The second ends at 22; its end goes out once two pads (8 frames) of silence follow, at frame 29.
  assert.deepEqual(got, [
    [2, { type: 'speech-start', sample: 0 }],
    [14, { type: 'speech-end', sample: 11 * F }],
    [14, { type: 'speech-start', sample: 11 * F }],
    [29, { type: 'speech-end', sample: 26 * F }],
  ]);
  assert.throws(() => seg.push(2), isEarshotError, 'a probability outside [0, 1] is refused');
  seg.finish();
  assert.throws(() => seg.push(0.5), isEarshotError, 'nothing after finish');
});

test('streaming: the tentative end is known as soon as silence begins, and is where the end lands', () => {
  const seg = new SpeechSegmenter({ minSpeechMs: ms(3), minSilenceMs: ms(5), speechPadMs: ms(1) });
  // Speech, a short pause (bridged), speech, then silence for good.
  const p = probs('.'.repeat(4) + '#'.repeat(10) + '...' + '#'.repeat(6) + '.'.repeat(12));
  const tentative: (number | null)[] = [];
  let end: [number, number] | null = null;
  p.forEach((x, i) => {
    for (const e of seg.push(x)) if (e.type === 'speech-end') end = [i, e.sample];
    tentative.push(seg.tentativeEnd);
  });
  // Nothing before speech, nothing while it goes on.
  assert.ok(tentative.slice(0, 14).every((t) => t === null), tentative.slice(0, 14).join());
  // The pause (frames 14-16) gives a tentative end; speech resuming withdraws it.
  assert.deepEqual(tentative.slice(14, 17), [15 * F, 15 * F, 15 * F]);
  assert.ok(tentative.slice(17, 23).every((t) => t === null));
  // Final silence from frame 23: a tentative end at once, the confirmed one later, at the same sample.
  assert.equal(tentative[23], 24 * F);
  assert.ok(end !== null);
  const [at, sample] = end as [number, number];
  assert.equal(sample, 24 * F);
  assert.ok(at >= 27, `end confirmed at frame ${at}`);
  assert.ok(tentative.slice(23, at).every((t) => t === sample));
  assert.equal(tentative.at(-1), null, 'nothing pending after the end went out');
});

test('bad options are refused with a typed error', () => {
  for (const o of [
    { threshold: 0 },
    { threshold: 1.5 },
    { threshold: 0.3, negThreshold: 0.4 },
    { minSpeechMs: -1 },
    { minSilenceMs: NaN },
    { speechPadMs: Infinity },
    { maxSpeechS: 0 },
    { maxSpeechS: 0.5, speechPadMs: 300 },
  ]) {
    assert.throws(() => new SpeechSegmenter(o), isEarshotError, JSON.stringify(o));
  }
});

/** The same rules written as a plain offline pass (no max length), to check the incremental core. */
function oracle(p: number[], total: number, o: Required<Omit<SpeechSegmentOptions, 'maxSpeechS'>>): SpeechRegion[] {
  const minSpeech = Math.round((o.minSpeechMs * 16000) / 1000);
  const minSilence = Math.round((o.minSilenceMs * 16000) / 1000);
  const pad = Math.round((o.speechPadMs * 16000) / 1000);
  const raw: SpeechRegion[] = [];
  let i = 0;
  while (i < p.length) {
    if (p[i]! < o.threshold) {
      i++;
      continue;
    }
    const start = i * F;
    let end = total;
    let silence: number | null = null;
    let j = i + 1;
    for (; j < p.length; j++) {
      if (p[j]! >= o.threshold) silence = null;
      else if (p[j]! < o.negThreshold && silence === null) silence = j;
      if (silence !== null && Math.min(total, (j + 1) * F) - silence * F >= minSilence) break;
    }
    if (silence !== null) end = silence * F;
    if (end - start >= minSpeech) raw.push({ start, end });
    i = silence !== null && j < p.length ? j + 1 : p.length;
  }
  return raw.map((r, k) => {
    const prev = raw[k - 1];
    const next = raw[k + 1];
    const before = prev ? Math.min(pad, Math.floor((r.start - prev.end) / 2)) : pad;
    const after = next ? Math.min(pad, next.start - r.end - Math.min(pad, Math.floor((next.start - r.end) / 2))) : pad;
    return { start: Math.max(0, r.start - before), end: Math.min(total, r.end + after) };
  });
}

test('random sequences: the incremental core matches an offline pass of the same rules', () => {
  let seed = 12345;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  let regions = 0;
  let shared = 0;
  for (let trial = 0; trial < 300; trial++) {
    const n = 1 + Math.floor(rand() * 200);
    const p: number[] = [];
    let level = rand();
    for (let i = 0; i < n; i++) {
      if (rand() < 0.15) level = rand();
      p.push(Math.min(1, Math.max(0, level + (rand() - 0.5) * 0.3)));
    }
    const total = (n - 1) * F + 1 + Math.floor(rand() * F);
    const o = {
      threshold: 0.5,
      negThreshold: 0.35,
      minSpeechMs: ms(Math.floor(rand() * 6)),
      minSilenceMs: ms(Math.floor(rand() * 8)),
      speechPadMs: ms(Math.floor(rand() * 5)),
    };
    const got = speechRegions(p, total, o);
    assert.deepEqual(got, oracle(p, total, o), `trial ${trial}: ${JSON.stringify({ o, p: p.map((x) => +x.toFixed(2)), total })}`);
    regions += got.length;
    for (let i = 1; i < got.length; i++) if (got[i]!.start === got[i - 1]!.end) shared++;
  }
  assert.ok(regions > 300 && shared > 20, `the sequences exercise the rules (${regions} regions, ${shared} shared gaps)`);
});
