// `npm run bench -- gpu [--out DIR] [--dims tiny,base] [--time-limit S] [--device webgpu] [--dtype fp32] ...`: earshot
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
// Each device runs at the dtype a user gets there by default: the GPU at fp16, the CPU at fp32, from
// one test model folder that holds both (`--dtype fp32` puts every device at fp32, like for like);
// each figure's dtype per device is in the JSON and in the printed lines.
// Each measure on each device runs in a child process of its own (bench/lib/gpu-measures.ts): a
// driver crash costs that measure only, and the time limit is a hard one (a child still running at
// the limit is killed). Results go to DIR/gpu-bench.json, rewritten after every figure, so a run
// stopped at any point leaves what it measured (the device kit, scripts/device-kit/, runs this on a
// GPU machine for a few minutes). What runs first is what the targets need: base-dims
// throughput, then streams. `--dry` shrinks every size for a dry run through lavapipe.
import '../src/engine/telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { chooseDevice, cudaProviderInstalled, describeDevice, type Device } from '../src/engine/execution.ts';
import { log } from '../src/log.ts';
import { formatDtypeSpec, parseDtypeSpec } from '../src/models/dtype.ts';
import { benchModel, type Measure, MEASURES, type MeasureSettings, modelDir, runMeasure, STREAMS_NAME, throughputName } from './lib/gpu-measures.ts';
import { figureLine, Results } from './lib/gpu-results.ts';

const TARGETS = { throughputVsCpu: 5, streams: 100 };

const list = (s: string): number[] => s.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);

