// `npm run bench -- stream-cpu [--seconds S] [--streams N] [--sample-len T]`: the CPU a live stream
// costs per second of its audio. N streams (default 2) are fed speech with pauses at real-time pace
// (bench/streams.ts's runLevel, the tiny-dims test model, the shared queue) and two figures are
// taken per second of audio per stream:
// - the process's CPU time (process.cpuUsage: every thread, the model's included);
// - the log-mel front end's own time: the synchronous log-mel calls a stream makes are timed
//   (their wall time on the main thread, which is their CPU time but for preemption). Both the
//   whole-window extractor (LogMelExtractor.window) and the incremental one (IncrementalLogMel)
//   are timed, so the figure is comparable before and after streams went incremental.
// The log-mel figure is the one the incremental front end changes; the process figure puts it in
// proportion to the model's work.
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { testModelDir } from '../scripts/test-model/index.ts';
import * as features from '../src/features/index.ts';
import { modelQueue, type Whisper } from '../src/runtime/loaded-model.ts';
import { loadWhisper } from '../src/runtime/model-cache.ts';
import { loadSileroVad } from '../src/vad/silero.ts';
import { log } from '../src/log.ts';
import { runLevel, speechWithPauses } from './streams.ts';

const SR = 16000;

/** Wraps the named methods of the log-mel classes with a timer; returns the milliseconds spent in them so far. */
function timeMel(): () => number {
  let ms = 0;
  const classes = [features.LogMelExtractor, (features as Record<string, unknown>).IncrementalLogMel].filter(Boolean) as { prototype: Record<string, unknown> }[];
  for (const c of classes) {
    for (const name of ['window', 'push']) {
      const f = c.prototype[name];
      if (typeof f !== 'function') continue;
      c.prototype[name] = function (this: unknown, ...args: unknown[]) {
        const t = performance.now();
        try {
          return f.apply(this, args);
        } finally {
          ms += performance.now() - t;
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
  const fresh = (): Whisper => ({ ...base, queue: modelQueue(base.runner, { concurrency: base.queue.concurrency, maxWaiting: 10000 }) });
  const melMs = timeMel();
  console.log(`load average before the run: ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`);
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
    `per second of audio per stream: process CPU ${processMs.toFixed(1)} ms, log-mel ${mel.toFixed(2)} ms ` +
      `(${r.partials} partials, ${r.dropped} dropped, ${r.finals} finals)`,
  );
}
