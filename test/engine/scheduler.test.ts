// The batching scheduler on a built test model (random weights): windows decoded concurrently
// through it give what each gives decoded alone on the bare model, cohorts keep or copy their KV
// rows as they should, encoder batches equal single runs, a failing call rejects only its caller,
// priorities order a bounded batch, a cohort waits for its slow callers but not for finished ones,
// and nothing is left behind once every caller is done.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import type { Tensor } from 'onnxruntime-node';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { decodeWindow, type WindowDecodeOptions } from '../../src/decoding/decode-window.ts';
import { loadModelHere } from '../../src/runtime/loaded-model.ts';
import { loadWhisper } from '../../src/runtime/model-cache.ts';
import { BatchScheduler, type BatchableModel } from '../../src/engine/scheduler.ts';
import type { WhisperModel } from '../../src/engine/whisper-model.ts';
import type { ModelRunner } from '../../src/engine/model-types.ts';
import { isEarshotError } from '../../src/errors.ts';
import { type Recorded, recording, relDiff } from './recording.ts';
import { features } from './features.ts';

/** The test model with an in-process WhisperModel (the scheduler runs in front of one; loadWhisper's own is in a worker). */
const inProcess = new Map<string, Promise<WhisperModel>>();
const load = async () => {
  const w = await loadWhisper(testModelDir({ preset: 'multilingual' }));
  if (!inProcess.has(w.resolved.dir)) inProcess.set(w.resolved.dir, loadModelHere(w));
  return { ...w, model: await inProcess.get(w.resolved.dir)! };
};



/** Gap between the two largest finite values of each vocab-sized row. */
function topGaps(logits: Float32Array, vocab: number): number[] {
  const gaps: number[] = [];
  for (let r = 0; r < logits.length / vocab; r++) {
    let a = -Infinity;
    let b = -Infinity;
    for (let i = r * vocab; i < (r + 1) * vocab; i++) {
      const v = logits[i]!;
      if (v > a) [a, b] = [v, a];
      else if (v > b) b = v;
    }
    if (Number.isFinite(b)) gaps.push(a - b);
  }
  return gaps;
}

const NEAR_TIE = 1e-3;

/**
 * Compares one window decoded alone with the same window decoded in a batch: identical inputs and
 * logits within 1e-4 relative up to the first divergence, which must follow a near-tie.
 * Returns the number of near-ties seen in the alone run and whether the results diverged.
 */
function compareRuns(alone: Recorded, batched: Recorded, vocab: number, what: string): { nearTies: number; steps: number; diverged: boolean } {
  let nearTies = 0;
  let steps = 0;
  for (const f of alone.filtered) {
    for (const g of topGaps(f, vocab)) {
      steps++;
      if (g < NEAR_TIE) nearTies++;
    }
  }
  const n = Math.min(alone.inputs.length, batched.inputs.length);
  for (let i = 0; i < n; i++) {
    if (alone.inputs[i]!.join(',') !== batched.inputs[i]!.join(',')) {
      assert.ok(i > 0, `${what}: the prompts differ`);
      const gaps = topGaps(alone.filtered[i - 1]!, vocab);
      assert.ok(gaps.some((g) => g < NEAR_TIE), `${what}: diverged at call ${i} without a near-tie (gaps ${gaps.join(', ')})`);
      return { nearTies, steps, diverged: true };
    }
    const d = relDiff(batched.raw[i]!, alone.raw[i]!);
    assert.ok(d <= 1e-4, `${what}: logits of call ${i} differ by ${d} relative`);
  }
  assert.equal(batched.inputs.length, alone.inputs.length, `${what}: as many decoder calls`);
  return { nearTies, steps, diverged: false };
}