const OPTIONS = {
  out: { type: 'string', default: 'bench/out' },
  dims: { type: 'string', default: 'tiny,base' },
  device: { type: 'string', default: 'webgpu' },
  /** Every device at this dtype; without it, each device's default (GPU fp16, CPU fp32). */
  dtype: { type: 'string' },
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
  /** Internal: `<measure>:<dims>:<device>`, one measure in this process (the parent's child). */
  only: { type: 'string' },
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
  if (v.dtype !== undefined) {
    try {
      parseDtypeSpec(v.dtype);
    } catch (e) {
      console.error(`bench gpu: --dtype: ${(e as Error).message}`);
      process.exitCode = 1;
      return;
    }
  }
  const s: MeasureSettings = {
    encoderBatches: list(v['encoder-batches']),
    decoderBatches: list(v['decoder-batches']),
    steps: Number(v.steps),
    requests: Number(v.requests),
    budget: Number(v.budget),
    streamLevels: list(v['stream-levels']),
    streamSeconds: Number(v['stream-seconds']),
    sampleLen: Number(v['sample-len']),
    cpuThreads: Number(v['cpu-threads']),
    ...(v.clips ? { clips: v.clips } : {}),
    ...(v.dtype ? { dtype: v.dtype } : {}),
  };
  log.level = 'warn';
  mkdirSync(v.out, { recursive: true });
  const r = new Results(v.out, Number(v['time-limit']), { ...v, dims, dtype: v.dtype ?? "each device's default (GPU fp16, CPU fp32)" });

  if (v.only) {
    const [measure, d, device] = v.only.split(':') as [Measure, string, Device];
    if (!MEASURES.includes(measure)) throw new Error(`--only: unknown measure ${measure}`);
    await runMeasure(measure, d, device, s, r);
    r.finish();
    process.exit(0); // everything is written; a GPU library's threads must not keep the child alive

  }

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
  r.doc.devices.cpu = { device: 'cpu', intraOpThreads: s.cpuThreads };
  r.save();
  const devices: Device[] = [...gpus, 'cpu'];
  /** The dtype each device loads, per dims, as the children will (the model store's choice). */
  const dtypeOf: Record<string, Record<string, string>> = {};
  for (const d of dims) {
    const t = performance.now();
    modelDir(d, v.dtype); // built once here (fp32 and fp16), found in the cache by the children
    dtypeOf[d] = {};
    try {
      for (const device of devices) dtypeOf[d][device] = formatDtypeSpec((await benchModel(d, device, v.dtype)).dtype);
    } catch (e) {
      // A --dtype the test-model builder does not write (it writes fp32, fp16, q8, int8).
      console.error(`bench gpu: ${(e as Error).message}`);
      process.exitCode = 1;
      return;
    }
    const at = devices.map((device) => `${device} ${dtypeOf[d]![device]}`).join(', ');
    console.log(`${d}-dims test model ready (${((performance.now() - t) / 1000).toFixed(1)} s): ${at}`);
  }

  // What the targets need first (base-dims throughput, then streams on the smallest dims asked),
  // then the kernels, then the rest: a short lease brings back the figures that matter most.
  const byTarget = dims.includes('base') ? 'base' : dims[0]!;
  const streamDims = dims.includes('tiny') ? 'tiny' : dims[0]!;
  const plan: [Measure, string][] = [
    ['throughput', byTarget],
    ['streams', streamDims],
    ...dims.map((d) => ['kernels', d] as [Measure, string]),
    ...dims.filter((d) => d !== byTarget).map((d) => ['throughput', d] as [Measure, string]),
    ...dims.filter((d) => d !== streamDims).map((d) => ['streams', d] as [Measure, string]),
  ];
  // The argv that started this bench, less its own options: the child runs the same entry point.
  const entry = [...process.execArgv, ...process.argv.slice(1, process.argv.length - args.length)];
  for (const [measure, d] of plan) {
    for (const device of devices) {
      const what = `${d} ${measure} on ${device} at ${dtypeOf[d]![device]}`;
      if (r.leftS < 20) {
        r.note(`skipped (time limit): ${what}`);
        continue;
      }
      const t = performance.now();
      console.log(`${what}...`);
      const part = mkdtempSync(join(tmpdir(), 'earshot-gpu-bench-'));
      try {
        // Later options win: the child gets its own output folder, the time left, and its one measure.
        const ended = await child(entry, [...args, '--out', part, '--time-limit', String(Math.floor(r.leftS)), '--only', `${measure}:${d}:${device}`], r.leftS);
        try {
          r.merge(JSON.parse(readFileSync(join(part, 'gpu-bench.json'), 'utf8')) as Results['doc']);
        } catch {
          // The child died before its first write.
        }
        if (ended !== 'ok') r.note(`${what}: ${ended}`);
      } finally {
        rmSync(part, { recursive: true, force: true });
      }
      console.log(`  ${((performance.now() - t) / 1000).toFixed(1)} s, ${r.leftS.toFixed(0)} s left`);
    }
  }

  // The targets, from what was measured.
  const thr = r.doc.figures.find((f) => f.dims === 'base' && f.measure === throughputName(s.requests));
  const streams = r.doc.figures.filter((f) => f.measure === STREAMS_NAME);
  if (gpus.length === 0) r.doc.targets.none = 'no GPU device was usable: CPU baseline only (see devices and notes)';
  for (const g of gpus) {
    r.doc.targets[g] = {
      [`base throughput ≥ ${TARGETS.throughputVsCpu}x CPU (${s.requests} requests)`]: verdict(thr?.vsCpu[g], TARGETS.throughputVsCpu),
      [`≥ ${TARGETS.streams} streams at p95 ≤ 300 ms`]: verdict(Math.max(-1, ...streams.map((f) => f.values[g] ?? -1)), TARGETS.streams),
      dtypes: `${g} ${thr?.dtypes[g] ?? dtypeOf[byTarget]![g]}, cpu ${thr?.dtypes.cpu ?? dtypeOf[byTarget]!.cpu}`,
    };
  }
  r.finish();
  for (const f of r.doc.figures) console.log(figureLine(f));
  console.log(JSON.stringify({ targets: r.doc.targets }, null, 1));
}

/** Runs one measure in a child; kills it at the time limit. Resolves how it ended. */
function child(entry: string[], args: string[], limitS: number): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [...entry, ...args], { stdio: 'inherit' });
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      c.kill('SIGKILL');
    }, Math.max(1, limitS) * 1000);
    c.on('error', (e) => resolve(`could not start: ${e.message}`));
    c.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (late) resolve('killed at the time limit');
      else if (signal) resolve(`crashed (${signal})`);
      else resolve(code === 0 ? 'ok' : `exited with ${code}`);
    });
  });
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
