// The web page's microphone downsampler (src/server/web/downsampler.js, plain JS for the
// AudioWorklet) against the server's resampler, which has the same specification: same output in
// 128-sample render quanta as one whole-signal call, and real anti-aliasing (a tone above 8 kHz is
// gone, one inside the speech band passes at full level).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resample } from '../../src/audio/resample.ts';
import { Downsampler } from '../../src/server/web/downsampler.js';

function noise(n: number, seed = 1): Float32Array {
  let s = seed;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 2 ** 31 - 1;
  }
  return x;
}

function tone(freq: number, rate: number, n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => 0.5 * Math.sin((2 * Math.PI * freq * i) / rate));
}

/** Feeds `x` in AudioWorklet-sized blocks and joins what comes out. */
function stream(x: Float32Array, from: number, block = 128): Float32Array {
  const d = new Downsampler(from, 16000);
  const parts: Float32Array[] = [];
  for (let at = 0; at < x.length; at += block) parts.push(d.push(x.subarray(at, at + block)));
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const rms = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);

for (const rate of [48000, 44100, 22050, 96000]) {
  test(`${rate} Hz to 16 kHz in 128-sample blocks equals the server resampler`, () => {
    const x = noise(rate); // one second
    const got = stream(x, rate);
    const want = resample(x, rate, 16000);
    // The stream holds back the last few ms (their taps reach past the input so far).
    assert.ok(got.length > 15800 && got.length <= want.length, `got ${got.length} of ${want.length}`);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    assert.ok(worst < 1e-5, `largest difference ${worst}`);
  });
}

test('block size does not change the output', () => {
  const x = noise(48000, 7);
  const a = stream(x, 48000, 128);
  const b = stream(x, 48000, 1000);
  assert.equal(a.length, b.length);
  assert.deepEqual(a, b);
});

test('a 12 kHz tone at 48 kHz is removed, a 1 kHz tone passes at its level', () => {
  const high = stream(tone(12000, 48000, 48000), 48000).subarray(1000);
  const low = stream(tone(1000, 48000, 48000), 48000).subarray(1000);
  const level = 0.5 / Math.SQRT2;
  assert.ok(20 * Math.log10(rms(high) / level) < -65, `12 kHz at ${20 * Math.log10(rms(high) / level)} dB`);
  assert.ok(Math.abs(20 * Math.log10(rms(low) / level)) < 0.05, `1 kHz at ${20 * Math.log10(rms(low) / level)} dB`);
});

test('equal rates pass through; bad rates are refused', () => {
  const x = noise(500);
  assert.deepEqual(new Downsampler(16000).push(x), x);
  assert.throws(() => new Downsampler(0), RangeError);
  assert.throws(() => new Downsampler(44100.5), RangeError);
});
