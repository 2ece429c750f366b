// Segment splitting and seek arithmetic of transcribe.py, on hand-built token lists.
// T is <|0.00|>; T + k is k × 0.02 s; a window is 3000 mel frames, 2 frames per timestamp step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitWindow, seekToSeconds, N_FRAMES } from '../../src/decoding/window-segments.ts';

const T = 50364;
const EOT = 50257;
const info = (seek = 0, segmentSize = N_FRAMES) => ({ timestampBegin: T, eot: EOT, seek, segmentSize });

test('consecutive pairs split segments; a trailing lone timestamp consumes the window', () => {
  const tokens = [T + 0, 10, 11, T + 50, T + 50, 12, T + 100];
  const r = splitWindow(tokens, info());
  assert.equal(r.singleTimestampEnding, true);
  assert.deepEqual(r.segments.map((s) => [s.start, s.end]), [[0, 50 * 0.02], [50 * 0.02, 100 * 0.02]]);
  assert.deepEqual(r.segments[0]!.tokens, [T + 0, 10, 11, T + 50]);
  assert.deepEqual(r.segments[0]!.textTokens, [10, 11]);
  assert.deepEqual(r.segments[1]!.textTokens, [12]);
  assert.equal(r.seekAdvance, N_FRAMES);
});

test('an unfinished last segment is dropped and seek restarts at the last timestamp', () => {
  const r = splitWindow([T + 0, 10, T + 60, T + 60, 12, 13], info());
  assert.equal(r.singleTimestampEnding, false);
  assert.equal(r.segments.length, 1);
  assert.deepEqual([r.segments[0]!.start, r.segments[0]!.end], [0, 60 * 0.02]);
  assert.equal(r.seekAdvance, 60 * 2, '<|1.20|> = 120 mel frames');

  const endsInPair = splitWindow([T + 0, 10, T + 60, T + 60, 12, T + 80, T + 80], info());
  assert.equal(endsInPair.segments.length, 2);
  assert.equal(endsInPair.seekAdvance, 80 * 2);
});

test('no pair but a timestamp: one segment, ending at the last timestamp; whole window consumed', () => {
  const r = splitWindow([T + 0, 10, 11, T + 75], info(0, 2400));
  assert.equal(r.singleTimestampEnding, true);
  assert.deepEqual(r.segments.map((s) => [s.start, s.end]), [[0, 75 * 0.02]]);
  assert.deepEqual(r.segments[0]!.textTokens, [10, 11]);
  assert.equal(r.seekAdvance, 2400);
});

test('no timestamps (or only <|0.00|>): one segment over the audio in the window', () => {
  const r = splitWindow([10, 11, 12], info(0, 2400));
  assert.equal(r.singleTimestampEnding, false);
  assert.deepEqual(r.segments.map((s) => [s.start, s.end]), [[0, 24]]);
  assert.equal(r.seekAdvance, 2400);
  const zero = splitWindow([T + 0, 10, 11], info(0, 1000));
  assert.equal(zero.segments[0]!.end, 10, '<|0.00|> alone does not set the end');
  const empty = splitWindow([], info(0, 500));
  assert.deepEqual([empty.segments[0]!.end, empty.seekAdvance], [5, 500]);
});

test('times are offset by the window start (seek in frames)', () => {
  assert.equal(seekToSeconds(3000), 30);
  const r = splitWindow([T + 10, 10, T + 20, T + 20, 11, T + 30], info(3120));
  assert.deepEqual(r.segments.map((s) => [s.start, s.end]), [
    [31.2 + 10 * 0.02, 31.2 + 20 * 0.02],
    [31.2 + 20 * 0.02, 31.2 + 30 * 0.02],
  ]);
  assert.equal(r.segments[0]!.start.toFixed(2), '31.40');
});
