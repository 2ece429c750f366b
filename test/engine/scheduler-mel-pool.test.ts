// The long-form log-mel in a worker thread: the same array as on the main thread, the event loop
// free meanwhile, typed errors carried back, and short inputs computed in place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogMelExtractor, whisperFeatureConfig } from '../../src/features/index.ts';
import { MelPool } from '../../src/features/mel-pool.ts';
import { isEarshotError } from '../../src/errors.ts';

function tone(seconds: number): Float32Array {
  const s = new Float32Array(seconds * 16000);
  for (let i = 0; i < s.length; i++) s[i] = 0.3 * Math.sin(i * 0.05) + 0.1 * Math.sin(i * 0.0131);
  return s;
}

test('the worker gives the main thread\'s long-form mel and leaves the event loop free', async () => {
  const extractor = new LogMelExtractor(whisperFeatureConfig(80));
  const pool = new MelPool(extractor, 16000);
  try {
    const samples = tone(40);
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 2);
    const mel = await pool.longForm(samples);
    clearInterval(timer);
    const local = extractor.longForm(samples);
    assert.equal(mel.nFrames, local.nFrames);
    assert.equal(mel.logMax, local.logMax);
    const frames = local.chunkFrames;
    for (const seek of [0, 3000]) assert.deepEqual(mel.window(seek, frames), local.window(seek, frames));
    assert.ok(ticks.length >= 2, `timers kept firing while the worker ran (${ticks.length})`);
    // Bad input: the typed error comes back from the worker.
    const bad = tone(2);
    bad[100] = Number.NaN;
    await assert.rejects(pool.longForm(bad), (e) => isEarshotError(e) && e.kind === 'invalid_audio');
    assert.equal(pool.pending, 0);
    // Below the threshold nothing is sent to the worker.
    const small = new MelPool(extractor);
    assert.deepEqual((await small.longForm(tone(1))).window(0), extractor.longForm(tone(1)).window(0));
    await small.close();
  } finally {
    await pool.close();
  }
});
