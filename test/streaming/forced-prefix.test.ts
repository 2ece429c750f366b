// The two pieces the streaming text invariant rests on: decodeWindow's forced prefix (the committed
// tokens go in as if sampled, in one decoder call) and a final's text from its window's tokens
// (every text token kept, in order). On the English test model (random weights).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { decodeWindow, type WindowDecodeOptions } from '../../src/decoding/decode-window.ts';
import type { EncodedAudio } from '../../src/engine/model-types.ts';
import { type Whisper } from '../../src/runtime/loaded-model.ts';
import { loadWhisper, unloadAll } from '../../src/runtime/model-cache.ts';
import { finalText } from '../../src/streaming/final-text.ts';
import { clip } from './support.ts';

let w: Whisper;

before(async () => {
  w = await loadWhisper(testModelDir({ preset: 'english' }), { engine: { intraOpThreads: 1 } });
});
after(() => unloadAll());

async function decodeAll(runs: WindowDecodeOptions[]): Promise<number[][]> {
  const samples = (await clip('goforward')).subarray(0, 2 * 16000);
  return w.queue.run(async (runner) => {
    const encoded: EncodedAudio = await runner.encode(w.features.window(samples), 1);
    const out: number[][] = [];
    for (const o of runs) out.push((await decodeWindow(runner, w.tokenizer, encoded, { language: 'en', ...o })).tokens);
    runner.finish?.(encoded);
    return out;
  });
}

test('a forced prefix that greedy decoding would have chosen gives the same tokens (one call for the prefix, without and with timestamps)', async () => {
  const n = 12;
  for (const withoutTimestamps of [true, false]) {
    const [free] = await decodeAll([{ withoutTimestamps, sampleLen: n }]);
    assert.ok(free!.length >= 4, `too short to force a part of: ${free}`);
    // With timestamps the prefix follows the model's first token, a timestamp.
    const skip = withoutTimestamps ? 0 : 1;
    if (!withoutTimestamps) assert.ok(w.tokenizer.isTimestamp(free![0]!), 'the first token with timestamps is a timestamp');
    for (const k of [1, 3]) {
      const prefix = free!.slice(skip, skip + k);
      const [forced] = await decodeAll([{ withoutTimestamps, sampleLen: n - k, prefix }]);
      assert.deepEqual(forced, free, `withoutTimestamps ${withoutTimestamps}, prefix of ${k}`);
    }
  }
});

test('the result begins with any forced prefix, even one the model would not choose; a prefix is refused with beam search or <|endoftext|>', async () => {
  const prefix = w.tokenizer.encode(' a quite unlikely committed text');
  const [plain, timed, short] = await decodeAll([
    { withoutTimestamps: true, sampleLen: 5, prefix },
    { sampleLen: 5, prefix },
    { sampleLen: 1, prefix },
  ]);
  assert.deepEqual(plain!.slice(0, prefix.length), prefix);
  assert.ok(plain!.length > prefix.length && plain!.length <= prefix.length + 5);
  assert.ok(w.tokenizer.isTimestamp(timed![0]!));
  assert.deepEqual(timed!.slice(1, 1 + prefix.length), prefix);
  // A budget of one token: the first timestamp, and still the whole prefix after it.
  assert.deepEqual(short, [timed![0], ...prefix]);
  await assert.rejects(decodeAll([{ beamSize: 2, prefix }]), { code: 'bad_decode_option' });
  await assert.rejects(decodeAll([{ prefix: [w.tokenizer.eot] }]), { code: 'bad_decode_option' });
});

test('a final keeps every text token: zero-length segments merge into a neighbour, the unfinished tail runs to the end', () => {
  const tok = w.tokenizer;
  const ts = (s: number) => tok.timestampBegin + Math.round(s / 0.02);
  const a = tok.encode(' Hello world');
  const b = tok.encode(' again');
  const c = tok.encode(' and more');
  // <|0.30|> A <|1.00|> <|1.00|> B <|1.00|> <|2.00|> C   (B's segment has no length, C is unfinished)
  const f = finalText(tok, [ts(0.3), ...a, ts(1), ts(1), ...b, ts(1), ts(2), ...c], 2.5);
  assert.equal(f.text, 'Hello world again and more');
  assert.deepEqual(f.segments, [
    { start: 0.3, end: 1, text: ' Hello world again' },
    { start: 2, end: 2.5, text: ' and more' },
  ]);
  // A zero-length first segment merges into the next; times past the audio are held at its end.
  const g = finalText(tok, [ts(1), ...a, ts(1), ts(1), ...b, ts(4)], 3);
  assert.equal(g.text, 'Hello world again');
  assert.deepEqual(g.segments, [{ start: 1, end: 3, text: ' Hello world again' }]);
  // No timestamp pair at all: one segment over the audio.
  assert.deepEqual(finalText(tok, [ts(0), ...a], 1.5).segments, [{ start: 0, end: 1.5, text: ' Hello world' }]);
});