test('windows decoded together through the scheduler match each decoded alone (greedy, timestamps, beam)', async (t) => {
  const w = await load();
  const model = w.model;
  const sched = new BatchScheduler(model, { maxWaitMs: 5 });
  const vocab = model.dims.vocabSize;
  const base: WindowDecodeOptions = { language: 'en', withoutTimestamps: true };
  const cases: { name: string; seed: number; opts: WindowDecodeOptions }[] = [
    // Same prompt length: these share prompt and step runs; different lengths leave at different steps.
    ...[12, 8, 12, 4].map((sampleLen, i) => ({ name: `greedy ${i}`, seed: i, opts: { ...base, sampleLen } })),
    ...[10, 6].map((sampleLen, i) => ({ name: `timestamps ${i}`, seed: i, opts: { language: 'en', sampleLen } })),
    ...[3, 2].map((beamSize, i) => ({ name: `beam ${beamSize}`, seed: 1 + i, opts: { ...base, sampleLen: 8, beamSize } })),
    { name: 'greedy with prompt', seed: 3, opts: { ...base, sampleLen: 6, prompt: [440, 2068, 7586] } },
  ];
  // Both sides read the same encoder outputs (encoder batching is checked on its own below).
  const encodedBySeed = await Promise.all([0, 1, 2, 3].map((seed) => model.encode(features(model.dims.nMels, seed), 1)));

  const alone: Recorded[] = [];
  const aloneTokens: number[][] = [];
  for (const c of cases) {
    const encoded = encodedBySeed[c.seed]!;
    const r = recording(model, { logits: true });
    aloneTokens.push((await decodeWindow(r.runner, w.tokenizer, encoded, c.opts)).tokens);
    alone.push(r.rec);
  }

  const batched = await Promise.all(
    cases.map(async (c) => {
      const r = recording(sched, { logits: true });
      const encoded = encodedBySeed[c.seed]!;
      const out = await decodeWindow(r.runner, w.tokenizer, encoded, c.opts);
      return { rec: r.rec, tokens: out.tokens };
    }),
  );

  let nearTies = 0;
  let steps = 0;
  let diverged = 0;
  cases.forEach((c, i) => {
    const cmp = compareRuns(alone[i]!, batched[i]!.rec, vocab, c.name);
    nearTies += cmp.nearTies;
    steps += cmp.steps;
    if (cmp.diverged) diverged++;
    else assert.deepEqual(batched[i]!.tokens, aloneTokens[i], `${c.name}: same tokens`);
  });
  const s = sched.stats();
  // Batching happened: far fewer runs than calls, and several rows per run.
  const calls = alone.reduce((n, r) => n + r.inputs.length, 0);
  assert.ok(s.runs.prompt + s.runs.step < calls / 2, `${s.runs.prompt + s.runs.step} runs for ${calls} calls`);
  t.diagnostic(`near-ties (top-2 gap < ${NEAR_TIE}): ${nearTies} of ${steps} decoded rows; windows diverged: ${diverged} of ${cases.length}`);
  t.diagnostic(`runs: ${JSON.stringify(s.runs)}, rows: ${JSON.stringify(s.rows)}, reused ${s.reused}, self copies ${s.selfCopies}, cross copies ${s.crossCopies}`);
});

