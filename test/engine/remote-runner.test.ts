// The model in its worker thread (remote-runner.ts + model-worker.ts) on built test models: the
// event loop keeps ticking while the model runs (it does not with the model on the main thread),
// decoding through it gives the in-process model's tokens and logits, handles the main thread
// drops are freed in the worker, typed errors arrive typed, and a worker that dies fails pending
// calls cleanly and marks the runner failed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { decodeWindow, type WindowDecodeOptions } from '../../src/decoding/decode-window.ts';
import { loadModelHere, modelQueue, type Whisper } from '../../src/runtime/loaded-model.ts';
import { loadWhisper } from '../../src/runtime/model-cache.ts';
import { parseEngineOptions } from '../../src/engine/execution.ts';
import { RemoteRunner } from '../../src/engine/remote-runner.ts';
import type { SchedulerOptions } from '../../src/engine/scheduler.ts';
import type { WhisperModel } from '../../src/engine/whisper-model.ts';
import type { ModelRunner } from '../../src/engine/model-types.ts';
import { isEarshotError } from '../../src/errors.ts';
import { recording } from './recording.ts';

function features(nMels: number, seed: number): Float32Array {
  const f = new Float32Array(nMels * 3000);
  for (let i = 0; i < f.length; i++) f[i] = Math.sin(i * (0.37 + seed * 0.011) + seed) * 0.6 - 0.1;
  return f;
}

/** A fresh runner (its own worker) for `w`'s files, so a test can break it without touching loadWhisper's. */
function startFor(w: Whisper, scheduler: SchedulerOptions = {}): Promise<RemoteRunner> {
  return RemoteRunner.start({
    dir: w.resolved.dir,
    files: { encoder: w.resolved.encoderPath, decoder: w.resolved.decoderPath },
    engine: parseEngineOptions({ intraOpThreads: 1 }),
    scheduler,
  });
}

/** How many times a 5 ms interval fires while `work` runs, and how long it ran. */
async function ticksDuring(work: () => Promise<unknown>): Promise<{ ticks: number; ms: number }> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const started = performance.now();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return { ticks, ms: performance.now() - started };
}

test('the event loop keeps ticking while the model runs in its worker (not with the model in-process)', async (t) => {
  const w = await loadWhisper(testModelDir({ preset: 'english', dims: 'tiny' }));
  const here = await loadModelHere(w, { intraOpThreads: 1 });
  t.after(() => here.release());
  const f = features(w.model.dims.nMels, 1);
  const run = async (m: ModelRunner) => {
    const enc = await m.encode(f, 1);
    let out = await m.decode(BigInt64Array.of(50257n, 50362n), 1, enc, null);
    for (let i = 0; i < 4; i++) out = await m.decode(BigInt64Array.of(440n), 1, enc, out.cache);
  };
  await run(w.model); // warm-up: first runs allocate
  await run(here);
  const inProcess = await ticksDuring(() => run(here));
  const remote = await ticksDuring(() => run(w.model));
  // In-process, session.run holds the loop: the interval only fires between runs.
  assert.ok(inProcess.ticks <= 8 + inProcess.ms / 50, `in-process: ${inProcess.ticks} ticks in ${inProcess.ms.toFixed(0)} ms`);
  // In the worker, timers fire throughout (a loaded machine delays some: ask for a third).
  assert.ok(remote.ticks >= remote.ms / 5 / 3, `worker: ${remote.ticks} ticks in ${remote.ms.toFixed(0)} ms`);
  assert.ok(remote.ms > 50, `the run took long enough to measure (${remote.ms.toFixed(0)} ms)`);
});


