// `npm run bench -- gpu [--out DIR] [--dims tiny,base] [--time-limit S] [--device webgpu] ...`: earshot
// on a GPU against the same machine's CPU provider (every core), in the same run, on test models of
// whisper-tiny's and whisper-base's sizes (random weights, built here by the test-model builder;
// `--dims small` for the builder's smallest):
// - encoder ms per run at batch 1/8/32 windows;
// - decoder ms per cached step at batch 1/16/64/256 rows;
// - throughput of 64 concurrent 30 s requests (bench/concurrency.ts's equal work and code), through
//   the model's default scheduler on each device;
// - the most concurrent real-time streams (bench/streams.ts's code) whose end-of-speech → final
//   p95 stays ≤ 300 ms.
// The GPU is `webgpu` (onnxruntime's bundled Dawn), and `cuda` too when its provider is installed.
// Results go to DIR/gpu-bench.json, rewritten after every figure; `--time-limit` stops starting new
// measures so that a run fits a short lease (the device kit, scripts/device-kit/, runs it there).
// Every size shrinks for a dry run through lavapipe (`--dry`). What runs first is what the issue's
// targets need: base-dims throughput, then streams.
import '../src/engine/telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import { mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { type DimsName, testModelDir } from '../scripts/test-model/index.ts';
import { chooseDevice, cudaProviderInstalled, describeDevice, type Device, parseEngineOptions } from '../src/engine/execution.ts';
import { WhisperModel } from '../src/engine/whisper-model.ts';
import { modelQueue } from '../src/runtime/loaded-model.ts';
import { loadWhisper, unloadAll } from '../src/runtime/model-cache.ts';
import { loadSileroVad } from '../src/vad/silero.ts';
import { log } from '../src/log.ts';
import { concurrent, equalWork, rate, speech } from './concurrency.ts';
import { decoderStepMs, encoderMs } from './lib/gpu-kernels.ts';
import { Results } from './lib/gpu-results.ts';
import { quantile, runLevel, speechWithPauses } from './streams.ts';

const RATE = 16000;
const STREAM_P95_S = 0.3;
const TARGETS = { throughputVsCpu: 5, streams: 100 };

const list = (s: string): number[] => s.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);

const OPTIONS = {
  out: { type: 'string', default: 'bench/out' },
  dims: { type: 'string', default: 'tiny,base' },
  device: { type: 'string', default: 'webgpu' },
  'time-limit': { type: 'string', default: '480' },
  'cpu-threads': { type: 'string', default: String(availableParallelism()) },
  'encoder-batches': { type: 'string', default: '1,8,32' },
  'decoder-batches': { type: 'string', default: '1,16,64,256' },
  steps: { type: 'string', default: '16' },
  requests: { type: 'string', default: '64' },
  budget: { type: 'string', default: '128' },
  'stream-levels': { type: 'string', default: '8,32,64,128,256' },
  'stream-seconds': { type: 'string', default: '15' },
  'sample-len': { type: 'string', default: '24' },
  clips: { type: 'string' },
  dry: { type: 'boolean', default: false },
} as const;

/** `--dry`: every size at its smallest, for lavapipe (tens of seconds per tiny-dims encoder run on 2 busy cores). */
const DRY = {
  dims: 'small',
  'encoder-batches': '1,2',
  'decoder-batches': '1,4',
  steps: '3',
  requests: '2',
  budget: '4',
  'stream-levels': '1,2',
  'stream-seconds': '8',
  'sample-len': '8',
};