test('a cohort feeds its tensors back while whole, copies self rows on beam reorder and cross rows only when rows leave', async () => {
  const w = await load();
  const model = w.model;
  const opts: WindowDecodeOptions = { language: 'en', withoutTimestamps: true };
  const encodedBySeed = await Promise.all([0, 1, 2, 3].map((seed) => model.encode(features(model.dims.nMels, seed), 1)));
  const run = async (sched: BatchScheduler, list: { seed: number; o: WindowDecodeOptions }[]) =>
    Promise.all(
      list.map(async ({ seed, o }) => {
        const encoded = encodedBySeed[seed]!;
        return (await decodeWindow(sched, w.tokenizer, encoded, o)).tokens;
      }),
    );

  // Three windows of eight tokens: one prompt run, then seven step runs that reuse the tensors as they are.
  const whole = new BatchScheduler(model, { maxWaitMs: 20 });
  await run(whole, [0, 1, 2].map((seed) => ({ seed, o: { ...opts, sampleLen: 8 } })));
  let s = whole.stats();
  assert.deepEqual([s.runs.prompt, s.runs.step, s.reused, s.selfCopies, s.crossCopies], [1, 7, 7, 0, 0]);

  // The middle window stops after four tokens: one compaction (self and cross) when it leaves, then reuse again.
  const leaving = new BatchScheduler(model, { maxWaitMs: 20 });
  const lens = [8, 4, 8];
  const tokens = await run(leaving, lens.map((sampleLen, seed) => ({ seed, o: { ...opts, sampleLen } })));
  s = leaving.stats();
  assert.deepEqual([s.runs.prompt, s.runs.step, s.reused, s.selfCopies, s.crossCopies], [1, 7, 6, 1, 1]);
  assert.deepEqual(tokens.map((t) => t.length), lens);

  // Beam search: the first step copies the prompt row per beam; reorders copy self rows, never cross rows.
  const beam = new BatchScheduler(model, { maxWaitMs: 20 });
  const [beamTokens] = await run(beam, [{ seed: 3, o: { ...opts, sampleLen: 10, beamSize: 4 } }]);
  s = beam.stats();
  assert.equal(s.crossCopies, 1, 'cross rows copied once, for the beams of the prompt row');
  assert.ok(s.selfCopies >= 2, `self rows gathered on reorders (${s.selfCopies})`);
  const encoded = encodedBySeed[3]!;
  assert.deepEqual(beamTokens, (await decodeWindow(model, w.tokenizer, encoded, { ...opts, sampleLen: 10, beamSize: 4 })).tokens);

  // selectRows copies nothing and checks its rows.
  const first = await beam.decode(BigInt64Array.of(50258n), 1, encoded, null);
  const picked = beam.selectRows(first.cache, [0, 0]);
  assert.equal(picked.batch, 2);
  assert.throws(() => beam.selectRows(first.cache, [1]), RangeError);
  // Reading the rows out (what only foreign code does) gives the model's own row copies.
  assert.deepEqual(picked.self[0]!.dims, [2, ...first.cache.self[0]!.dims.slice(1)]);
});

test('batched encoder runs give the outputs of single runs', async () => {
  const w = await load();
  const model = w.model;
  const sched = new BatchScheduler(model, { maxWaitMs: 20, maxEncodeBatch: 3 });
  const inputs = [0, 1, 2, 3].map((seed) => features(model.dims.nMels, seed));
  // One window, two windows in one call (they stay together), one more: at most three per run.
  const [a, bc, d] = await Promise.all([
    sched.encode(inputs[0]!, 1),
    sched.encode(new Float32Array([...inputs[1]!, ...inputs[2]!]), 2),
    sched.encode(inputs[3]!, 1),
  ]);
  assert.deepEqual(sched.stats().runs.encode, 2);
  assert.deepEqual(sched.stats().rows.encode, 4);
  const per = (a.data as Float32Array).length;
  const outs = [a.data, (bc.data as Float32Array).subarray(0, per), (bc.data as Float32Array).subarray(per), d.data] as Float32Array[];
  assert.deepEqual(bc.dims, [2, ...a.dims.slice(1)]);
  for (let i = 0; i < inputs.length; i++) {
    const single = await model.encode(inputs[i]!, 1);
    assert.equal(outs[i]!.length, (single.data as Float32Array).length);
    assert.ok(relDiff(outs[i]!, single.data as Float32Array) < 1e-5, `window ${i}`);
  }
  await assert.rejects(sched.encode(new Float32Array(7), 1), isEarshotError);
});

