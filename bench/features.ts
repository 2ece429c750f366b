// `npm run bench -- features [--reps N] [--long-seconds S]`: time per 30 s log-mel window, earshot
// against transformers.js's WhisperFeatureExtractor measured in the same run, and the cost of the
// long-form path (whole-file mel, then one slice per window). The input is synthetic (tones, chirp
// and noise, no silence), so no frame takes the zero-padding shortcut: the worst case.
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

async function median(reps: number, warmup: number, fn: () => unknown): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { reps: { type: 'string', default: '9' }, 'long-seconds': { type: 'string', default: '300' } },
  });
  const reps = Math.max(1, Number(values.reps));
  const longSeconds = Math.max(30, Number(values['long-seconds']));
  env.logLevel = LogLevel.ERROR;
  const window = signal(30);
  const out = new Float32Array(128 * 3000);

  console.log(`log-mel, one 30 s window of non-silent audio, median of ${reps} (after warm-up)`);
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
    const oursMs = await median(reps * 3, 5, () => ours.window(window, target));
    const refMs = await median(reps, 2, () => reference(window));
    console.log(
      `  ${nMels} mels: earshot ${oursMs.toFixed(2)} ms, transformers.js ${refMs.toFixed(1)} ms, ` +
        `ratio ${(refMs / oursMs).toFixed(1)}x faster`,
    );
  }

  const ours = new LogMelExtractor(whisperFeatureConfig(80));
  const file = signal(longSeconds);
  const windows = longSeconds / 30;
  const wholeMs = await median(Math.max(3, Math.ceil(reps / 3)), 1, () => ours.longForm(file));
  const mel = ours.longForm(file);
  const target = out.subarray(0, 80 * 3000);
  let seek = 0;
  const sliceMs = await median(reps * 3, 5, () => {
    mel.window(seek, 3000, target);
    seek = (seek + 2999) % mel.contentFrames;
  });
  console.log(`long-form, ${longSeconds} s file, 80 mels:`);
  console.log(
    `  whole-file mel ${wholeMs.toFixed(1)} ms = ${(wholeMs / windows).toFixed(2)} ms per 30 s of audio ` +
      `(30 s of zero padding included); slicing one window ${sliceMs.toFixed(2)} ms; ` +
      `total ${(wholeMs / windows + sliceMs).toFixed(2)} ms per window`,
  );
}
