// The hand-written real FFT against a direct DFT, computed in double precision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RealPowerSpectrum } from '../../src/features/fft.ts';
import { EarshotError } from '../../src/errors.ts';
import { random } from './inputs.ts';

function directPower(x: Float32Array, window: Float64Array): Float64Array {
  const n = x.length;
  const out = new Float64Array(n / 2 + 1);
  for (let k = 0; k <= n / 2; k++) {
    let re = 0;
    let im = 0;
    for (let j = 0; j < n; j++) {
      const v = x[j] * window[j];
      re += v * Math.cos((2 * Math.PI * k * j) / n);
      im -= v * Math.sin((2 * Math.PI * k * j) / n);
    }
    out[k] = re * re + im * im;
  }
  return out;
}

for (const size of [400, 200, 160, 80, 50, 16, 10, 4, 2]) {
  test(`|FFT|² of a windowed real frame of ${size} matches the direct DFT`, () => {
    const next = random(size);
    const x = Float32Array.from({ length: size + 3 }, () => next() * 2 - 1);
    const window = Float64Array.from({ length: size }, () => next());
    const fft = new RealPowerSpectrum(window);
    assert.equal(fft.bins, size / 2 + 1);
    const power = new Float64Array(fft.bins);
    fft.compute(x, 3, power);
    const expected = directPower(x.subarray(3), window);
    for (let k = 0; k < fft.bins; k++) {
      assert.ok(Math.abs(power[k] - expected[k]) <= 1e-9 * (1 + expected[k]), `bin ${k}: ${power[k]} vs ${expected[k]}`);
    }
  });
}

test('the plan can be reused: a second frame does not see the first', () => {
  const fft = new RealPowerSpectrum(new Float64Array(400).fill(1));
  const next = random(1);
  const a = Float32Array.from({ length: 400 }, () => next());
  const b = Float32Array.from({ length: 400 }, () => next());
  const first = new Float64Array(201);
  const again = new Float64Array(201);
  fft.compute(a, 0, first);
  fft.compute(b, 0, again);
  fft.compute(a, 0, again);
  assert.deepEqual(again, first);
});

test('sizes the plan cannot factor are refused with a typed error', () => {
  for (const size of [0, 7, 402, 398]) {
    assert.throws(
      () => new RealPowerSpectrum(new Float64Array(size)),
      (e: unknown) => e instanceof EarshotError && e.kind === 'invalid_argument' && e.code === 'unsupported_fft_size',
    );
  }
});
