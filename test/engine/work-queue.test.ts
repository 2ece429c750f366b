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

test("a priority's lane: its jobs run one at a time while other priorities start beside them", async () => {
  const q = new WorkQueue({ concurrency: 4, lane: (p) => (p >= 10 ? 1 : 4) });
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
  const r = q.run(async () => log.push('request'), { priority: -1 });
  await r;
  assert.deepEqual(log, ['start p1', 'start f', 'request'], 'the second partial waits; a final and a request start beside the first');
  assert.deepEqual(q.stats(), { waiting: 1, running: 2 });
  // A new job of the waiting one's priority queues behind it, even with room in the queue.
  gates.f.open();
  await f;
  assert.deepEqual(q.stats(), { waiting: 1, running: 1 }, 'the partial lane is still full');
  gates.p1.open();
  await p1;
  assert.equal(log.at(-1), 'start p2', 'the lane\'s next job starts when its running one ends');
  gates.p2.open();
  await p2;
  assert.deepEqual(q.stats(), { waiting: 0, running: 0 });
});

test('a job of a lane that is not full does not overtake one of its own priority already waiting', async () => {
  const q = new WorkQueue({ concurrency: 1, lane: () => 1 });
  const g = gate();
  const order: string[] = [];
  const first = q.run(() => g.opened, { priority: 10 });
  const second = q.run(async () => order.push('second'), { priority: 10 });
  const third = q.run(async () => order.push('third'), { priority: 10 });
  g.open();
  await Promise.all([first, second, third]);
  assert.deepEqual(order, ['second', 'third']);
});
