// The incremental log-mel of a live utterance equals the whole-window log-mel of the same samples,
// bit for bit: real clips pushed in random chunkings (seeded), read at random lengths, at the
// lengths where the centred STFT's edge handling changes (shorter than the reflect padding, one
// frame, hop boundaries), and past the 30 s window; 80 and 128 mels. LogMelExtractor.window is
// itself checked against transformers.js in log-mel.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAudio } from '../../src/audio/index.ts';
import { EarshotError } from '../../src/errors.ts';
import { IncrementalLogMel, LogMelExtractor, whisperFeatureConfig } from '../../src/features/index.ts';
import { sharedAudio } from './inputs.ts';

const clips = await Promise.all(
  ['jfk', 'goforward', 'harvard_spk1_snt1', 'librispeech_1995-1837-0001'].map(async (n) => (await decodeAudio(new URL(`real-en/${n}.wav`, sharedAudio).pathname)).samples),
);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Asserts the two windows are the same floats; names the first difference. */
function sameWindow(ours: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(ours.length, expected.length, what);
  for (let i = 0; i < ours.length; i++) {
    if (ours[i] !== expected[i]) assert.fail(`${what}: value ${i} (mel ${Math.floor(i / 3000)}, frame ${i % 3000}) is ${ours[i]}, expected ${expected[i]}`);
  }
}

for (const nMels of [80, 128] as const) {
  const extractor = new LogMelExtractor(whisperFeatureConfig(nMels));

  test(`${nMels} mels: random chunkings of real clips, read as they grow and at random earlier lengths`, () => {
    const random = rng(nMels);
    for (const [k, clip] of clips.entries()) {
      const mel = new IncrementalLogMel(extractor);
      let reads = 0;
      for (let at = 0; at < clip.length; ) {
        // Chunks from 1 sample to 0.4 s, as a network delivers them.
        const n = 1 + Math.floor(random() ** 3 * 6400);
        mel.push(clip.subarray(at, at + n));
        at = Math.min(clip.length, at + n);
        if (random() < 0.15 || at === clip.length) {
          sameWindow(mel.window(), extractor.window(clip.subarray(0, at)), `clip ${k} at ${at}`);
          // A partial taken earlier and run now reads a shorter length than has arrived.
          const earlier = Math.floor(random() * at);
          sameWindow(mel.window(earlier), extractor.window(clip.subarray(0, earlier)), `clip ${k} at ${earlier} of ${at}`);
          reads++;
        }
      }
      assert.ok(reads >= 2, `clip ${k}: ${reads} reads`);
    }
  });
}

test('the lengths where the edge handling changes: shorter than the reflect padding, the first frames, hop boundaries', () => {
  const extractor = new LogMelExtractor(whisperFeatureConfig(80));
  const clip = clips[0]!.subarray(8000);
  const lengths = [0, 1, 150, 199, 200, 201, 202, 359, 360, 361, 400, 401, 519, 520, 521, 16000, 16159, 16160, 16161, 16200, 16201];
  // Pushed one sample at a time up to the longest of them, read at each.
  const mel = new IncrementalLogMel(extractor);
  for (let at = 0; at <= lengths.at(-1)!; at++) {
    if (lengths.includes(at)) sameWindow(mel.window(), extractor.window(clip.subarray(0, at)), `${at} samples`);
    mel.push(clip.subarray(at, at + 1));
  }
});

test('past the 30 s window: the audio beyond it is ignored, as window() ignores it', () => {
  const extractor = new LogMelExtractor(whisperFeatureConfig(80));
  const long = new Float32Array(31 * 16000);
  for (let at = 0, k = 0; at < long.length; k++) {
    const c = clips[k % clips.length]!.subarray(0, long.length - at);
    long.set(c, at);
    at += c.length;
  }
  const mel = new IncrementalLogMel(extractor);
  for (let at = 0; at < long.length; at += 4000) mel.push(long.subarray(at, at + 4000));
  assert.equal(mel.received, 30 * 16000);
  sameWindow(mel.window(long.length), extractor.window(long), 'a 31 s utterance');
  for (const length of [30 * 16000 - 161, 30 * 16000 - 40, 30 * 16000 - 1]) {
    sameWindow(mel.window(length), extractor.window(long.subarray(0, length)), `${length} samples`);
  }
});

test('asking for more audio than has arrived is refused', () => {
  const mel = new IncrementalLogMel(new LogMelExtractor(whisperFeatureConfig(80)));
  mel.push(clips[0]!.subarray(0, 1000));
  assert.throws(() => mel.window(1001), (e: unknown) => e instanceof EarshotError && e.code === 'bad_mel_length');
});
