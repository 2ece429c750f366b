// Conformance of the log-mel front end with transformers.js's WhisperFeatureExtractor (max |diff|
// ≤ 1e-4), for 80 and 128 mels:
// - window(): jfk.wav (11 s, zero-padded to 30 s), a 45 s input (the reference cuts it to its first
//   30 s, and so does window()), and inputs shorter than the reflect padding.
// - longForm(): openai's transcribe.py mel of the whole 45 s file plus 30 s of zeros, which the
//   reference computes when asked for max_length = samples + 30 s; windows are then compared with
//   slices of it, zero-padded to 3000 frames as pad_or_trim does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogMelExtractor, parsePreprocessorConfig, whisperFeatureConfig } from '../../src/features/index.ts';
import { EarshotError } from '../../src/errors.ts';
import { decodeAudio } from '../../src/audio/index.ts';
import { longInput, maxAbsDiff, sharedAudio } from './inputs.ts';
import { preprocessorConfig, referenceFeatures } from './reference.ts';

const TOLERANCE = 1e-4;
const { samples: jfk } = await decodeAudio(new URL('real-en/jfk.wav', sharedAudio).pathname);
const long45 = longInput(jfk);

function isError(kind: string, code: string) {
  return (e: unknown) => e instanceof EarshotError && e.kind === kind && e.code === code;
}

for (const nMels of [80, 128] as const) {
  const config = preprocessorConfig(nMels);
  const extractor = new LogMelExtractor(parsePreprocessorConfig(config));

  test(`${nMels} mels: jfk.wav window matches WhisperFeatureExtractor`, async () => {
    const ours = extractor.window(jfk);
    assert.equal(ours.length, nMels * 3000);
    const diff = maxAbsDiff(ours, await referenceFeatures(config, jfk));
    assert.ok(diff <= TOLERANCE, `max |diff| ${diff}`);
  });

  test(`${nMels} mels: 45 s input, first 30 s window matches WhisperFeatureExtractor`, async () => {
    const diff = maxAbsDiff(extractor.window(long45), await referenceFeatures(config, long45));
    assert.ok(diff <= TOLERANCE, `max |diff| ${diff}`);
  });

  test(`${nMels} mels: long-form windows of a 45 s input match the reference's whole-file mel`, async () => {
    const mel = extractor.longForm(long45);
    const total = long45.length + 480000;
    const full = await referenceFeatures(config, long45, total);
    const nFrames = Math.floor(total / 160);
    assert.equal(full.length, nMels * nFrames);
    assert.equal(mel.nFrames, nFrames);
    assert.equal(mel.contentFrames, Math.floor(long45.length / 160));
    // A window at 0, one at an odd offset crossing the loud passage, and the last one, whose segment
    // stops at the end of the content like transcribe.py's segment_size = content_frames - seek.
    const lastSeek = mel.contentFrames - 1234;
    for (const [seek, segment] of [[0, 3000], [1777, 3000], [lastSeek, mel.contentFrames - lastSeek]]) {
      const expected = new Float32Array(nMels * 3000);
      for (let m = 0; m < nMels; m++) {
        expected.set(full.subarray(m * nFrames + seek, m * nFrames + seek + segment), m * 3000);
      }
      const diff = maxAbsDiff(mel.window(seek, segment), expected);
      assert.ok(diff <= TOLERANCE, `seek ${seek}: max |diff| ${diff}`);
    }
    // The whole file's max sets the clamp, so the first window differs from window()'s, whose max
    // is the first 30 s's only (the loud passage is at 36-38 s).
    assert.ok(maxAbsDiff(mel.window(0), extractor.window(long45)) > 0.1);
  });
}

test('for audio up to 30 s the first long-form window equals window()', () => {
  const extractor = new LogMelExtractor(whisperFeatureConfig(80));
  assert.deepEqual(extractor.longForm(jfk).window(0), extractor.window(jfk));
});

test('inputs shorter than the reflect padding, or empty, match the reference', async () => {
  const config = preprocessorConfig(80);
  const extractor = new LogMelExtractor(parsePreprocessorConfig(config));
  for (const length of [0, 150]) {
    const samples = jfk.slice(40000, 40000 + length);
    const diff = maxAbsDiff(extractor.window(samples), await referenceFeatures(config, samples));
    assert.ok(diff <= TOLERANCE, `${length} samples: max |diff| ${diff}`);
  }
});

