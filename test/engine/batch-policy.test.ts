// The dispatch policy on its own: plain waiting calls and a hand-driven clock, no model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Call } from '../../src/engine/batch-calls.ts';
import { DispatchPolicy } from '../../src/engine/batch-policy.ts';

const limits = { maxBatch: 4, maxEncodeBatch: 2, maxWaitMs: 3, maxCohortWaitMs: 200 };
let seq = 0;
function step(key: string, group: string, over: Partial<Call> = {}): Call {
  return { kind: 'step', key, group, rows: 1, priority: 0, seq: seq++, arrived: 0, linked: false, reject: () => {}, resolve: () => {}, ...over } as Call;
}

test('a lone call waits maxWaitMs for company; a full key or a returning caller goes at once', () => {
  const p = new DispatchPolicy(limits);
  assert.equal(p.readyAt([step('a', 'g', { arrived: 10 })], 10), 13);
  const full = [1, 2, 3, 4].map(() => step('a', 'g', { arrived: 10 }));
  assert.equal(p.readyAt(full, 10), 10);
  assert.equal(p.readyAt([step('a', 'g', { arrived: 10, linked: true })], 10), 10);
  assert.equal(p.readyAt([], 10), Infinity);
});

test('a group waits for its callers still out, up to maxCohortWaitMs, while other groups run', () => {
  const p = new DispatchPolicy(limits);
  const t = p.ticket('g', 0, 100);
  const mine = step('a', 'g', { arrived: 100, linked: true });
  const other = step('b', 'h', { arrived: 100, linked: true });
  assert.equal(p.blockedUntil(mine), 300);
  assert.deepEqual(p.choose([mine, other], 101), [other], 'the complete group runs meanwhile');
  assert.equal(p.link(t), true);
  assert.equal(p.link(t), false, 'a ticket links once');
  assert.deepEqual(p.choose([mine], 102), [mine]);
});

test('higher priority first; lower priority waits for higher-priority callers still out', () => {
  const p = new DispatchPolicy(limits);
  const low = step('a', 'g', { priority: 0 });
  const high = step('b', 'h', { priority: 5 });
  assert.deepEqual(p.choose([low, high], 0), [high]);
  p.ticket('h', 5, 50);
  assert.equal(p.blockedUntil(low), 250, 'the partial waits for the final between its steps');
  assert.equal(p.awaitingCount, 1);
  p.expire(250);
  assert.equal(p.awaitingCount, 0, 'a caller not back in time is not waited for');
});

test('a run takes calls of one key, in order, up to the batch limit, and never splits a call', () => {
  const p = new DispatchPolicy(limits);
  const calls = [step('a', 'g', { rows: 2 }), step('b', 'g'), step('a', 'g', { rows: 1 }), step('a', 'g', { rows: 2 })];
  assert.deepEqual(p.choose(calls, 0), [calls[0], calls[2]], '2 + 1 rows; the next 2 would pass 4');
  const enc = [step('e', 'encode', { kind: 'encode' } as Partial<Call>), step('e', 'encode', { kind: 'encode' } as Partial<Call>), step('e', 'encode', { kind: 'encode' } as Partial<Call>)];
  assert.equal(p.choose(enc, 0).length, 2, 'encoder runs have their own limit');
});
