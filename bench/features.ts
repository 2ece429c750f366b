// `npm run bench -- features [--reps N] [--long-seconds S]`: time per 30 s log-mel window, earshot
// against transformers.js's WhisperFeatureExtractor measured in the same run, and the cost of the
// long-form path (whole-file mel, then one slice per window). The input is synthetic (tones, chirp
// and noise, no silence), so no frame takes the zero-padding shortcut: the worst case.
import '../src/engine/telemetry-off.ts'; // first: transformers.js loads onnxruntime-node
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { env, LogLevel, WhisperFeatureExtractor } from '@huggingface/transformers';
import { LogMelExtractor, whisperFeatureConfig } from '../src/features/index.ts';

const RATE = 16000;

function signal(seconds: number): Float32Array {
  const out = new Float32Array(seconds * RATE);
  let seed = 12345;
  for (let i = 0; i < out.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const t = i / RATE;
    out[i] =
      0.3 * Math.sin(2 * Math.PI * 220 * t) +
      0.2 * Math.sin(2 * Math.PI * (300 + 100 * (t % 7)) * t) +
      0.05 * (seed / 2 ** 32 - 0.5);
  }
  return out;
}

function median(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Times `fn` once per rep (after warm-up); each time is the mean over `inner` calls. */
async function timings(reps: number, inner: number, fn: () => unknown): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    for (let j = 0; j < inner; j++) await fn();
    times.push((performance.now() - start) / inner);
  }
  return times;
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 100));

/**
 * Median time per call of `a` and `b`, measured alternately so that both see the same machine
 * load (the cores are shared). The pause before each timing lets onnxruntime's worker threads,
 * which transformers.js's matmul wakes and which spin for a while afterwards, go idle.
 */
async function interleaved(reps: number, a: () => unknown, b: () => unknown): Promise<[number[], number[]]> {
  await timings(3, 3, a);
  await timings(2, 1, b);
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < reps; i++) {
    await pause();
    ta.push(...(await timings(1, 3, a)));
    await pause();
    tb.push(...(await timings(1, 1, b)));
  }
  return [ta, tb];
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { reps: { type: 'string', default: '9' }, 'long-seconds': { type: 'string', default: '300' } },
  });
  const reps = Number(values.reps);
  const longSeconds = Number(values['long-seconds']);
  if (!Number.isInteger(reps) || reps < 1 || !Number.isInteger(longSeconds) || longSeconds < 30) {
    throw new Error('--reps must be a positive integer and --long-seconds an integer of at least 30');
  }
  env.logLevel = LogLevel.ERROR;
  const window = signal(30);
  const out = new Float32Array(128 * 3000);

  console.log(`load average before the run: ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores`);
  console.log(`log-mel, one 30 s window of non-silent audio, median of ${reps} alternating runs (after warm-up)`);
  for (const nMels of [80, 128] as const) {
    const ours = new LogMelExtractor(whisperFeatureConfig(nMels));
    const target = out.subarray(0, nMels * 3000);
    const reference = new WhisperFeatureExtractor({
      feature_size: nMels,
      sampling_rate: RATE,
      hop_length: 160,
      n_fft: 400,
      chunk_length: 30,
      n_samples: 480000,
      nb_max_frames: 3000,
    });
    const [oursTimes, refTimes] = await interleaved(
      reps,
      () => ours.window(window, target),
      () => reference(window),
    );
    const [oursMs, refMs] = [median(oursTimes), median(refTimes)];
    // The best runs are the ones least disturbed by other work on the machine.
    const [oursBest, refBest] = [Math.min(...oursTimes), Math.min(...refTimes)];
    console.log(
      `  ${nMels} mels: earshot ${oursMs.toFixed(2)} ms, transformers.js ${refMs.toFixed(1)} ms, ` +
        `ratio ${(refMs / oursMs).toFixed(1)}x faster ` +
        `(best runs: ${oursBest.toFixed(2)} ms vs ${refBest.toFixed(1)} ms, ${(refBest / oursBest).toFixed(1)}x)`,
    );
  }

  const ours = new LogMelExtractor(whisperFeatureConfig(80));
  const file = signal(longSeconds);
  const windows = longSeconds / 30;
  await timings(1, 1, () => ours.longForm(file));
  const wholeMs = median(await timings(Math.max(3, Math.ceil(reps / 3)), 1, () => ours.longForm(file)));
  const mel = ours.longForm(file);
  const target = out.subarray(0, 80 * 3000);
  let seek = 0;
  const slice = () => {
    mel.window(seek, 3000, target);
    seek = (seek + 2999) % mel.contentFrames;
  };
  await timings(3, 3, slice);
  const sliceMs = median(await timings(reps, 3, slice));
  console.log(`long-form, ${longSeconds} s file, 80 mels:`);
  console.log(
    `  whole-file mel ${wholeMs.toFixed(1)} ms = ${(wholeMs / windows).toFixed(2)} ms per 30 s of audio ` +
      `(30 s of zero padding included); slicing one window ${sliceMs.toFixed(2)} ms; ` +
      `total ${(wholeMs / windows + sliceMs).toFixed(2)} ms per window`,
  );
}
