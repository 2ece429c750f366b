// The table-based log10 against Math.log10 over the whole range the features use (1e-10 up).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { log10f } from '../../src/features/fast-log10.ts';
import { random } from './inputs.ts';

test('log10f agrees with Math.log10 of the float32-rounded value to 1e-9', () => {
  const next = random(3);
  const values = [1e-10, 1, 2, 10, 0.5, 1.9999999, 1.0000001, 3.4e38, 1.2e-38];
  for (let i = 0; i < 100000; i++) values.push(10 ** (next() * 24 - 12));
  let worst = 0;
  for (const v of values) {
    const exact = Math.log10(Math.fround(v));
    worst = Math.max(worst, Math.abs(log10f(v) - exact));
  }
  assert.ok(worst <= 1e-9, `max |diff| ${worst}`);
});
