// The model's work queue: one job at a time, bounded waiting, priorities, abort while waiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../../src/engine/work-queue.ts';
import { isEarshotError } from '../../src/errors.ts';

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

test('jobs run one at a time, in arrival order', async () => {
  const q = new WorkQueue();
  const log: string[] = [];
  let active = 0;
  const job = (name: string) => async () => {
    active++;
    assert.equal(active, 1, 'never two at once');
    log.push(`start ${name}`);
    await new Promise((r) => setTimeout(r, 5));
    log.push(`end ${name}`);
    active--;
    return name;
  };
  const results = await Promise.all([q.run(job('a')), q.run(job('b')), q.run(job('c'))]);
  assert.deepEqual(results, ['a', 'b', 'c']);
  assert.deepEqual(log, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  assert.deepEqual(q.stats(), { waiting: 0, running: 0 });
});

test('a full queue refuses at once with a typed overloaded error', async () => {
  const q = new WorkQueue({ maxWaiting: 1 });
  const g = gate();
  const first = q.run(() => g.opened);
  const second = q.run(async () => 'second');
  await assert.rejects(q.run(async () => 'third'), (e) => isEarshotError(e) && e.kind === 'overloaded');
  assert.deepEqual(q.stats(), { waiting: 1, running: 1 });
  g.open();
  await first;
  assert.equal(await second, 'second');
});

test('higher priority jumps the waiting line; a failing job frees its turn', async () => {
  const q = new WorkQueue();
  const g = gate();
  const order: string[] = [];
  const first = q.run(async () => {
    await g.opened;
    throw new Error('boom');
  });
  const low = q.run(async () => order.push('file'));
  const high = q.run(async () => order.push('stream'), { priority: 1 });
  g.open();
  await assert.rejects(first, /boom/);
  await Promise.all([low, high]);
  assert.deepEqual(order, ['stream', 'file']);
});

test('aborting while waiting removes the job before it starts', async () => {
  const q = new WorkQueue();
  const g = gate();
  const first = q.run(() => g.opened);
  const ac = new AbortController();
  let ran = false;
  const waiting = q.run(async () => (ran = true), { signal: ac.signal });
  assert.equal(q.stats().waiting, 1);
  ac.abort(new Error('client went away'));
  await assert.rejects(waiting, /client went away/);
  assert.equal(q.stats().waiting, 0);
  g.open();
  await first;
  assert.equal(ran, false);
});

test('a lane: its jobs run one at a time while jobs outside it start beside them; the lane serves by priority', async () => {
  const streams = { name: 'streams', size: 1 };
  const q = new WorkQueue({ concurrency: 4, lane: (p) => (p >= 10 ? streams : null) });
  const gates = { p1: gate(), p2: gate(), f: gate() };
  const log: string[] = [];
  const job = (name: keyof typeof gates) => async () => {
    log.push(`start ${name}`);
    await gates[name].opened;
    log.push(`end ${name}`);
  };
  const p1 = q.run(job('p1'), { priority: 10 });
  const p2 = q.run(job('p2'), { priority: 10 });
  const f = q.run(job('f'), { priority: 20 });
  await q.run(async () => log.push('request'), { priority: -1 });
  assert.deepEqual(log, ['start p1', 'request'], 'the lane is full: a second partial and a final wait; a request starts beside');
  assert.deepEqual(q.stats(), { waiting: 2, running: 1 });
  gates.p1.open();
  await p1;
  assert.equal(log.at(-1), 'start f', 'the final goes before the partial that waited longer');
  gates.f.open();
  await f;
  assert.equal(log.at(-1), 'start p2');
  gates.p2.open();
  await p2;
  assert.deepEqual(q.stats(), { waiting: 0, running: 0 });
});

test('a higher-priority job waiting for its lane withdraws a running job that allows it, once; one that does not is waited for', async () => {
  const streams = { name: 'streams', size: 1 };
  const q = new WorkQueue({ concurrency: 4, lane: () => streams });
  const partial = gate();
  let preempted = 0;
  const log: string[] = [];
  const p = q.run(async () => {
    log.push('partial');
    await partial.opened;
  }, { priority: 10, preempt: () => { preempted++; partial.open(); } });
  const spec = q.run(async () => log.push('speculation'), { priority: 15 });
  const fin = q.run(async () => log.push('final'), { priority: 20 });
  await Promise.all([p, spec, fin]);
  assert.equal(preempted, 1, 'withdrawn once, though two jobs above it waited');
  assert.deepEqual(log, ['partial', 'final', 'speculation']);

  // A speculation is not preemptible: a final waits for it to end.
  const s2 = gate();
  const order: string[] = [];
  const sp = q.run(async () => {
    await s2.opened;
    order.push('speculation');
  }, { priority: 15 });
  const f2 = q.run(async () => order.push('final'), { priority: 20 });
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(order, [], 'the final waits');
  s2.open();
  await Promise.all([sp, f2]);
  assert.deepEqual(order, ['speculation', 'final']);
  // Nor does a job of equal priority preempt.
  let eq = 0;
  const g3 = gate();
  const a = q.run(() => g3.opened, { priority: 10, preempt: () => eq++ });
  const b = q.run(async () => {}, { priority: 10 });
  g3.open();
  await Promise.all([a, b]);
  assert.equal(eq, 0);
});