test('decoding through the worker gives the in-process model\'s tokens and logits (greedy, timestamps, beam)', async (t) => {
  const w = await loadWhisper(testModelDir({ preset: 'multilingual' }));
  const here: WhisperModel = await loadModelHere(w);
  t.after(() => here.release());
  const cases: WindowDecodeOptions[] = [
    { language: 'en', withoutTimestamps: true, sampleLen: 10 },
    { language: 'en', sampleLen: 10 },
    { language: 'en', withoutTimestamps: true, sampleLen: 8, beamSize: 3 },
    { language: 'de', sampleLen: 6, beamSize: 2, prompt: [440, 2068] },
  ];
  for (const [i, opts] of cases.entries()) {
    const f = features(w.model.dims.nMels, i);
    const a = recording(here);
    const b = recording(w.model);
    const alone = await decodeWindow(a.runner, w.tokenizer, await here.encode(f, 1), opts);
    const remote = await decodeWindow(b.runner, w.tokenizer, await w.model.encode(f, 1), opts);
    assert.deepEqual(remote.tokens, alone.tokens, `case ${i}: tokens`);
    assert.ok(Math.abs(remote.sumLogprob - alone.sumLogprob) < 1e-4, `case ${i}: ${remote.sumLogprob} vs ${alone.sumLogprob}`);
    assert.equal(b.rec.raw.length, a.rec.raw.length, `case ${i}: as many decoder calls`);
    a.rec.raw.forEach((l, k) => {
      assert.equal(b.rec.raw[k]!.length, l.length, `case ${i}, call ${k}: logits on both sides or on neither`);
      let d = 0;
      for (let j = 0; j < l.length; j++) d = Math.max(d, Math.abs(l[j]! - b.rec.raw[k]![j]!));
      assert.ok(d < 1e-4, `case ${i}, call ${k}: logits differ by ${d}`);
      const [pa, pb] = [a.rec.picks[k], b.rec.picks[k]];
      assert.equal(pb?.length, pa?.length, `case ${i}, call ${k}: picks on both sides or on neither`);
      pa?.forEach((p, r) => {
        assert.equal(pb![r]!.token, p!.token, `case ${i}, call ${k}: picked token`);
        assert.ok(Math.abs(pb![r]!.logprob - p!.logprob) < 1e-5, `case ${i}, call ${k}: picked log-probability`);
      });
    });
    // Greedy decoding picks next to the model; beam search takes logits.
    assert.equal(a.rec.picks.some((p) => p !== undefined), opts.beamSize === undefined, `case ${i}: picks exactly when greedy`);
  }
});

test('handles the main thread drops are freed in the worker', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const w = await loadWhisper(testModelDir({ preset: 'english' }));
  const runner = await startFor(w);
  t.after(() => runner.release());
  const before = (await runner.stats()).handles;
  assert.equal(before, 0);
  await (async () => {
    for (let i = 0; i < 3; i++) {
      const enc = await runner.encode(features(runner.dims.nMels, i), 1);
      await decodeWindow(runner, w.tokenizer, enc, { sampleLen: 6, beamSize: 2, withoutTimestamps: true });
    }
  })();
  const held = (await runner.stats()).handles;
  let left = held;
  for (let i = 0; i < 50 && left > 0; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
    left = (await runner.stats()).handles;
  }
  assert.ok(held > 0, 'the decodes left handles in the worker before the GC');
  assert.equal(left, 0, `every handle freed after a GC (held ${held})`);
  // A handle still held is kept, and still works.
  const enc = await runner.encode(features(runner.dims.nMels, 9), 1);
  gc();
  await new Promise((r) => setTimeout(r, 20));
  const out = await runner.decode(BigInt64Array.of(50257n), 1, enc, null);
  assert.equal(out.cache.length, 1);
  // Handles the caller says it is done with go at once, without a GC, and only once.
  const now = (await runner.stats()).handles;
  runner.finish(out.cache);
  runner.finish(out.cache);
  assert.equal((await runner.stats()).handles, now - 1);
  runner.finish(enc);
  assert.equal((await runner.stats()).handles, now - 2);
  await assert.rejects(runner.decode(BigInt64Array.of(50257n), 1, enc, null), /unknown to the model worker/);
});

