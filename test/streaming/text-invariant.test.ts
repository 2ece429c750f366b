// The streaming text invariant, as a property over many streams: for every turn, the concatenation
// of its partials' deltas (the realtime `…transcription.delta` texts) and every `committed` text
// (/v1/stream's) is a prefix of the turn's final transcript. Streams are built by fast-check from
// the shared real and synthetic English clips (whole or cut), noise bursts and pauses, pushed in
// random chunk sizes, with random partial intervals, token budgets, VAD on or off, and an English
// or a multilingual test model (random weights: the words are nonsense, which is what stresses the
// invariant: hypotheses change a lot between partials and the final).
// Seeded (EARSHOT_FC_SEED overrides the seed, EARSHOT_FC_RUNS the number of streams).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { decodeAudio } from '../../src/audio/index.ts';
import { type Whisper } from '../../src/runtime/loaded-model.ts';
import { loadWhisper, unloadAll } from '../../src/runtime/model-cache.ts';
import { StreamSession, type StreamEvent } from '../../src/streaming/stream-session.ts';
import { loadSileroVad, type SileroVad } from '../../src/vad/silero.ts';
import { manifest, SHARED_AUDIO } from '../audio/support.ts';
import { connect, s16le, wsUrl } from '../server/stream-client.ts';
import { isolateHome, startTestServer } from '../server/helpers.ts';
import { noise, SR } from './support.ts';

const SEED = Number(process.env.EARSHOT_FC_SEED ?? 14);
const RUNS = Number(process.env.EARSHOT_FC_RUNS ?? 24);

let english: Whisper;
let multilingual: Whisper;
let vad: SileroVad;
const clips: { name: string; samples: Float32Array }[] = [];

before(async () => {
  isolateHome();
  english = await loadWhisper(testModelDir({ preset: 'english' }), { engine: { intraOpThreads: 1 } });
  multilingual = await loadWhisper(testModelDir({ preset: 'multilingual' }), { engine: { intraOpThreads: 1 } });
  vad = await loadSileroVad();
  for (const folder of ['real-en', 'synth-en']) {
    for (const e of manifest(folder)) clips.push({ name: e.path, samples: (await decodeAudio(`${SHARED_AUDIO}${e.path}`)).samples });
  }
});
after(() => unloadAll());

/** One piece of a stream: (part of) a clip, a noise burst, and the pause after it. */
const piece = fc.record({
  clip: fc.nat(),
  /** Fractions of the clip kept: [from, to). */
  from: fc.double({ min: 0, max: 0.5, noNaN: true }),
  to: fc.double({ min: 0.6, max: 1, noNaN: true }),
  burst: fc.option(fc.double({ min: 0.05, max: 0.3, noNaN: true }), { freq: 4 }),
  pauseS: fc.double({ min: 0.1, max: 1.5, noNaN: true }),
});

const streamSpec = fc.record({
  pieces: fc.array(piece, { minLength: 1, maxLength: 3 }),
  multilingual: fc.boolean(),
  detect: fc.boolean(),
  vad: fc.boolean(),
  partialIntervalMs: fc.integer({ min: 100, max: 700 }),
  sampleLen: fc.integer({ min: 3, max: 24 }),
  chunkS: fc.double({ min: 0.02, max: 0.4, noNaN: true }),
  /** Wait for the model between chunks (a fast machine) or not (partials dropped, speculations withdrawn). */
  settle: fc.boolean(),
  /** Without VAD: commit after these pieces (the rest is committed by end()). */
  commitAfter: fc.nat(),
  maxUtteranceS: fc.integer({ min: 2, max: 30 }),
  noiseSeed: fc.nat(),
});
type Spec = typeof streamSpec extends fc.Arbitrary<infer T> ? T : never;

function audioOf(spec: Spec): Float32Array[] {
  return spec.pieces.map((p, i) => {
    const c = clips[p.clip % clips.length]!.samples;
    const speech = c.subarray(Math.floor(p.from * c.length), Math.floor(p.to * c.length));
    const burst = p.burst === null ? new Float32Array(0) : noise(Math.round(0.4 * SR), p.burst, spec.noiseSeed + i);
    const pause = noise(Math.round(p.pauseS * SR), 0.001, spec.noiseSeed + 100 + i);
    const out = new Float32Array(speech.length + burst.length + pause.length);
    out.set(speech);
    out.set(burst, speech.length);
    out.set(pause, speech.length + burst.length);
    return out;
  });
}

