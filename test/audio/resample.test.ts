// The 16 kHz resampler: anti-aliasing quality on pure tones, lengths and timing, and agreement with
// a reference implementation (ffmpeg's soxr resampler) on real speech.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resample, StreamResampler } from '../../src/audio/index.ts';
import { SHARED_AUDIO, ffmpeg, ffmpegDecode, rms, sine, snrDb, correlation } from './support.ts';

const db = (ratio: number) => 20 * Math.log10(ratio);
/** Gain in dB of a `freq` tone taken from `from` to `to` Hz, ignoring filter start-up at the edges. */
function gainDb(freq: number, from: number, to = 16000): number {
  const x = sine(freq, from, 0.5);
  const y = resample(x, from, to);
  return db(rms(y, 400) / rms(x, 400));
}

test('48 kHz -> 16 kHz: a 7 kHz tone keeps its level within 0.5 dB', () => {
  assert.ok(Math.abs(gainDb(7000, 48000)) < 0.5, `gain ${gainDb(7000, 48000)} dB`);
});

test('48 kHz -> 16 kHz: a 9 kHz tone (would alias to 7 kHz) is attenuated by at least 40 dB', () => {
  assert.ok(gainDb(9000, 48000) < -40, `gain ${gainDb(9000, 48000)} dB`);
});

test('44.1 kHz -> 16 kHz: pass-band flat, 9 kHz and 12 kHz rejected', () => {
  for (const f of [300, 1000, 4000, 7000]) assert.ok(Math.abs(gainDb(f, 44100)) < 0.5, `${f} Hz`);
  for (const f of [9000, 12000, 20000]) assert.ok(gainDb(f, 44100) < -40, `${f} Hz: ${gainDb(f, 44100)} dB`);
});

test('8 kHz -> 16 kHz: a 3 kHz tone comes out as the same sine at 16 kHz (no image, no delay)', () => {
  const y = resample(sine(3000, 8000, 0.5), 8000, 16000);
  assert.equal(y.length, 8000);
  const expected = sine(3000, 16000, 0.5);
  // Away from the edges the interpolated signal matches the ideal one to better than -50 dB.
  const mid = (a: Float32Array) => a.subarray(800, 7200);
  assert.ok(snrDb(mid(expected), mid(y)) > 50, `SNR ${snrDb(mid(expected), mid(y))} dB`);
});

test('output length is ceil(n * to / from) and equal rates return the input', () => {
  assert.equal(resample(new Float32Array(48000), 48000, 16000).length, 16000);
  assert.equal(resample(new Float32Array(44101), 44100, 16000).length, 16001);
  assert.equal(resample(new Float32Array(11025), 22050, 16000).length, 8000);
  const x = new Float32Array(10);
  assert.equal(resample(x, 16000, 16000), x);
  assert.equal(resample(new Float32Array(0), 48000, 16000).length, 0);
});

test('a constant signal stays constant (unit DC gain in every filter phase), odd ratios included', () => {
  for (const from of [44100, 22050, 16001, 11025]) {
    const y = resample(new Float32Array(from).fill(0.25), from, 16000);
    for (let i = 200; i < y.length - 200; i++) assert.ok(Math.abs(y[i]! - 0.25) < 1e-4, `${from} Hz at ${i}: ${y[i]}`);
  }
});

test('bad rates are an invalid_argument error', () => {
  for (const [a, b] of [[0, 16000], [44100.5, 16000], [16000, -1]]) {
    assert.throws(() => resample(new Float32Array(4), a!, b!), { kind: 'invalid_argument', code: 'bad_sample_rate' });
  }
});

test('agrees with ffmpeg soxr (reference) on real speech, 48 kHz and 8 kHz to 16 kHz', () => {
  for (const file of ['formats/jfk__wav_s16_stereo_48k.wav', 'formats/jfk__wav_s16_8k.wav']) {
    const path = `${SHARED_AUDIO}${file}`;
    const ours = resample(ffmpegDecode(path), file.includes('48k') ? 48000 : 8000, 16000);
    const out = ffmpeg(['-i', path, '-ac', '1', '-af', 'aresample=resampler=soxr:precision=28', '-ar', '16000', '-f', 'f32le', 'pipe:1']);
    const ref = new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
    assert.ok(Math.abs(ref.length - ours.length) <= 2, `${file}: ${ref.length} vs ${ours.length}`);
    assert.ok(correlation(ref, ours) > 0.9999, `${file}: correlation ${correlation(ref, ours)}`);
    assert.ok(snrDb(ref, ours) > 40, `${file}: SNR ${snrDb(ref, ours)} dB`);
  }
});

test('StreamResampler fed in uneven chunks gives exactly the one-shot result', () => {
  const x = sine(440, 44100, 1).map((v, i) => v + 0.1 * Math.sin(i * 0.37));
  const whole = resample(x, 44100, 16000);
  for (const sizes of [[1, 7, 4096, 3], [30000], [13, 13, 13, 100000]]) {
    const r = new StreamResampler(44100, 16000);
    const parts: number[] = [];
    for (let at = 0, i = 0; at < x.length; i++) {
      const n = sizes[i % sizes.length]!;
      parts.push(...r.push(x.subarray(at, at + n)));
      at += n;
    }
    parts.push(...r.end());
    assert.equal(parts.length, whole.length);
    assert.deepEqual(Float32Array.from(parts), whole);
  }
  assert.throws(() => {
    const r = new StreamResampler(48000, 16000);
    r.end();
    r.push(new Float32Array(1));
  }, { code: 'resampler_ended' });
});