test('a failing call rejects only its own caller', async () => {
  const w = await load();
  const model = w.model;
  const POISON = 1234n;
  // The real model, made to fail any run that contains one token: a batch holding it fails as a whole.
  const faulty: BatchableModel = {
    dims: model.dims,
    encode: (f, b) => model.encode(f, b),
    decode: (tokens, ...rest) => (tokens.includes(POISON) ? Promise.reject(new Error('poisoned run')) : model.decode(tokens, ...rest)),
  };
  const sched = new BatchScheduler(faulty, { maxWaitMs: 20 });
  const encoded = await model.encode(features(model.dims.nMels, 3), 1);
  const prompt = (extra: bigint) => BigInt64Array.of(50258n, 50259n, extra);
  const [good1, poisoned, good2, outOfVocab] = await Promise.allSettled([
    sched.decode(prompt(50359n), 1, encoded, null),
    sched.decode(prompt(POISON), 1, encoded, null),
    sched.decode(prompt(50360n), 1, encoded, null),
    sched.decode(prompt(999999n), 1, encoded, null),
  ]);
  assert.equal(poisoned.status, 'rejected');
  assert.match(String((poisoned as PromiseRejectedResult).reason), /poisoned run/);
  assert.equal(outOfVocab.status, 'rejected');
  assert.ok(isEarshotError((outOfVocab as PromiseRejectedResult).reason), 'checked before it reaches a batch');
  assert.equal(sched.stats().retries, 1);
  for (const [r, last] of [
    [good1, 50359n],
    [good2, 50360n],
  ] as const) {
    assert.equal(r.status, 'fulfilled');
    const alone = await model.decode(prompt(last), 1, encoded, null);
    assert.ok(relDiff(r.value.logits, alone.logits) < 1e-4);
  }
  // A mismatched cache is refused to its caller alone.
  const ok = (good1 as PromiseFulfilledResult<Awaited<ReturnType<typeof sched.decode>>>).value;
  await assert.rejects(sched.decode(BigInt64Array.of(1n, 2n), 2, encoded, ok.cache), isEarshotError);
});

test('a bounded run takes higher priority first, then arrival order', async () => {
  const w = await load();
  const model = w.model;
  const order: number[] = [];
  const logged: BatchableModel = {
    dims: model.dims,
    decode: (...a) => model.decode(...a),
    encode: async (f, b) => {
      order.push(Math.round(f[0]! * 1000));
      return model.encode(f, b);
    },
  };
  const sched = new BatchScheduler(logged, { maxBatch: 1, maxWaitMs: 1 });
  const marked = (mark: number) => {
    const f = new Float32Array(model.dims.nMels * 3000);
    f[0] = mark / 1000;
    return f;
  };
  const first = sched.encode(marked(1), 1);
  // Wait until the first run has started (its encode call is logged as it starts).
  while (order.length === 0) await new Promise((r) => setTimeout(r, 1));
  const rest = [sched.encode(marked(2), 1), sched.encode(marked(3), 1), sched.encode(marked(4), 1, { priority: 1 })];
  await Promise.all([first, ...rest]);
  assert.deepEqual(order, [1, 4, 2, 3]);
  // A stream's runner carries its priority on every call, prompt and steps included.
  const stream = sched.withPriority(2);
  const encoded = await stream.encode(marked(5), 1);
  const out = await stream.decode(BigInt64Array.of(50258n), 1, encoded, null);
  assert.equal((out.cache as unknown as { priority: number }).priority, 2);
});

test('nothing is left behind once every caller is done', async () => {
  const w = await load();
  const model = w.model;
  const sched = new BatchScheduler(model, { maxWaitMs: 5 });
  const refs: WeakRef<object>[] = [];
  await Promise.all(
    [0, 1, 2].map(async (seed) => {
      const encoded = await sched.encode(features(model.dims.nMels, seed), 1);
      const first = await sched.decode(BigInt64Array.of(50258n, 50259n, 50359n), 1, encoded, null);
      refs.push(new WeakRef((first.cache as unknown as { state: object }).state));
      let cache = first.cache;
      for (const t of [440n, 2068n]) cache = (await sched.decode(BigInt64Array.of(t), 1, encoded as Tensor, cache)).cache;
      refs.push(new WeakRef((cache as unknown as { state: object }).state));
      sched.finish(cache);
    }),
  );
  await new Promise((r) => setTimeout(r, 30));
  const s = sched.stats();
  assert.deepEqual([s.pending, s.awaiting, s.running, s.armed], [0, 0, false, false]);
  assert.equal(s.runs.prompt, 1);
  // A control object dropped here must go too, or the check below proves nothing.
  const control = new WeakRef({ dropped: true });
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // deref() keeps its target alive until the end of the job, so collect in jobs that never deref.
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 10));
    gc();
  }
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(control.deref(), undefined, 'the collector ran');
  assert.equal(refs.filter((r) => r.deref() !== undefined).length, 0, 'no KV state is kept once its callers let go');
});

