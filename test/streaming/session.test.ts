// StreamSession without a server: real speech (the shared English clips with pauses) pushed faster
// than real time through the real VAD and a test model (random weights: structure, not words).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { type Whisper } from '../../src/runtime/loaded-model.ts';
import { loadWhisper, unloadAll } from '../../src/runtime/model-cache.ts';
import { StreamSession, type StreamEvent, type StreamSessionOptions } from '../../src/streaming/stream-session.ts';
import { loadSileroVad, type SileroVad } from '../../src/vad/silero.ts';
import { noise, SR, withPauses, type Joined } from './support.ts';

let w: Whisper;
let vad: SileroVad;
let speech: Joined;

before(async () => {
  w = await loadWhisper(testModelDir({ preset: 'english' }), { engine: { intraOpThreads: 1 } });
  vad = await loadSileroVad();
  speech = await withPauses(['goforward', 'harvard_spk1_snt1'], 2);
});
after(() => unloadAll());

function session(opts: StreamSessionOptions = {}): { s: StreamSession; events: StreamEvent[] } {
  const events: StreamEvent[] = [];
  const s = new StreamSession(w, vad, (e) => events.push(e), { sampleLen: 4, ...opts });
  return { s, events };
}

/** Pushes `samples` in `chunkS` pieces, letting the event loop run between them (faster than real time). */
async function feed(s: StreamSession, samples: Float32Array, chunkS = 0.1, settle = false): Promise<void> {
  const n = Math.round(chunkS * SR);
  for (let at = 0; at < samples.length; at += n) {
    s.push(samples.subarray(at, at + n));
    for (let i = 0; i < 5; i++) await tick();
    // The model runs in its own thread: with `settle`, the next chunk waits for the model's work on
    // this one (as real-time audio would give it time to finish).
    while (settle && w.queue.stats().running > 0) await new Promise((r) => setTimeout(r, 2));
  }
}

/** Checks each item's events come in order: started < partials < stopped < final. Returns the items. */
function checkOrder(events: StreamEvent[], cleared: readonly number[] = []): Map<number, StreamEvent[]> {
  const items = new Map<number, StreamEvent[]>();
  for (const e of events) {
    assert.notEqual(e.type, 'error', `unexpected error event: ${e.type === 'error' ? e.error.message : ''}`);
    if (e.type === 'error') continue;
    if (!items.has(e.item)) items.set(e.item, []);
    items.get(e.item)!.push(e);
  }
  const rank = { speech_started: 0, partial: 1, speech_stopped: 2, final: 3 } as const;
  for (const [item, list] of items) {
    const types = list.map((e) => e.type);
    assert.equal(types[0], 'speech_started', `item ${item} starts with ${types[0]}`);
    if (cleared.includes(item)) {
      assert.ok(!types.includes('speech_stopped') && !types.includes('final'), `cleared item ${item}: ${types.join(' ')}`);
      continue;
    }
    assert.equal(types.at(-1), 'final', `item ${item} ends with ${types.at(-1)}`);
    assert.equal(types.filter((t) => t === 'speech_stopped').length, 1);
    for (let i = 1; i < list.length; i++) assert.ok(rank[list[i - 1]!.type as keyof typeof rank] <= rank[list[i]!.type as keyof typeof rank], `item ${item}: ${types.join(' ')}`);
  }
  return items;
}

test('speech with pauses: items in order, partials while speaking, finals with timestamps inside the speech', async () => {
  const { s, events } = session({ partialIntervalMs: 300 });
  await feed(s, speech.samples, 0.1, true);
  await s.end();
  const items = checkOrder(events);
  assert.ok(items.size >= 2, `expected an item per clip at least, got ${items.size}`);
  const finals = events.filter((e) => e.type === 'final');
  assert.equal(finals.length, items.size);
  // Finals come in item order and every clip is covered by some item.
  assert.deepEqual(finals.map((f) => f.item), [...items.keys()].sort((a, b) => a - b));
  for (const [c0, c1] of speech.clips) {
    assert.ok(finals.some((f) => f.start < c1 && f.end > c0), `clip [${c0}, ${c1}] has no item`);
  }
  for (const f of finals) {
    // The utterance lies within a clip, give or take the VAD's padding.
    assert.ok(speech.clips.some(([c0, c1]) => f.start >= c0 - 0.6 && f.end <= c1 + 0.6), `item [${f.start}, ${f.end}] is outside the speech`);
    assert.ok(f.end > f.start);
    for (const seg of f.segments) {
      assert.ok(seg.start >= f.start - 1e-6 && seg.end <= f.end + 1e-6 && seg.start <= seg.end, `segment ${JSON.stringify(seg)} outside [${f.start}, ${f.end}]`);
    }
    assert.equal(f.language, 'en');
  }
  const partials = events.filter((e) => e.type === 'partial');
  assert.ok(partials.length > 0, 'no partial hypothesis while speaking');
  // Committed text only grows, by exactly its deltas, and text = committed + tentative is what a client shows.
  for (const item of items.keys()) {
    let committed = '';
    for (const p of partials.filter((e) => e.item === item)) {
      assert.ok(p.committed.startsWith(committed), 'committed text changed');
      assert.equal(p.committed, committed + p.delta);
      committed = p.committed;
    }
  }
  assert.equal(s.stats.partials, partials.length);
  assert.equal(s.stats.finals, finals.length);
  // With the model keeping up, finals were decoded during the silence before their end was confirmed.
  assert.ok(s.stats.speculated >= 1 && s.stats.speculated <= finals.length, `speculated ${s.stats.speculated} of ${finals.length}`);
});