export async function run(args: string[]): Promise<void> {
  const parsed = parseArgs({ args, options: OPTIONS }).values;
  const given = parseArgs({ args, options: Object.fromEntries(Object.entries(OPTIONS).map(([k, v]) => [k, { type: v.type }])) }).values;
  const v = { ...parsed, ...(parsed.dry ? DRY : {}), ...given } as typeof parsed;
  const dims = v.dims.split(',').filter(Boolean);
  const cpuThreads = Number(v['cpu-threads']);
  const steps = Number(v.steps);
  const nRequests = Number(v.requests);
  const budget = Number(v.budget);
  const streamSeconds = Number(v['stream-seconds']);
  const sampleLen = Number(v['sample-len']);
  log.level = 'warn';
  mkdirSync(v.out, { recursive: true });
  const settings = { ...v, dims, cpuThreads };
  const r = new Results(v.out, Number(v['time-limit']), settings);

  r.doc.machine = {
    cpu: cpus()[0]?.model,
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntime: (ort.env as { versions?: Record<string, string> }).versions ?? null,
    earshot: earshotVersion(),
  };
  // The GPU devices: the one asked for, and CUDA too when its provider is here. A device that is
  // not usable is said in the JSON; the CPU baseline is measured anyway.
  const gpus: Device[] = [];
  for (const requested of new Set([v.device, ...(cudaProviderInstalled() ? ['cuda'] : [])])) {
    try {
      const choice = chooseDevice(requested as Device);
      r.doc.devices[requested] = { ...choice, described: describeDevice(choice) };
      if (choice.device !== 'cpu') gpus.push(choice.device);
      if (choice.adapter?.fallback) r.note(`${requested}: ${describeDevice(choice)} is a software adapter (the CPU through Vulkan): not GPU figures`);
    } catch (e) {
      r.doc.devices[requested] = { requested, error: (e as Error).message };
      r.note(`${requested} unusable, CPU baseline only: ${(e as Error).message}`);
    }
  }
  r.doc.devices.cpu = { device: 'cpu', intraOpThreads: cpuThreads };
  r.save();
  const devices: Device[] = [...gpus, 'cpu'];
  const engine = (device: Device) => ({ device, ...(device === 'cpu' ? { intraOpThreads: cpuThreads } : {}) });

  /** Runs `what` unless the time is up; a failure is noted, and the next measure goes on. */
  const step = async (what: string, minLeftS: number, fn: () => Promise<void>): Promise<void> => {
    if (r.leftS < minLeftS) return r.note(`skipped (time limit): ${what}`);
    const t = performance.now();
    console.log(`${what}...`);
    try {
      await fn();
    } catch (e) {
      r.note(`failed: ${what}: ${(e as Error).message.split('\n')[0]}`);
    }
    console.log(`  ${((performance.now() - t) / 1000).toFixed(1)} s, ${r.leftS.toFixed(0)} s left`);
  };

  const models = new Map<string, string>();
  const modelDir = (d: string): string => {
    if (!models.has(d)) models.set(d, testModelDir({ preset: 'multilingual', dims: d as DimsName }));
    return models.get(d)!;
  };
  const clips = v.clips;
  const long = await speech(30 + nRequests * 7, ...(clips ? [clips] : []));
  const requests = Array.from({ length: nRequests }, (_, i) => long.slice(i * 7 * RATE, (i * 7 + 30) * RATE));
  const vad = await loadSileroVad();
  const audio = await speechWithPauses(streamSeconds, ...(clips ? [clips] : []));

  /** Encoder and decoder steps, on the bare model in this thread. */
  const kernels = async (d: string, device: Device): Promise<void> => {
    const dir = modelDir(d);
    const model = await WhisperModel.load(dir, { encoder: `${dir}/onnx/encoder_model.onnx`, decoder: `${dir}/onnx/decoder_model_merged.onnx` }, parseEngineOptions(engine(device)));
    try {
      for (const b of list(v['encoder-batches'])) {
        if (r.leftS < 15) break;
        const e = await encoderMs(model, b, Math.max(1000, (r.leftS - 10) * 100));
        r.put(d, `encoder ms per run, batch ${b}`, 'ms', device, e.ms, { runs: e.runs, msPerWindow: e.ms / b });
      }
      for (const b of list(v['decoder-batches'])) {
        if (r.leftS < 15) break;
        const s = await decoderStepMs(model, b, steps);
        r.put(d, `decoder ms per step, batch ${b}`, 'ms/step', device, s.ms, { steps: s.steps, promptMs: s.promptMs });
      }
    } finally {
      await model.release();
    }
  };

  /** Concurrent 30 s requests through earshot's scheduler, as loadWhisper sets it up on the device. */
  const throughput = async (d: string, device: Device): Promise<void> => {
    const w = await loadWhisper(modelDir(d), { engine: engine(device) });
    // The model's own queue, as a server has it (as many jobs at once as a decoder run takes rows), unbounded.
    const queued = { ...w, queue: modelQueue(w.runner, { concurrency: w.queue.concurrency, maxWaiting: 10000 }) };
    await concurrent(queued, requests.slice(0, 1), equalWork(budget)); // warm-up
    const l = await concurrent(queued, requests, equalWork(budget));
    r.put(d, `${nRequests} concurrent 30 s requests`, 'audio s/s', device, rate(l), {
      wallS: l.wallMs / 1000,
      tokens: l.tokens,
      tokensPerWindow: budget,
      maxBatch: w.model.maxBatch,
      maxEncodeBatch: w.model.maxEncodeBatch,
      p50LatencyS: quantile(l.latenciesMs, 0.5) / 1000,
    });
    await unloadAll();
  };

  /** Real-time streams: the most at end-of-speech → final p95 ≤ 300 ms (levels in order, up to the first that misses). */
  const streamLevels = async (d: string, device: Device): Promise<void> => {
    const w = await loadWhisper(modelDir(d), { engine: engine(device) });
    const fresh = () => ({ ...w, queue: modelQueue(w.runner, { concurrency: w.queue.concurrency, maxWaiting: 10000 }) });
    await runLevel(fresh(), vad, audio.subarray(0, 3 * RATE), 1, sampleLen); // warm-up
    let best = 0;
    const levels: Record<string, unknown>[] = [];
    for (const n of list(v['stream-levels'])) {
      if (r.leftS < streamSeconds + 15) {
        r.note(`stopped (time limit): ${d} streams on ${device} before ${n} streams`);
        break;
      }
      const res = await runLevel(fresh(), vad, audio, n, sampleLen);
      const p95 = quantile(res.latencies, 0.95);
      levels.push({ streams: n, p50Ms: quantile(res.latencies, 0.5) * 1000, p95Ms: p95 * 1000, ends: res.latencies.length, finals: res.finals, partials: res.partials, droppedPartials: res.dropped, drainS: res.drain });
      console.log(`  ${n} streams: p95 ${Math.round(p95 * 1000)} ms over ${res.latencies.length} ends`);
      if (!(p95 <= STREAM_P95_S) || res.finals === 0) break;
      best = n;
    }
    r.put(d, `real-time streams at final p95 ≤ ${STREAM_P95_S * 1000} ms`, 'streams', device, best, { levels, sampleLen, streamSeconds });
    await unloadAll();
  };

  // What the targets need first (base-dims throughput, then streams on the smallest dims asked),
  // then the kernels, then the rest: a short lease brings back the figures that matter most.
  const byTarget = dims.includes('base') ? 'base' : dims[0]!;
  const streamDims = dims.includes('tiny') ? 'tiny' : dims[0]!;
  type Step = [string, string, (d: string, device: Device) => Promise<void>, number];
  const plan: Step[] = [
    ['concurrent requests', byTarget, throughput, 30],
    ['streams', streamDims, streamLevels, streamSeconds + 20],
    ...dims.map((d) => ['encoder/decoder', d, kernels, 20] as Step),
    ...dims.filter((d) => d !== byTarget).map((d) => ['concurrent requests', d, throughput, 30] as Step),
    ...dims.filter((d) => d !== streamDims).map((d) => ['streams', d, streamLevels, streamSeconds + 20] as Step),
  ];
  for (const [what, d, fn, minLeftS] of plan) {
    for (const device of devices) await step(`${d} ${what} on ${device}`, minLeftS, () => fn(d, device));
  }

  // The targets, from what was measured.
  const fig = (measure: string) => r.doc.figures.find((f) => f.dims === 'base' && f.measure === measure);
  const thr = fig(`${nRequests} concurrent 30 s requests`);
  const streams = r.doc.figures.filter((f) => f.unit === 'streams');
  if (gpus.length === 0) r.doc.targets.none = 'no GPU device was usable: CPU baseline only (see devices and notes)';
  for (const g of gpus) {
    r.doc.targets[g] = {
      [`base throughput ≥ ${TARGETS.throughputVsCpu}x CPU (${nRequests} requests)`]: verdict(thr?.vsCpu[g], TARGETS.throughputVsCpu),
      [`≥ ${TARGETS.streams} streams at p95 ≤ 300 ms`]: verdict(Math.max(-1, ...streams.map((f) => f.values[g] ?? -1)), TARGETS.streams),
    };
  }
  r.finish();
  console.log(JSON.stringify({ figures: r.doc.figures.map((f) => [f.dims, f.measure, f.values, f.vsCpu]), targets: r.doc.targets }, null, 1));
  await unloadAll();
}

function verdict(value: number | undefined, target: number): string {
  if (value === undefined || value < 0) return 'not measured';
  return `${value} ${value >= target ? 'met' : 'NOT met'}`;
}

function earshotVersion(): string | null {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return null; // the device kit's bundle has no package.json beside it
  }
}
