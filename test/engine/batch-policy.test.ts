// The dispatch policy on its own: plain waiting calls and a hand-driven clock, no model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Call } from '../../src/engine/batch-calls.ts';
import { deviceBatchLimits, DispatchPolicy } from '../../src/engine/batch-policy.ts';

const limits = { maxBatch: 4, maxEncodeBatch: 2, maxWaitMs: 3, maxCohortWaitMs: 200 };
let seq = 0;
function step(key: string, group: string, over: Partial<Call> = {}): Call {
  return { kind: 'step', key, group, rows: 1, priority: 0, order: 0, seq: seq++, arrived: 0, linked: false, reject: () => {}, resolve: () => {}, ...over } as Call;
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

test('a higher-priority call leads the next run even when lower-priority work has a full batch', () => {
  const p = new DispatchPolicy(limits);
  // Two partials' encoder calls fill an encoder batch (2 here; 1 on the CPU, where every encoder
  // call is a full batch): they must not overtake a final's step, older or newer.
  const encode = (priority: number) => step('encode:3000', 'encode', { kind: 'encode', priority } as Partial<Call>);
  const partials = [encode(10), encode(10)];
  const final = step('s', 'step:7', { priority: 20, linked: true });
  assert.deepEqual(p.choose([...partials, final], 0), [final]);
  // Among equal priorities, arrival order: an older step goes before a newer full encoder batch.
  const older = step('s', 'step:7', { priority: 10, linked: true });
  assert.deepEqual(p.choose([older, encode(10), encode(10)], 0), [older]);
});

test('a call does not wait for lower-priority callers of its own group', () => {
  const p = new DispatchPolicy(limits);
  p.ticket('step:7', 10, 100); // a partial's caller, out, at the same cache length as the final
  const final = step('s', 'step:7', { priority: 20, linked: true, arrived: 100 });
  assert.equal(p.blockedUntil(final), 0);
  assert.equal(p.readyAt([final], 101), 101, 'the final runs at once');
  const partial = step('s', 'step:7', { priority: 10, linked: true, arrived: 100 });
  assert.equal(p.blockedUntil(partial), 300, 'callers of equal priority still keep their cohort whole');
});

test('batch limits per device: the CPU runs one encoder window at a time, a GPU batches 64-256 decoder rows and encoder windows', () => {
  const cpu = deviceBatchLimits('cpu');
  assert.equal(cpu.maxEncodeBatch, 1);
  assert.ok(cpu.maxBatch > 1 && cpu.maxBatch < 64, `CPU decoder rows ${cpu.maxBatch}`);
  for (const device of ['cuda', 'webgpu'] as const) {
    const gpu = deviceBatchLimits(device);
    assert.ok(gpu.maxBatch >= 64 && gpu.maxBatch <= 256, `${device} decoder rows ${gpu.maxBatch}`);
    assert.ok(gpu.maxEncodeBatch > 1 && gpu.maxEncodeBatch <= gpu.maxBatch, `${device} encoder windows ${gpu.maxEncodeBatch}`);
  }
});

test('among equal priorities, the job queued first leads: its calls go before older calls of later jobs', () => {
  const p = new DispatchPolicy(limits);
  // Two finals at once: the second's encoder call is older than the first's step, yet the first
  // final's step goes first, so the first finishes as soon as it would alone.
  const secondEncode = step('encode:3000', 'encode', { kind: 'encode', priority: 20, order: 2 } as Partial<Call>);
  const firstStep = step('s', 'step:7', { priority: 20, order: 1, linked: true });
  assert.deepEqual(p.choose([secondEncode, firstStep], 0), [firstStep]);
  assert.deepEqual(p.choose([secondEncode], 0), [secondEncode], 'and the second runs while the first is away');
});
