// Partials at default settings (sampleLen 224, a partial every 500 ms): a partial's token budget
// follows its audio (stream-partials.ts), so on a tiny-dims test model (random weights: every decode
// runs to its budget, the worst case) an utterance longer than 2 s, streamed at real-time pace,
// gets partials before it ends. With the whole 224-token budget per partial, one partial outlasted
// the utterance and every other was dropped.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { type Whisper } from '../../src/runtime/loaded-model.ts';
import { loadWhisper, unloadAll } from '../../src/runtime/model-cache.ts';
import { StreamSession, type StreamEvent } from '../../src/streaming/stream-session.ts';
import { loadSileroVad, type SileroVad } from '../../src/vad/silero.ts';
import { clip, noise, SR } from './support.ts';

let w: Whisper;
let vad: SileroVad;

before(async () => {
  w = await loadWhisper(testModelDir({ preset: 'english', dims: 'tiny' }), { engine: { intraOpThreads: 1 } });
  vad = await loadSileroVad();
});
after(() => unloadAll());

/** Seconds one encoder run (a 30 s window, every partial's fixed cost) takes now: the median of three. */
async function encoderSeconds(): Promise<number> {
  const times: number[] = [];
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    await w.queue.run(async (runner) => runner.finish?.(await runner.encode(w.features.window(noise(SR, 0.1, k)), 1)));
    times.push((performance.now() - t0) / 1000);
  }
  return times.sort((a, b) => a - b)[1]!;
}

test('default settings, real-time pace: an utterance longer than 2 s gets partials before its end', { timeout: 300_000 }, async () => {
  // One clip (an utterance of about 2.3 s once the VAD has trimmed it), then 1.5 s of near-silence.
  const speech = await clip('goforward');
  const audio = new Float32Array(speech.length + 1.5 * SR);
  audio.set(speech);
  audio.set(noise(1.5 * SR, 0.001, 5), speech.length);
  // Real time on a reference machine, whatever this one's speed and load: the audio is paced so
  // that one encoder run takes 0.5 s of audio time, a third of the 1.5 s between the first partial
  // falling due (0.5 s into the utterance) and its end. A partial is an encoder run and its tokens:
  // on this model a 224-token decode costs about four encoder runs, a budget scaled to 0.5 s of
  // audio about a quarter of one.
  const pace = (await encoderSeconds()) / 0.5;
  const events: StreamEvent[] = [];
  const s = new StreamSession(w, vad, (e) => events.push(e), { language: 'en' });
  const start = performance.now();
  const chunk = SR / 10;
  for (let k = 0; k * chunk < audio.length; k++) {
    s.push(audio.subarray(k * chunk, (k + 1) * chunk));
    const wait = start + (k + 1) * 100 * pace - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await s.end();
  const finals = events.filter((e) => e.type === 'final');
  const long = finals.filter((f) => f.end - f.start > 2);
  assert.ok(long.length >= 1, `no utterance longer than 2 s: ${finals.map((f) => `[${f.start}, ${f.end}]`).join(' ')}`);
  for (const f of long) {
    const stopAt = events.findIndex((e) => e.type === 'speech_stopped' && e.item === f.item);
    const partials = events.slice(0, stopAt).filter((e) => e.type === 'partial' && e.item === f.item);
    assert.ok(partials.length >= 1, `item ${f.item} (${(f.end - f.start).toFixed(1)} s, pace ${pace.toFixed(2)}x real time): no partial before its end; ${s.stats.droppedPartials} dropped`);
  }
});
