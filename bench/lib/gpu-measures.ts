// The GPU bench's three measures, each for one model size on one device; bench/gpu.ts runs each in a
// child process of its own (a driver crash or a stuck run then costs one measure, not the run).
// - kernels: encoder ms per run at each batch, decoder ms per cached step at each batch, on the
//   bare model in this thread;
// - throughput: concurrent 30 s requests through earshot's scheduler as loadWhisper sets it up on
//   the device (bench/concurrency.ts's equal work and code);
// - streams: the most real-time streams (bench/streams.ts's code) at end-of-speech → final p95 ≤
//   300 ms, levels tried in order up to the first that misses.
// Each device runs at the dtype a user gets there by default (the GPU fp16, the CPU fp32: the rule
// of src/models/dtype.ts, applied by the model store as for any load), or at `--dtype` where given;
// every figure records its dtype per device.
import { type DimsName, DTYPES as BUILDER_DTYPES, testModelDir, type Dtype as BuilderDtype } from '../../scripts/test-model/index.ts';
import { type Device, parseEngineOptions } from '../../src/engine/execution.ts';
import { WhisperModel } from '../../src/engine/whisper-model.ts';
import { COMPONENTS, formatDtypeSpec, parseDtypeSpec } from '../../src/models/dtype.ts';
import { resolveModel, type ResolvedModel } from '../../src/models/index.ts';
import { modelQueue } from '../../src/runtime/loaded-model.ts';
import { loadWhisper, unloadAll } from '../../src/runtime/model-cache.ts';
import { loadSileroVad } from '../../src/vad/silero.ts';
import { concurrent, equalWork, rate, speech } from '../concurrency.ts';
import { quantile, runLevel, speechWithPauses } from '../streams.ts';
import { decoderStepMs, encoderMs } from './gpu-kernels.ts';
import type { Results } from './gpu-results.ts';

const RATE = 16000;
export const STREAM_P95_S = 0.3;

export interface MeasureSettings {
  encoderBatches: number[];
  decoderBatches: number[];
  steps: number;
  requests: number;
  budget: number;
  streamLevels: number[];
  streamSeconds: number;
  sampleLen: number;
  cpuThreads: number;
  clips?: string;
  /** `--dtype`: every device at this dtype (e.g. fp32, like for like); absent: each device's default. */
  dtype?: string;
}

/** On a GPU, encoder runs queued back to back per wait for the device (gpu-kernels.ts's encoderMs). */
const ENCODER_RUNS_PER_SYNC = 8;

export const MEASURES = ['kernels', 'throughput', 'streams'] as const;
export type Measure = (typeof MEASURES)[number];

/**
 * The test model of `dims`, one folder for every device: fp32 and fp16 files (the fp16 ones in the
 * plain form, float32 I/O, as the hub's keep_io_types conversions), and the dtypes of `asked` that
 * the builder writes (q8, int8); a dtype it does not write is refused by the model store's check.
 */
export function modelDir(dims: string, asked?: string): string {
  const named = asked ? parseDtypeSpec(asked, { encoder: 'fp32', decoder: 'fp32' }) : undefined;
  const extra = COMPONENTS.map((c) => named?.[c]).filter((d): d is BuilderDtype => (BUILDER_DTYPES as readonly string[]).includes(d ?? ''));
  return testModelDir({ preset: 'multilingual', dims: dims as DimsName, dtypes: ['fp16', ...extra] });
}

/**
 * The files `device` loads for `dims`: the model store's choice for a load on that device (a GPU:
 * fp16, the CPU: the model's default, fp32), or `asked`. The paths come from the hub's names
 * (src/models/dtype.ts's suffix table).
 */
export function benchModel(dims: string, device: Device, asked?: string): Promise<ResolvedModel> {
  return resolveModel(modelDir(dims, asked), { ...(asked ? { dtype: asked } : {}), gpu: device !== 'cpu' });
}
export const throughputName = (requests: number): string => `${requests} concurrent 30 s requests`;
export const STREAMS_NAME = `real-time streams at final p95 ≤ ${STREAM_P95_S * 1000} ms`;