test('very quiet audio, where the 1e-10 floor and not the max − 8 clamp decides, matches the reference', async () => {
  const config = preprocessorConfig(80);
  const extractor = new LogMelExtractor(parsePreprocessorConfig(config));
  const quiet = jfk.map((v) => v * 1e-5);
  const ours = extractor.window(quiet);
  const diff = maxAbsDiff(ours, await referenceFeatures(config, quiet));
  assert.ok(diff <= TOLERANCE, `max |diff| ${diff}`);
  // The floor shows: the smallest value is the one of log10(1e-10), above the max − 8 clamp.
  assert.ok(Math.abs(ours.reduce((a, b) => Math.min(a, b)) - (-10 + 4) / 4) < 1e-6);
  assert.deepEqual(extractor.longForm(quiet).window(0), ours);
});

test('a given output buffer is filled and returned, with the same result as a fresh one', () => {
  const extractor = new LogMelExtractor(whisperFeatureConfig(80));
  const out = new Float32Array(80 * 3000).fill(123);
  assert.equal(extractor.window(jfk, out), out);
  assert.deepEqual(out, extractor.window(jfk));
  const mel = extractor.longForm(jfk);
  const slice = new Float32Array(80 * 3000).fill(123);
  assert.equal(mel.window(100, 3000, slice), slice);
  assert.deepEqual(slice, mel.window(100));
  assert.throws(() => extractor.window(jfk, new Float32Array(10)), isError('invalid_argument', 'bad_output_buffer'));
});

test('non-finite samples anywhere in the audio are refused with a typed error', () => {
  const extractor = new LogMelExtractor(whisperFeatureConfig(80));
  const clip = jfk.slice(0, 16000);
  for (const bad of [NaN, Infinity, -Infinity, 3e38]) {
    for (const at of [0, 1, 1234, 8000, clip.length - 1]) {
      const samples = clip.slice();
      samples[at] = bad;
      assert.throws(() => extractor.window(samples), isError('invalid_audio', 'non_finite_samples'), `${bad} at ${at}`);
      assert.throws(() => extractor.longForm(samples), isError('invalid_audio', 'non_finite_samples'), `${bad} at ${at}`);
    }
  }
  // window() reads the first 30 s only, like the reference: a bad sample past it is never used,
  // while the long-form mel of the whole file still refuses it.
  const long = long45.slice();
  long[479999] = NaN;
  assert.throws(() => extractor.window(long), isError('invalid_audio', 'non_finite_samples'));
  long[479999] = 0;
  long[long.length - 1] = NaN;
  assert.equal(extractor.window(long).length, 80 * 3000);
  assert.throws(() => extractor.longForm(long), isError('invalid_audio', 'non_finite_samples'));
});

test('long-form slices outside the file are refused with typed errors', () => {
  const mel = new LogMelExtractor(whisperFeatureConfig(80)).longForm(jfk.slice(0, 16000));
  assert.throws(() => mel.window(-1), isError('invalid_argument', 'bad_seek'));
  assert.throws(() => mel.window(mel.nFrames + 1), isError('invalid_argument', 'bad_seek'));
  assert.throws(() => mel.window(1.5), isError('invalid_argument', 'bad_seek'));
  assert.throws(() => mel.window(0, 3001), isError('invalid_argument', 'bad_segment'));
  // Past the end of the file the window is zero-filled, as pad_or_trim pads.
  const tail = mel.window(mel.nFrames - 10);
  assert.equal(tail[9], mel.window(mel.nFrames - 10, 10)[9]);
  assert.equal(tail[10], 0);
  assert.notEqual(tail[9], 0);
});

test('unusable preprocessor configs are refused with a typed error', () => {
  for (const bad of [null, {}, { feature_size: 0 }, { feature_size: '80' }, { feature_size: 80, n_samples: 300 },
    { feature_size: 80, nb_max_frames: 2999 }]) {
    assert.throws(() => parsePreprocessorConfig(bad), isError('invalid_argument', 'bad_preprocessor_config'));
  }
  assert.throws(
    () => new LogMelExtractor(parsePreprocessorConfig({ feature_size: 80, n_fft: 402 })),
    isError('invalid_argument', 'unsupported_fft_size'),
  );
});