test('a cohort waits for a slow caller, and not for one that finished', async () => {
  const w = await load();
  const model = w.model;
  const prompt = BigInt64Array.of(50258n, 50259n, 50359n);
  const encoded = await Promise.all([0, 1, 2].map((seed) => model.encode(features(model.dims.nMels, seed), 1)));
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  // One caller takes 60 ms over its logits before each step (a busy main thread): with a 3 ms wait
  // for company, only the cohort wait keeps its row in the others' runs.
  const sched = new BatchScheduler(model, { maxWaitMs: 3, maxCohortWaitMs: 2000 });
  await Promise.all(
    encoded.map(async (e, i) => {
      let cache = (await sched.decode(prompt, 1, e, null)).cache;
      for (const t of [440n, 2068n, 307n]) {
        if (i === 2) await pause(60);
        cache = (await sched.decode(BigInt64Array.of(t), 1, e, cache)).cache;
      }
      sched.finish(cache);
    }),
  );
  let s = sched.stats();
  assert.deepEqual([s.runs.prompt, s.runs.step, s.rows.step], [1, 3, 9]);

  // A caller that says it is done is not waited for, however long the cohort wait.
  const patient = new BatchScheduler(model, { maxWaitMs: 3, maxCohortWaitMs: 60_000 });
  const started = performance.now();
  await Promise.all(
    encoded.map(async (e, i) => {
      let cache = (await patient.decode(prompt, 1, e, null)).cache;
      if (i === 2) {
        patient.finish(cache);
        return;
      }
      for (const t of [440n, 2068n]) cache = (await patient.decode(BigInt64Array.of(t), 1, e, cache)).cache;
      patient.finish(cache);
    }),
  );
  s = patient.stats();
  assert.deepEqual([s.runs.prompt, s.runs.step, s.rows.step, s.awaiting], [1, 2, 4, 0]);
  assert.ok(performance.now() - started < 30_000, 'the finished caller was waited for');
});

test('lower-priority work waits for a higher-priority caller between its steps', async () => {
  const w = await load();
  const model = w.model;
  const prompt = BigInt64Array.of(50258n, 50259n, 50359n);
  const [a, b] = await Promise.all([0, 1].map((seed) => model.encode(features(model.dims.nMels, seed), 1)));
  const sched = new BatchScheduler(model, { maxWaitMs: 0, maxCohortWaitMs: 2000 });
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let lowSteps = 0;
  let highDone = false;
  let lowStepsWhenHighDone = -1;
  // The low caller starts once the high one has its prompt's answer, so their rows never share a run
  // (two prompts sent within a few ms of each other can, and then the low caller's steps would ride
  // along in the high caller's runs, which is allowed and not what this test is about).
  let highPrompted!: () => void;
  const prompted = new Promise<void>((r) => (highPrompted = r));
  const high = (async () => {
    let cache = (await sched.decode(prompt, 1, a!, null, { priority: 2 })).cache;
    highPrompted();
    for (const t of [440n, 2068n, 307n, 1029n]) {
      await pause(30); // a busy caller, slow to come back
      cache = (await sched.decode(BigInt64Array.of(t), 1, a!, cache, { priority: 2 })).cache;
    }
    sched.finish(cache);
    highDone = true;
    lowStepsWhenHighDone = lowSteps;
  })();
  const low = (async () => {
    await prompted;
    let cache = (await sched.decode(prompt, 1, b!, null)).cache;
    while (!highDone || lowSteps < 3) {
      cache = (await sched.decode(BigInt64Array.of(440n), 1, b!, cache)).cache;
      lowSteps++;
    }
    sched.finish(cache);
  })();
  await Promise.all([high, low]);
  // Without the rule the low caller would run several steps in each of the high caller's pauses.
  assert.ok(lowStepsWhenHighDone <= 1, `the low-priority caller ran ${lowStepsWhenHighDone} steps meanwhile`);
});

