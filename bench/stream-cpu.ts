// `npm run bench -- stream-cpu [--seconds S] [--streams N] [--sample-len T]`: the CPU a live stream
// costs per second of its audio. N streams (default 2) are fed speech with pauses at real-time pace
// (bench/streams.ts's runLevel, the tiny-dims test model, the shared queue) and two figures are
// taken per second of audio per stream:
// - the process's CPU time (process.cpuUsage: every thread, the model's included);
// - the log-mel front end's own CPU time: the synchronous log-mel calls a stream makes are timed
//   with the main thread's own CPU clock (/proc's schedstat for the thread, less the cost of reading
//   it; wall time where there is no /proc, which preemption inflates under load). Both the
//   whole-window extractor (LogMelExtractor.window) and the incremental one (IncrementalLogMel)
//   are timed, so the figure is comparable before and after streams went incremental.
// The log-mel figure is the one the incremental front end changes; the process figure puts it in
// proportion to the model's work. Under load, partials are dropped, and a dropped partial computes
// no mel: the live figure depends on how many were decoded (printed with it). So the front end is
// also measured alone, deterministically, both ways in the same run: each clip of the same speech
// is an utterance with a partial every 500 ms of its audio (none dropped) and a final at its end;
// the whole-window way computes LogMelExtractor.window of the audio so far at each, the incremental
// way pushes the audio in the session's 200 ms slices into an IncrementalLogMel and reads it there.
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { testModelDir } from '../scripts/test-model/index.ts';
import * as features from '../src/features/index.ts';
import { modelQueue, type Whisper } from '../src/runtime/loaded-model.ts';
import { loadWhisper } from '../src/runtime/model-cache.ts';
import { loadSileroVad } from '../src/vad/silero.ts';
import { log } from '../src/log.ts';
import { decodeAudio } from '../src/audio/index.ts';
import { runLevel, speechWithPauses, STREAM_CLIPS } from './streams.ts';

const SR = 16000;
const PARTIAL_EVERY = SR / 2;
const SLICE = SR / 5;
const CLIPS_DIR = new URL('../../shared/audio/real-en/', import.meta.url).pathname;

/** The main thread's CPU ms for `work`: the median of 3 runs (the process's other threads, GC's included, are not counted). */
function cpuMs(work: () => void): number {
  const clock = threadClock();
  const runs = [0, 1, 2].map(() => {
    const t = clock();
    work();
    return clock() - t;
  });
  return runs.sort((a, b) => a - b)[1]!;
}

/** The front end alone, both ways (see the header): main-thread CPU ms per second of audio. */
function frontEnd(extractor: features.LogMelExtractor, clips: Float32Array[]): { whole: number; incremental: number } {
  const seconds = clips.reduce((a, c) => a + c.length, 0) / SR;
  const whole = cpuMs(() => {
    for (const c of clips) {
      for (let l = PARTIAL_EVERY; l < c.length; l += PARTIAL_EVERY) extractor.window(c.subarray(0, l));
      extractor.window(c);
    }
  });
  const incremental = cpuMs(() => {
    for (const c of clips) {
      const mel = new features.IncrementalLogMel(extractor);
      let due = PARTIAL_EVERY;
      for (let at = 0; at < c.length; at += SLICE) {
        mel.push(c.subarray(at, at + SLICE));
        if (mel.received >= due && mel.received < c.length) {
          mel.window();
          due += PARTIAL_EVERY;
        }
      }
      mel.window();
    }
  });
  return { whole: whole / seconds, incremental: incremental / seconds };
}

const SCHEDSTAT = `/proc/self/task/${process.pid}/schedstat`;

/** The main thread's CPU clock in ms (its wall clock where /proc has no schedstat for it). */
function threadClock(): () => number {
  try {
    readFileSync(SCHEDSTAT);
    return () => Number(readFileSync(SCHEDSTAT, 'latin1').split(' ')[0]) / 1e6;
  } catch {
    return () => performance.now();
  }
}

/** Wraps the log-mel classes' push and window with a CPU timer; returns the ms spent in them so far. */
function timeMel(): () => number {
  const clock = threadClock();
  // What one timing costs by itself, taken off each call.
  let overhead = 0;
  for (let i = 0; i < 200; i++) {
    const t = clock();
    overhead += clock() - t;
  }
  overhead /= 200;
  let ms = 0;
  const classes = [features.LogMelExtractor, (features as Record<string, unknown>).IncrementalLogMel].filter(Boolean) as { prototype: Record<string, unknown> }[];
  for (const c of classes) {
    for (const name of ['window', 'push']) {
      const f = c.prototype[name];
      if (typeof f !== 'function') continue;
      c.prototype[name] = function (this: unknown, ...args: unknown[]) {
        const t = clock();
        try {
          return f.apply(this, args);
        } finally {
          ms += Math.max(0, clock() - t - overhead);
        }
      };
    }
  }
  return () => ms;
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: 'string', default: '20' },
      streams: { type: 'string', default: '2' },
      'sample-len': { type: 'string', default: '8' },
    },
  });
  const seconds = Number(values.seconds);
  const n = Number(values.streams);
  const sampleLen = Number(values['sample-len']);
  if (![seconds, n, sampleLen].every((v) => Number.isInteger(v) && v >= 1)) throw new Error('--seconds, --streams and --sample-len must be positive integers');
  log.level = 'warn';
  const base = await loadWhisper(testModelDir({ preset: 'multilingual', dims: 'tiny' }), {});
  const vad = await loadSileroVad();
  const audio = await speechWithPauses(seconds);
  const fresh = (): Whisper => ({ ...base, queue: modelQueue(base.runner, { concurrency: base.queue.concurrency, lane: base.queue.lane, maxWaiting: 10000 }) });
  const clips = await Promise.all(STREAM_CLIPS.map(async (c) => (await decodeAudio(`${CLIPS_DIR}${c}.wav`)).samples));
  frontEnd(base.features, clips); // warm-up
  const fe = frontEnd(base.features, [...clips, ...clips]);
  const melMs = timeMel();
  console.log(`load average before the run: ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`);
  console.log(
    `front end alone, a partial every 500 ms and a final per clip: whole window ${fe.whole.toFixed(2)} ms CPU per second of audio, ` +
      `incremental ${fe.incremental.toFixed(2)} ms (${(fe.whole / fe.incremental).toFixed(1)}x less)`,
  );
  console.log(`tiny-dims multilingual test model, ${n} streams of ${seconds} s of speech with pauses at real-time pace, sampleLen ${sampleLen}`);
  await runLevel(fresh(), vad, audio.subarray(0, 3 * SR), 1, sampleLen); // warm-up
  const cpu0 = process.cpuUsage();
  const mel0 = melMs();
  const r = await runLevel(fresh(), vad, audio, n, sampleLen);
  const cpu = process.cpuUsage(cpu0);
  const streamSeconds = seconds * n;
  const processMs = (cpu.user + cpu.system) / 1000 / streamSeconds;
  const mel = (melMs() - mel0) / streamSeconds;
  console.log(
    `per second of audio per stream: process CPU ${processMs.toFixed(1)} ms, log-mel calls ${mel.toFixed(2)} ms ` +
      `(${r.partials} partials, ${r.dropped} dropped, ${r.finals} finals)`,
  );
}
