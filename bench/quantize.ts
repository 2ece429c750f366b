// `npm run bench -- quantize [--reps N] [--threads N] [--cache N] [--device D]`: one cached decoder step of the
// tiny-dims test model (Whisper tiny's shapes, random weights), fp32 against the int8 file that
// `earshot quantize` makes of it, both measured in this run, alternately, and the ratio printed.
// Also reports the time the quantisation itself takes and the file sizes.
import { rmSync, mkdtempSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { testModelDir } from '../scripts/test-model/index.ts';
import { type DeviceRequest, parseEngineOptions } from '../src/engine/execution.ts';
import { DEVICE_OPTION, deviceArg } from './lib/device-arg.ts';
import { WhisperModel } from '../src/engine/whisper-model.ts';
import type { DecoderCache } from '../src/engine/model-types.ts';
import { onnxFile, type Dtype } from '../src/models/dtype.ts';
import { quantizeFolder } from '../src/models/quantize/index.ts';
import { median, mib, pause } from './lib/stats.ts';

function positiveInt(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer of at least ${min}, got ${value}`);
  return n;
}

async function load(dir: string, dtype: Dtype, threads: number, device: DeviceRequest): Promise<WhisperModel> {
  const files = { encoder: join(dir, onnxFile('encoder', dtype)), decoder: join(dir, onnxFile('decoder', dtype)) };
  return WhisperModel.load(dir, files, parseEngineOptions({ intraOpThreads: threads, device }));
}

/** Encodes one window and fills the self-attention cache with `length` tokens: the state of a step mid-sentence. */
async function midSentence(model: WhisperModel, mel: Float32Array, length: number) {
  const encoded = await model.encode(mel, 1);
  const prompt = BigInt64Array.from({ length }, (_, i) => BigInt(i === 0 ? 50257 : 300 + i));
  const { cache } = await model.decode(prompt, 1, encoded, null);
  return { encoded, cache };
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { reps: { type: 'string', default: '15' }, threads: { type: 'string', default: '0' }, cache: { type: 'string', default: '32' }, ...DEVICE_OPTION },
  });
  const device = deviceArg(values.device);
  const reps = positiveInt('reps', values.reps, 1);
  const threads = positiveInt('threads', values.threads, 0);
  const cacheLength = positiveInt('cache', values.cache, 1);

  console.log(`load average before the run: ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`);
  const src = testModelDir({ preset: 'english', dims: 'tiny' });
  const out = mkdtempSync(join(tmpdir(), 'earshot-bench-quantize-'));
  try {
    const started = performance.now();
    const q = quantizeFolder(src, { to: 'int8', outDir: out });
    console.log(`quantised the tiny-dims model in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    for (const g of q.graphs) console.log(`  ${g.component}: ${mib(g.sourceBytes)} -> ${mib(g.targetBytes)}`);

    const mel = Float32Array.from({ length: 80 * 3000 }, (_, i) => 0.5 * Math.sin(i * 0.001) - 0.2);
    const models = { fp32: await load(src, 'fp32', threads, device), int8: await load(out, 'int8', threads, device) };
    const states = { fp32: await midSentence(models.fp32, mel, cacheLength), int8: await midSentence(models.int8, mel, cacheLength) };
    const token = BigInt64Array.of(400n);
    const step = async (k: 'fp32' | 'int8', cache: DecoderCache): Promise<number> => {
      const t = performance.now();
      await models[k].decode(token, 1, states[k].encoded, cache);
      return performance.now() - t;
    };
    const times: Record<'fp32' | 'int8', number[]> = { fp32: [], int8: [] };
    for (let i = 0; i < 3; i++) for (const k of ['fp32', 'int8'] as const) await step(k, states[k].cache);
    for (let i = 0; i < reps; i++) {
      for (const k of ['fp32', 'int8'] as const) {
        await pause(20);
        // Each sample is the mean of 5 steps on the same cache (the same work every time).
        let sum = 0;
        for (let j = 0; j < 5; j++) sum += await step(k, states[k].cache);
        times[k].push(sum / 5);
      }
    }
    const [f, n] = [median(times.fp32), median(times.int8)];
    console.log(`decoder step (batch 1, ${cacheLength} cached tokens), median of ${reps} alternating samples:`);
    console.log(`  fp32 ${f.toFixed(2)} ms   int8 ${n.toFixed(2)} ms   int8 is ${(f / n).toFixed(2)}x the speed of fp32`);
    await Promise.all([models.fp32.release(), models.int8.release()]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
