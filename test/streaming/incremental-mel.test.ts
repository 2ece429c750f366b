// A stream's partials, speculations and finals read their utterance's incremental log-mel: the
// encoder input each one gets is, bit for bit, the whole-window log-mel (LogMelExtractor.window)
// of the utterance's audio from its start to the length the decode covers, so the tokens are those
// of the whole-window front end. Real speech with pauses through the real VAD and a test model; the
// incremental mel's push and window are wrapped to record what each decode read (they still run).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { IncrementalLogMel } from '../../src/features/index.ts';
import { type Whisper } from '../../src/runtime/loaded-model.ts';
import { loadWhisper, unloadAll } from '../../src/runtime/model-cache.ts';
import { StreamSession, type StreamEvent } from '../../src/streaming/stream-session.ts';
import { loadSileroVad, type SileroVad } from '../../src/vad/silero.ts';
import { SR, withPauses, type Joined } from './support.ts';

let w: Whisper;
let vad: SileroVad;
let speech: Joined;

before(async () => {
  w = await loadWhisper(testModelDir({ preset: 'english' }), { engine: { intraOpThreads: 1 } });
  vad = await loadSileroVad();
  speech = await withPauses(['goforward', 'harvard_spk1_snt1', 'jfk'], 2);
});
after(() => unloadAll());

interface Recorded {
  /** The audio pushed into it, in order. */
  audio: number[];
  /** Each read: its length and the features returned. */
  reads: { length: number; features: Float32Array }[];
}

test('every partial and final of a stream is decoded from the whole-window log-mel of its audio', async () => {
  // Record, per IncrementalLogMel (one per utterance, in the order they are opened), its audio and reads.
  const mels: Recorded[] = [];
  const seen = new WeakMap<object, Recorded>();
  const proto = IncrementalLogMel.prototype;
  const { push, window } = proto;
  const record = (mel: object): Recorded => {
    let r = seen.get(mel);
    if (!r) {
      r = { audio: [], reads: [] };
      seen.set(mel, r);
      mels.push(r);
    }
    return r;
  };
  proto.push = function (this: IncrementalLogMel, chunk: Float32Array) {
    record(this).audio.push(...chunk);
    return push.call(this, chunk);
  };
  proto.window = function (this: IncrementalLogMel, length?: number, out?: Float32Array) {
    const features = window.call(this, length, out);
    record(this).reads.push({ length: length ?? this.received, features });
    return features;
  };
  const events: StreamEvent[] = [];
  try {
    const s = new StreamSession(w, vad, (e) => events.push(e), { sampleLen: 4, partialIntervalMs: 300 });
    const n = SR / 10;
    for (let at = 0; at < speech.samples.length; at += n) {
      s.push(speech.samples.subarray(at, at + n));
      for (let i = 0; i < 5; i++) await tick();
      while (w.queue.stats().running > 0) await new Promise((r) => setTimeout(r, 2));
    }
    await s.end();
    assert.deepEqual(s.stats.finals, events.filter((e) => e.type === 'final').length);
    const starts = events.filter((e) => e.type === 'speech_started');
    assert.ok(starts.length >= 3, `${starts.length} utterances`);
    assert.equal(mels.length, starts.length, 'one incremental mel per utterance');
    // Each decoded partial and final read the mel once (a final may come from its speculation, and
    // a withdrawn speculation read it too).
    const reads = mels.reduce((a, m) => a + m.reads.length, 0);
    assert.ok(s.stats.partials > 0);
    assert.ok(reads >= s.stats.partials + s.stats.finals - s.stats.speculated, `${reads} reads`);
    for (const [k, m] of mels.entries()) {
      const e = starts[k]!;
      // The utterance's audio, from its start on the stream's time line.
      const start = Math.round((e as { start: number }).start * SR);
      assert.deepEqual(Float32Array.from(m.audio), speech.samples.subarray(start, start + m.audio.length), `utterance ${k}: its audio`);
      for (const r of m.reads) {
        const expected = w.features.window(speech.samples.subarray(start, start + r.length));
        assert.deepEqual(r.features, expected, `utterance ${k}: the features of its first ${r.length} samples`);
      }
    }
  } finally {
    proto.push = push;
    proto.window = window;
  }
});
