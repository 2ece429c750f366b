// The GPU bench's three measures, each for one model size on one device; bench/gpu.ts runs each in a
// child process of its own (a driver crash or a stuck run then costs one measure, not the run).
// - kernels: encoder ms per run at each batch, decoder ms per cached step at each batch, on the
//   bare model in this thread;
// - throughput: concurrent 30 s requests through earshot's scheduler as loadWhisper sets it up on
//   the device (bench/concurrency.ts's equal work and code);
// - streams: the most real-time streams (bench/streams.ts's code) at end-of-speech → final p95 ≤
//   300 ms, levels tried in order up to the first that misses.
import { type DimsName, testModelDir } from '../../scripts/test-model/index.ts';
import { type Device, parseEngineOptions } from '../../src/engine/execution.ts';
import { WhisperModel } from '../../src/engine/whisper-model.ts';
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
}

export const MEASURES = ['kernels', 'throughput', 'streams'] as const;
export type Measure = (typeof MEASURES)[number];

export const modelDir = (dims: string): string => testModelDir({ preset: 'multilingual', dims: dims as DimsName });
export const throughputName = (requests: number): string => `${requests} concurrent 30 s requests`;
export const STREAMS_NAME = `real-time streams at final p95 ≤ ${STREAM_P95_S * 1000} ms`;

/** Runs `measure` for `dims` on `device`, recording into `r`. */
export async function runMeasure(measure: Measure, dims: string, device: Device, s: MeasureSettings, r: Results): Promise<void> {
  const engine = { device, ...(device === 'cpu' ? { intraOpThreads: s.cpuThreads } : {}) };
  const clips = s.clips ? [s.clips] : [];
  if (measure === 'kernels') {
    const dir = modelDir(dims);
    const model = await WhisperModel.load(dir, { encoder: `${dir}/onnx/encoder_model.onnx`, decoder: `${dir}/onnx/decoder_model_merged.onnx` }, parseEngineOptions(engine));
    try {
      // One failed size (a buffer over the adapter's limits, say) is noted; the others still run.
      for (const b of s.encoderBatches) {
        await attempt(r, `${dims} encoder batch ${b} on ${device}`, async () => {
          const e = await encoderMs(model, b, Math.max(1000, (r.leftS - 10) * 100));
          r.put(dims, `encoder ms per run, batch ${b}`, 'ms', device, e.ms, { runs: e.runs, msPerWindow: e.ms / b });
        });
      }
      for (const b of s.decoderBatches) {
        await attempt(r, `${dims} decoder batch ${b} on ${device}`, async () => {
          const st = await decoderStepMs(model, b, s.steps);
          r.put(dims, `decoder ms per step, batch ${b}`, 'ms/step', device, st.ms, { steps: st.steps, promptMs: st.promptMs });
        });
      }
    } finally {
      await model.release();
    }
    return;
  }
  const w = await loadWhisper(modelDir(dims), { engine });
  // The model's own queue, as a server has it (as many jobs at once as a decoder run takes rows), unbounded.
  const queued = () => ({ ...w, queue: modelQueue(w.runner, { concurrency: w.queue.concurrency, lane: w.queue.lane, maxWaiting: 10000 }) });
  try {
    if (measure === 'throughput') {
      const long = await speech(30 + s.requests * 7, ...clips);
      const requests = Array.from({ length: s.requests }, (_, i) => long.slice(i * 7 * RATE, (i * 7 + 30) * RATE));
      await concurrent(queued(), requests.slice(0, 1), equalWork(s.budget)); // warm-up
      const l = await concurrent(queued(), requests, equalWork(s.budget));
      r.put(dims, throughputName(s.requests), 'audio s/s', device, rate(l), {
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
      r.put(dims, STREAMS_NAME, 'streams', device, best, { levels, sampleLen: s.sampleLen, streamSeconds: s.streamSeconds });
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