/** Asserts the invariant over one stream's events; returns how many turns had committed text. */
export function checkPrefixInvariant(events: StreamEvent[], context: string): number {
  const deltas = new Map<number, string>();
  const committed = new Map<number, string[]>();
  let withText = 0;
  for (const e of events) {
    assert.notEqual(e.type, 'error', `${context}: error event ${e.type === 'error' ? e.error.message : ''}`);
    if (e.type === 'partial') {
      deltas.set(e.item, (deltas.get(e.item) ?? '') + e.delta);
      committed.set(e.item, [...(committed.get(e.item) ?? []), e.committed]);
    } else if (e.type === 'final') {
      const all = deltas.get(e.item) ?? '';
      if (all !== '') withText++;
      assert.ok(e.text.startsWith(all), `${context}: item ${e.item}: deltas ${JSON.stringify(all)} are not a prefix of the final ${JSON.stringify(e.text)}`);
      for (const c of committed.get(e.item) ?? []) {
        assert.ok(e.text.startsWith(c), `${context}: item ${e.item}: committed ${JSON.stringify(c)} is not a prefix of the final ${JSON.stringify(e.text)}`);
      }
      // A partial after the final of its turn would be a turn going on after it was closed.
      deltas.set(e.item, '\u0000closed');
    }
  }
  return withText;
}

async function runStream(spec: Spec): Promise<StreamEvent[]> {
  const w = spec.multilingual ? multilingual : english;
  const events: StreamEvent[] = [];
  const s = new StreamSession(w, vad, (e) => events.push(e), {
    vad: spec.vad,
    partialIntervalMs: spec.partialIntervalMs,
    sampleLen: spec.sampleLen,
    maxUtteranceS: spec.maxUtteranceS,
    ...(spec.detect && spec.multilingual ? {} : { language: 'en' }),
  });
  const n = Math.max(1, Math.round(spec.chunkS * SR));
  const parts = audioOf(spec);
  for (const [i, part] of parts.entries()) {
    for (let at = 0; at < part.length; at += n) {
      s.push(part.subarray(at, at + n));
      for (let k = 0; k < 3; k++) await tick();
      while (spec.settle && w.queue.stats().running > 0) await new Promise((r) => setTimeout(r, 2));
    }
    if (!spec.vad && i === spec.commitAfter % parts.length && i < parts.length - 1) await s.commit().catch(() => undefined);
  }
  await s.end();
  return events;
}

test('property: every turn’s deltas and committed texts are prefixes of its final (session, many streams)', { timeout: 20 * 60_000 }, async () => {
  let turnsWithText = 0;
  await fc.assert(
    fc.asyncProperty(streamSpec, async (spec) => {
      const events = await runStream(spec);
      turnsWithText += checkPrefixInvariant(events, JSON.stringify(spec));
    }),
    { seed: SEED, numRuns: RUNS, endOnFailure: true },
  );
  // The property says something only if text was committed before finals.
  assert.ok(turnsWithText >= RUNS / 3, `only ${turnsWithText} turns had committed text before their final`);
});

test('property through /v1/stream: the committed text of every partial is a prefix of the next final', { timeout: 5 * 60_000 }, async () => {
  const server = await startTestServer({ model: testModelDir({ preset: 'english' }), sampleLen: 12, streamPartialIntervalMs: 200 });
  try {
    const c = await connect(wsUrl(server.url, '/v1/stream'));
    c.ws.send(JSON.stringify({ type: 'start', format: 's16le', sample_rate: 16000, language: 'en' }));
    await c.next('ready');
    const speech = clips.find((x) => x.name.endsWith('jfk.wav'))!.samples;
    const pause = noise(SR, 0.001, 3);
    // Twice the clip with a pause: several turns; each chunk waits for the server's model work.
    for (const part of [speech, pause, speech, pause]) {
      for (let at = 0; at < part.length; at += SR / 10) {
        c.ws.send(s16le(part.subarray(at, at + SR / 10)));
        await new Promise((r) => setTimeout(r, 30));
      }
    }
    c.ws.send(JSON.stringify({ type: 'end' }));
    await c.next('done', 120_000);
    let committed: string[] = [];
    let finals = 0;
    let withText = 0;
    for (const { msg } of c.received) {
      if (msg.type === 'partial') committed.push(msg.committed);
      else if (msg.type === 'final') {
        finals++;
        if (committed.some((x) => x !== '')) withText++;
        for (const x of committed) assert.ok(msg.text.startsWith(x), `committed ${JSON.stringify(x)} is not a prefix of the final ${JSON.stringify(msg.text)}`);
        committed = [];
      } else assert.notEqual(msg.type, 'error', JSON.stringify(msg));
    }
    assert.ok(finals >= 1 && withText >= 1, `${finals} finals, ${withText} with committed text before them`);
  } finally {
    await server.app.close();
  }
});