test('audio pushed all at once: late partials are dropped and counted, finals still all come', async () => {
  let dropped = 0;
  const { s, events } = session({ partialIntervalMs: 200, observer: { partialDropped: () => dropped++ } });
  s.push(speech.samples);
  // Let the VAD work through the backlog (two clips, two finals at least) before the end flushes.
  for (const end = Date.now() + 10000; s.stats.finals < 2 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  await s.end();
  checkOrder(events);
  assert.ok(s.stats.droppedPartials > 0);
  assert.equal(dropped, s.stats.droppedPartials);
  // Due partials number one per 200 ms of speech; at most one per item can have been decoded when
  // everything arrives at once (each is pending until the utterance ends or it completes).
  assert.ok(events.filter((e) => e.type === 'final').length >= 2);
  assert.deepEqual(w.queue.stats(), { waiting: 0, running: 0 });
});

test('without VAD, commit makes an item of the buffered audio; empty commits are refused; clear drops audio', async () => {
  const { s, events } = session({ vad: false });
  await assert.rejects(s.commit(), { code: 'input_audio_buffer_commit_empty' });
  s.push(speech.samples.subarray(0, 3 * SR));
  const item = await s.commit();
  s.push(speech.samples.subarray(3 * SR, 4 * SR));
  await s.clear();
  await assert.rejects(s.commit(), { code: 'input_audio_buffer_commit_empty' });
  s.push(speech.samples.subarray(4 * SR, 5 * SR));
  await s.end();
  const items = checkOrder(events, [1]);
  const finals = events.filter((e) => e.type === 'final');
  // The cleared second [3, 4) leaves no final; [0, 3) and [4, 5) do.
  assert.deepEqual(finals.map((f) => [f.start, f.end]), [[0, 3], [4, 5]]);
  assert.equal(finals[0]!.item, item);
  assert.equal(items.size, 3, 'the cleared turn keeps its item number but has no final');
});

test('a turn longer than maxUtteranceS is cut (forced endpoint)', async () => {
  const { s, events } = session({ vad: false, maxUtteranceS: 2 });
  s.push(noise(5 * SR, 0.01));
  await s.end();
  const stops = events.filter((e) => e.type === 'speech_stopped');
  assert.deepEqual(stops.map((e) => [e.end, e.forced]), [[2, true], [4, true], [5, false]]);
  assert.deepEqual(events.filter((e) => e.type === 'final').map((f) => [f.start, f.end]), [[0, 2], [2, 4], [4, 5]]);
});

test('bounded backlog, bad audio and bad options are typed errors', async () => {
  const { s } = session({ maxBacklogS: 1 });
  s.push(new Float32Array(SR / 2));
  assert.throws(() => s.push(new Float32Array(SR)), { kind: 'overloaded', code: 'audio_backlog' });
  assert.throws(() => s.push(Float32Array.of(0, NaN)), { kind: 'invalid_audio' });
  await s.end();
  assert.throws(() => s.push(new Float32Array(10)), { code: 'stream_ended' });
  assert.throws(() => session({ partialIntervalMs: 0 }), { code: 'bad_stream_option' });
  assert.throws(() => session({ maxUtteranceS: 31 }), { code: 'bad_stream_option' });
  assert.throws(() => session({ language: 'fr' }), { code: 'unsupported_language' });
  assert.throws(() => session({ language: 'klingon' }), { kind: 'invalid_argument' });
});

test('close() mid-stream withdraws the work and emits nothing more', async () => {
  const { s, events } = session({ partialIntervalMs: 100 });
  const [c0] = speech.clips[0]!;
  await feed(s, speech.samples.subarray(0, Math.round((c0 + 1.5) * SR)));
  s.push(speech.samples.subarray(Math.round((c0 + 1.5) * SR)));
  s.close();
  const seen = events.length;
  assert.ok(s.closed);
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && (w.queue.stats().running > 0 || w.queue.stats().waiting > 0)) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(w.queue.stats(), { waiting: 0, running: 0 });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(events.length, seen);
});
