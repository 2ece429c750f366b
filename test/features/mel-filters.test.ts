// The computed Slaney mel filter banks against the banks Whisper ships: openai's mel_filters.npz
// (librosa output, 80 and 128 bands) and the `mel_filters` of whisper-tiny's preprocessor_config.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { melFilterBank, melSegments } from '../../src/features/mel-filters.ts';
import { fixtures, maxAbsDiff, readNpz } from './inputs.ts';

// The references are float32: allow a few float32 ulps of the largest weight (~0.025).
const TOLERANCE = 1e-8;

const npz = readNpz(new URL('openai-whisper-assets/mel_filters.npz', fixtures));

for (const nMels of [80, 128] as const) {
  test(`${nMels}-band bank matches openai's mel_${nMels}`, () => {
    const reference = npz.get(`mel_${nMels}`);
    assert.ok(reference, `mel_${nMels} in the npz`);
    assert.deepEqual(reference.shape, [nMels, 201]);
    const bank = melFilterBank(nMels, 400, 16000);
    assert.ok(maxAbsDiff(bank, reference.data) <= TOLERANCE, `max diff ${maxAbsDiff(bank, reference.data)}`);
  });
}

test("80-band bank matches whisper-tiny's preprocessor_config.json mel_filters", () => {
  const config = JSON.parse(
    readFileSync(new URL('whisper-tiny/preprocessor_config.json', fixtures), 'utf8'),
  ) as { mel_filters: number[][] };
  // transformers' file stores the bank as [n_mels][bins].
  assert.equal(config.mel_filters.length, 80);
  assert.equal(config.mel_filters[0].length, 201);
  const bank = melFilterBank(80, 400, 16000);
  assert.ok(maxAbsDiff(bank, config.mel_filters.flat()) <= TOLERANCE);
});

test('the segment form holds exactly the dense bank, each bin in at most two adjacent bands', () => {
  for (const nMels of [80, 128]) {
    const bank = melFilterBank(nMels, 400, 16000);
    const { end, rise, fall } = melSegments(nMels, 400, 16000);
    assert.equal(end.length, nMels + 1);
    assert.equal(end[nMels], 201);
    const rebuilt = new Float64Array(bank.length);
    for (let j = 0, k = 0; j <= nMels; j++) {
      for (; k < end[j]; k++) {
        if (j < nMels) rebuilt[j * 201 + k] = rise[k];
        else assert.equal(rise[k], 0);
        if (j > 0) rebuilt[(j - 1) * 201 + k] = fall[k];
        else assert.equal(fall[k], 0);
      }
    }
    assert.deepEqual(rebuilt, bank);
  }
});