test('typed errors from the worker arrive typed; foreign handles are refused', async (t) => {
  const w = await loadWhisper(testModelDir({ preset: 'english' }));
  const runner = await startFor(w);
  t.after(() => runner.release());
  const enc = await runner.encode(features(runner.dims.nMels, 0), 1);
  await assert.rejects(
    runner.decode(BigInt64Array.of(BigInt(runner.dims.vocabSize + 5)), 1, enc, null),
    (e) => isEarshotError(e) && e.kind === 'invalid_argument' && e.code === 'bad_model_call' && /vocabulary/.test(e.message),
  );
  await assert.rejects(runner.encode(new Float32Array(7), 1), (e) => isEarshotError(e) && e.code === 'bad_model_call');
  // The test model's decoder has no cross-attention outputs: word timing's typed error crosses too.
  await assert.rejects(
    runner.crossAttentions([50257, 440], enc, [[0, 0]]),
    (e) => isEarshotError(e) && e.kind === 'invalid_argument' && e.code === 'no_cross_attentions',
  );
  // Handles of another model (its own worker) are refused before anything is sent.
  const other = await w.model.encode(features(runner.dims.nMels, 0), 1);
  await assert.rejects(runner.decode(BigInt64Array.of(50257n), 1, other, null), (e) => isEarshotError(e) && e.code === 'bad_model_call');
  const first = await runner.decode(BigInt64Array.of(50257n), 1, enc, null);
  assert.throws(() => runner.selectRows(first.cache, [1]), RangeError);
  // The runner still works after all that.
  assert.equal((await runner.decode(BigInt64Array.of(440n), 1, enc, first.cache)).cache.length, 2);
});

test('a worker that dies fails pending calls with a typed error and marks the runner failed', async () => {
  const w = await loadWhisper(testModelDir({ preset: 'english' }));
  // Batches wait up to a minute for company, so the calls below are queued in the worker, not
  // running: ending a thread during an onnxruntime run would abort the whole process.
  const runner = await startFor(w, { maxWaitMs: 60_000, maxBatch: 4, maxEncodeBatch: 4 });
  const failures: unknown[] = [];
  runner.onFailure((e) => failures.push(e));
  const pending = [runner.encode(features(runner.dims.nMels, 1), 1), runner.encode(features(runner.dims.nMels, 2), 1)];
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await Promise.race([...pending, new Promise((r) => setTimeout(() => r('waiting'), 50))])), 'waiting');
  // The thread ends under them (as an uncaught error or the heap limit would end it).
  await (runner as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
  for (const p of pending) {
    await assert.rejects(p, (e) => isEarshotError(e) && e.kind === 'internal' && e.code === 'model_worker_failed');
  }
  assert.equal(failures.length, 1);
  assert.ok(isEarshotError(runner.failed));
  await assert.rejects(runner.encode(features(runner.dims.nMels, 2), 1), (e) => isEarshotError(e) && e.code === 'model_worker_failed');
  await runner.release();
});

test('release closes the model: later calls are refused, no failure is reported', async () => {
  const w = await loadWhisper(testModelDir({ preset: 'english' }));
  const runner = await startFor(w);
  const failures: unknown[] = [];
  runner.onFailure((e) => failures.push(e));
  await runner.encode(features(runner.dims.nMels, 0), 1);
  await runner.release();
  await assert.rejects(runner.encode(features(runner.dims.nMels, 0), 1), (e) => isEarshotError(e) && e.code === 'model_released');
  assert.equal(failures.length, 0);
  assert.equal(runner.failed, null);
});

test('a job withdrawn from the work queue drops its calls waiting in the worker: they reject with its reason and never run', async (t) => {
  const w = await loadWhisper(testModelDir({ preset: 'english' }));
  const runner = await startFor(w, { maxWaitMs: 1 });
  t.after(() => runner.release());
  const queue = modelQueue(runner, { concurrency: 4 });
  const f = (seed: number) => features(runner.dims.nMels, seed);
  // Three jobs at once: the first's encoder run starts; the other two wait behind it in the worker.
  const jobs = [new AbortController(), new AbortController(), new AbortController()];
  const runs = jobs.map((ac, i) => queue.run((r) => r.encode(f(i), 1), { priority: 15, signal: ac.signal }));
  const reason = new Error('speech resumed');
  jobs[1]!.abort(reason);
  await assert.rejects(runs[1]!, (e) => e === reason);
  await Promise.all([runs[0], runs[2]]);
  const s = await runner.stats();
  assert.deepEqual([s.runs.encode, s.pending], [2, 0], 'two encoder runs: the withdrawn one never ran');
});
