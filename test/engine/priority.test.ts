// One priority for each piece of model work: the rules, and that a job queued at a priority makes
// its model calls at that same priority (moved here from the transcribe test, where transcribe
// used to pick its own).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { decodeAudio } from '../../src/audio/index.ts';
import { transcribeAll } from '../../src/decoding/transcribe.ts';
import { deviceBatchLimits } from '../../src/engine/batch-policy.ts';
import { jobPriority, laneOf, requestPriority, STREAM_FINAL, STREAM_PARTIAL, STREAM_SPECULATION } from '../../src/engine/priority.ts';
import type { ModelRunner } from '../../src/engine/model-types.ts';
import { modelQueue } from '../../src/runtime/loaded-model.ts';
import { loadWhisper } from '../../src/runtime/model-cache.ts';
import { JFK } from '../audio/support.ts';

const S = 16000;

test('streams before requests before jobs; shorter audio first among requests and among jobs', () => {
  assert.ok(STREAM_FINAL > STREAM_SPECULATION && STREAM_SPECULATION > STREAM_PARTIAL && STREAM_PARTIAL > 0);
  assert.equal(requestPriority(11 * S), -1);
  assert.equal(requestPriority(65 * S), -3);
  assert.equal(requestPriority(0), -1, 'no audio still counts one window');
  assert.ok(requestPriority(3 * 3600 * S) > jobPriority(1 * S), 'a 3 h request before a 1 s job');
  assert.ok(jobPriority(11 * S) > jobPriority(65 * S));
});

test("a queued job's model calls carry the priority it was queued at", async () => {
  const w = await loadWhisper(testModelDir({ preset: 'english' }));
  const asked: number[] = [];
  const runner: ModelRunner = {
    dims: w.runner.dims,
    encode: w.runner.encode.bind(w.runner),
    decode: w.runner.decode.bind(w.runner),
    selectRows: w.runner.selectRows.bind(w.runner),
    withPriority: (p: number) => {
      asked.push(p);
      return w.runner.withPriority!(p);
    },
  };
  const queue = modelQueue(runner, { concurrency: 1 });
  const opts = { temperature: 0, sampleLen: 2, withoutTimestamps: true };
  const audio = (await decodeAudio(JFK)).samples; // 11 s: one window
  const long = new Float32Array(65 * S); // three windows
  for (let at = 0; at < long.length; at += audio.length) long.set(audio.subarray(0, long.length - at), at);
  for (const [samples, priority] of [[audio, requestPriority(audio.length)], [long, requestPriority(long.length)], [audio, STREAM_FINAL], [audio, jobPriority(audio.length)]] as const) {
    const t = await queue.run((r) => transcribeAll({ ...w, runner: r }, samples, opts), { priority });
    assert.equal(t.language, 'en');
  }
  assert.deepEqual(asked, [-1, -3, STREAM_FINAL, jobPriority(audio.length)]);
});

test("on the CPU a loaded model's queue runs one stream job at a time, and a final withdraws a running partial; on a GPU a batch of them", async () => {
  const cpu = deviceBatchLimits('cpu');
  const gpu = deviceBatchLimits('webgpu');
  for (const kind of [STREAM_PARTIAL, STREAM_SPECULATION, STREAM_FINAL]) {
    assert.deepEqual(laneOf(kind, cpu.streamJobs, cpu.maxBatch), { name: 'streams', size: 1 });
    assert.deepEqual(laneOf(kind, gpu.streamJobs, gpu.maxBatch), { name: 'streams', size: gpu.maxBatch });
  }
  assert.equal(laneOf(requestPriority(S), cpu.streamJobs, cpu.maxBatch), null, 'requests keep the whole batch: their steps share runs');
  assert.equal(laneOf(jobPriority(S), cpu.streamJobs, cpu.maxBatch), null);

  const w = await loadWhisper(testModelDir({ preset: 'english' }), { engine: { device: 'cpu' } });
  const started: string[] = [];
  const withdrawn: string[] = [];
  const partial = (name: string) => {
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    const job = w.queue.run(async () => {
      started.push(name);
      await done;
    }, { priority: STREAM_PARTIAL, preempt: () => { withdrawn.push(name); release(); } });
    return { job, release };
  };
  const a = partial('partial a');
  const b = partial('partial b');
  const request = w.queue.run(async () => started.push('request'), { priority: requestPriority(S) });
  await request;
  assert.deepEqual(started, ['partial a', 'request'], 'a second partial waits for the first; a request does not');
  const final = w.queue.run(async () => started.push('final'), { priority: STREAM_FINAL });
  await Promise.all([a.job, final]);
  assert.deepEqual(withdrawn, ['partial a'], 'the final withdrew the running partial');
  assert.deepEqual(started.slice(0, 3), ['partial a', 'request', 'final'], 'and ran before the waiting partial');
  b.release();
  await b.job;
  assert.deepEqual(started, ['partial a', 'request', 'final', 'partial b']);
});
