// The token decoders on their own, without a model: hand-made logits over a 4-token vocabulary
// (token 3 is <|endoftext|>), no logit filters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BeamSearchDecoder, GreedyDecoder, rankCandidates } from '../../src/decoding/token-decoders.ts';

const EOT = 3;
const setup = { filters: [], eot: EOT, vocab: 4, initTokens: [100, 101] };
const logp = (row: number[]) => {
  const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
  return row.map((v) => v - lse);
};

test('greedy takes each row\'s argmax, sums its log-probability, and stops at <|endoftext|>', () => {
  const d = new GreedyDecoder(setup, 1, 0, Math.random);
  const a = d.update(Float32Array.from([0, 2, 1, 0]));
  assert.deepEqual(a, { next: [1], done: false });
  const b = d.update(Float32Array.from([0, 0, 0, 5]));
  assert.deepEqual(b, { next: [EOT], done: true });
  const [c] = d.finalize();
  assert.deepEqual(c!.tokens, [1]);
  const expected = logp([0, 2, 1, 0])[1]! + logp([0, 0, 0, 5])[3]!;
  assert.ok(Math.abs(c!.sumLogprob - expected) < 1e-5, `${c!.sumLogprob} vs ${expected}`);
});

test('greedy uses the model\'s picks when it has them, and keeps a finished row at <|endoftext|>', () => {
  const d = new GreedyDecoder(setup, 1, 0, Math.random);
  assert.equal(d.usesPicks, true);
  assert.deepEqual(d.update(new Float32Array(4), [{ token: EOT, logprob: -0.5 }]).next, [EOT]);
  assert.deepEqual(d.finalize(), [{ tokens: [], sumLogprob: -0.5 }]);
  assert.equal(new GreedyDecoder(setup, 2, 0.5, Math.random).usesPicks, false, 'sampling chooses here');
});

test('sampling draws from softmax(row / temperature) with the given random source', () => {
  const row = [0, 0, 10, 0];
  const d = new GreedyDecoder(setup, 2, 1, () => 0.5);
  const { next } = d.update(Float32Array.from([...row, ...row]));
  assert.deepEqual(next, [2, 2], 'nearly all the mass is on token 2');
  const low = new GreedyDecoder(setup, 1, 1, () => 0);
  assert.deepEqual(low.update(Float32Array.from([1, 1, 1, 1])).next, [0], 'a draw of 0 takes the first token');
});

test('beam search keeps the best beams, sets aside finished ones, and reorders rows', () => {
  const d = new BeamSearchDecoder(setup, 2, 1);
  // Both beams start alike: the two best continuations are tokens 1 and 2.
  const first = d.update(Float32Array.from([0, 3, 2, -5, 0, 3, 2, -5]));
  assert.deepEqual(first.next, [1, 2]);
  assert.equal(first.done, false);
  // Beam 0 (…1) now ends best; beam 1 (…2) goes on with token 0 from both.
  const second = d.update(Float32Array.from([-9, -9, -9, 9, 5, 4, -9, -20]));
  assert.equal(second.done, false, 'one finished of two');
  assert.deepEqual(second.sources, [1, 1], 'both kept beams continue row 1');
  const third = d.update(Float32Array.from([-9, -9, -9, 9, -9, -9, -9, 9]));
  assert.equal(third.done, true);
  const cands = d.finalize();
  assert.deepEqual(cands.map((c) => c.tokens).sort(), [[1], [2, 0]].sort());
  assert.deepEqual(cands[rankCandidates(cands, null)]!.tokens, [1], 'the shorter, likelier candidate wins by mean log-probability');
});