test('a final waits for at most one lower-priority run: the one running when it came', async () => {
  const w = await load();
  const model = w.model;
  const runs: string[] = [];
  const logged: BatchableModel = {
    dims: model.dims,
    encode: async (f, b) => {
      runs.push('encode');
      return model.encode(f, b);
    },
    decode: async (...a) => {
      runs.push('decode');
      return model.decode(...a);
    },
  };
  // The CPU's limits (one encoder window a run, so every encoder call is a full batch): partials'
  // encoder calls queued in front of a final must not run before it, nor between its steps.
  const sched = new BatchScheduler(logged, { maxWaitMs: 3, maxCohortWaitMs: 2000 });
  const encoded = await model.encode(features(model.dims.nMels, 0), 1);
  const partials = [sched.encode(features(model.dims.nMels, 1), 1, { priority: 10 })];
  while (runs.length === 0) await new Promise((r) => setTimeout(r, 1)); // the first partial runs
  for (const seed of [2, 3, 4]) partials.push(sched.encode(features(model.dims.nMels, seed), 1, { priority: 10 }));
  const final = sched.withPriority(20);
  const from = runs.length;
  let cache = (await final.decode(BigInt64Array.of(50258n, 50259n, 50359n), 1, encoded, null)).cache;
  for (const t of [440n, 2068n, 307n, 1029n]) {
    await new Promise((r) => setTimeout(r, 5)); // a caller away on the main thread between its steps
    cache = (await final.decode(BigInt64Array.of(t), 1, encoded, cache)).cache;
  }
  const during = runs.slice(from - 1, runs.length);
  final.finish(cache);
  await Promise.all(partials);
  assert.deepEqual(during, ['encode', 'decode', 'decode', 'decode', 'decode', 'decode'], 'the running partial, then the final alone');
  assert.deepEqual(runs.slice(during.length), ['encode', 'encode', 'encode'], 'the other partials after it');
});

test('a withdrawn job\'s waiting calls are dropped, never run, and reject as cancelled; a running one finishes', async () => {
  const w = await load();
  const model = w.model;
  let encodes = 0;
  const counted: BatchableModel = {
    dims: model.dims,
    decode: (...a) => model.decode(...a),
    encode: async (f, b) => {
      encodes++;
      return model.encode(f, b);
    },
  };
  const sched = new BatchScheduler(counted, { maxWaitMs: 1 });
  const running = new AbortController();
  const first = sched.withPriority(15, { order: 1, signal: running.signal }).encode(features(model.dims.nMels, 0), 1);
  while (encodes === 0) await new Promise((r) => setTimeout(r, 1));
  const queued = new AbortController();
  const second = sched.withPriority(15, { order: 2, signal: queued.signal }).encode(features(model.dims.nMels, 1), 1);
  queued.abort();
  running.abort(); // too late: its run has started
  await assert.rejects(second, (e) => isEarshotError(e) && e.code === 'call_cancelled');
  assert.deepEqual((await first).dims.slice(0, 1), [1]);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(encodes, 1, 'the withdrawn call never ran');
  await assert.rejects(sched.withPriority(15, { signal: queued.signal }).encode(features(model.dims.nMels, 2), 1), (e) => isEarshotError(e) && e.code === 'call_cancelled');
  assert.deepEqual([sched.stats().pending, encodes], [0, 1]);
});