/** Runs `measure` for `dims` on `device`, recording into `r`. */
export async function runMeasure(measure: Measure, dims: string, device: Device, s: MeasureSettings, r: Results): Promise<void> {
  const engine = { device, ...(device === 'cpu' ? { intraOpThreads: s.cpuThreads } : {}) };
  const clips = s.clips ? [s.clips] : [];
  if (measure === 'kernels') {
    const m = await benchModel(dims, device, s.dtype);
    const dtype = formatDtypeSpec(m.dtype);
    const model = await WhisperModel.load(m.dir, { encoder: m.encoderPath, decoder: m.decoderPath }, parseEngineOptions(engine));
    try {
      // One failed size (a buffer over the adapter's limits, say) is noted; the others still run.
      for (const b of s.encoderBatches) {
        await attempt(r, `${dims} encoder batch ${b} on ${device}`, async () => {
          const perSync = device === 'cpu' ? 1 : ENCODER_RUNS_PER_SYNC;
          const e = await encoderMs(model, b, Math.max(1000, (r.leftS - 10) * 100), perSync);
          r.put(dims, `encoder ms per run, batch ${b}`, 'ms', device, dtype, e.ms, { runs: e.runs, msPerWindow: e.ms / b, runsPerSync: perSync });
        });
      }
      for (const b of s.decoderBatches) {
        await attempt(r, `${dims} decoder batch ${b} on ${device}`, async () => {
          const st = await decoderStepMs(model, b, s.steps);
          r.put(dims, `decoder ms per step, batch ${b}`, 'ms/step', device, dtype, st.ms, { steps: st.steps, promptMs: st.promptMs });
        });
      }
    } finally {
      await model.release();
    }
    return;
  }
  // Loaded as a server loads it: with no --dtype, the store picks the device's default.
  const w = await loadWhisper(modelDir(dims, s.dtype), { engine, ...(s.dtype ? { dtype: s.dtype } : {}) });
  const dtype = formatDtypeSpec(w.resolved.dtype);
  // The model's own queue, as a server has it (as many jobs at once as a decoder run takes rows), unbounded.
  const queued = () => ({ ...w, queue: modelQueue(w.runner, { concurrency: w.queue.concurrency, lane: w.queue.lane, maxWaiting: 10000 }) });
  try {
    if (measure === 'throughput') {
      const long = await speech(30 + s.requests * 7, ...clips);
      const requests = Array.from({ length: s.requests }, (_, i) => long.slice(i * 7 * RATE, (i * 7 + 30) * RATE));
      await concurrent(queued(), requests.slice(0, 1), equalWork(s.budget)); // warm-up
      const l = await concurrent(queued(), requests, equalWork(s.budget));
      r.put(dims, throughputName(s.requests), 'audio s/s', device, dtype, rate(l), {
        wallS: l.wallMs / 1000,
        tokens: l.tokens,
        tokensPerWindow: s.budget,
        maxBatch: w.model.maxBatch,
        maxEncodeBatch: w.model.maxEncodeBatch,
        p50LatencyS: quantile(l.latenciesMs, 0.5) / 1000,
      });
      return;
    }
    const vad = await loadSileroVad();
    const audio = await speechWithPauses(s.streamSeconds, ...clips);
    await runLevel(queued(), vad, audio.subarray(0, 3 * RATE), 1, s.sampleLen); // warm-up
    let best = 0;
    const levels: Record<string, unknown>[] = [];
    for (const n of s.streamLevels) {
      if (r.leftS < s.streamSeconds + 15) {
        r.note(`stopped (time limit): ${dims} streams on ${device} before ${n} streams`);
        break;
      }
      const res = await runLevel(queued(), vad, audio, n, s.sampleLen);
      const p95 = quantile(res.latencies, 0.95);
      levels.push({ streams: n, p50Ms: quantile(res.latencies, 0.5) * 1000, p95Ms: p95 * 1000, ends: res.latencies.length, finals: res.finals, partials: res.partials, droppedPartials: res.dropped, drainS: res.drain });
      console.log(`  ${n} streams: p95 ${Math.round(p95 * 1000)} ms over ${res.latencies.length} ends`);
      // Recorded level by level, so a run stopped in the next one keeps this one.
      if (p95 <= STREAM_P95_S && res.finals > 0) best = n;
      r.put(dims, STREAMS_NAME, 'streams', device, dtype, best, { levels, sampleLen: s.sampleLen, streamSeconds: s.streamSeconds });
      if (best !== n) break;
    }
  } finally {
    await unloadAll();
  }
}

async function attempt(r: Results, what: string, fn: () => Promise<void>): Promise<void> {
  if (r.leftS < 15) return r.note(`skipped (time limit): ${what}`);
  try {
    await fn();
  } catch (e) {
    r.note(`failed: ${what}: ${(e as Error).message.split('\n')[0]}`);
  }
}
