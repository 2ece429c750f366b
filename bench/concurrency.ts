// `npm run bench -- concurrency [--threads N] [--budget N] [--requests N] [--long-s S] [--memory-requests N]
//   [--skip-reference] [--head-of-line-only] [--device D]`:
// many concurrent requests on one model through the batching scheduler. On the tiny-dims test model
// (multilingual, random weights) with bench/transcribe.ts's equal work (greedy at temperature 0 only,
// no fallback thresholds, no timestamps, no previous text, `budget` tokens per 30 s window, which
// random weights always use up), it measures:
// - throughput (seconds of audio per wall second) of N concurrent 30 s requests through the
//   scheduler, against the same scheduler with batch size 1, for fp32 and int8;
// - the same N requests through transformers.js's ASR pipeline one after another (own process);
// - head-of-line latency: a 3 s request sent while a long file is transcribing, against the same
//   request on an idle model; event-loop lag meanwhile; RSS idle and under load;
// - throughput against concurrency 1, 2, 4, 8, N, written as an SVG plot into bench/out/;
// - memory: RSS after the first 50 of `--memory-requests` (default 500) short requests and after
//   all of them, sent N at a time, each measured after a GC.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { testModelDir } from '../scripts/test-model/index.ts';
import { decodeAudio } from '../src/audio/index.ts';
import { transcribeAll, type TranscribeOptions } from '../src/decoding/transcribe.ts';
import { modelQueue, type Whisper } from '../src/runtime/loaded-model.ts';
import { loadWhisper } from '../src/runtime/model-cache.ts';
import { type DeviceRequest, parseEngineOptions } from '../src/engine/execution.ts';
import { DEVICE_OPTION, deviceArg } from './lib/device-arg.ts';
import { RemoteRunner } from '../src/engine/remote-runner.ts';
import { requestPriority } from '../src/engine/priority.ts';
import { Worker } from './lib/child.ts';
import { median, mib, pause } from './lib/stats.ts';
import type { LoadResult, TranscribeResult } from './lib/transcribe-protocol.ts';

const RATE = 16000;
const CLIPS = fileURLToPath(new URL('../../shared/audio/real-en/', import.meta.url));
const OUT = fileURLToPath(new URL('out/', import.meta.url));
const TARGETS = { batchFp32: 1.6, batchInt8: 2, reference: 2, headOfLine: 2 };

/** The shared real-English clips (read from `dir`) back to back, repeated until `seconds` long. */
export async function speech(seconds: number, dir: string = CLIPS): Promise<Float32Array> {
  const clips: Float32Array[] = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.wav')).sort()) clips.push((await decodeAudio(join(dir, f))).samples);
  const out = new Float32Array(seconds * RATE);
  for (let at = 0, i = 0; at < out.length; i++) {
    const clip = clips[i % clips.length]!.subarray(0, out.length - at);
    out.set(clip, at);
    at += clip.length;
  }
  return out;
}

const runners = new Map<string, Promise<RemoteRunner>>();

/**
 * A loaded model with a scheduler of batch size `maxBatch` and its own queue; one window per
 * encoder run, as loadWhisper sets it up on the CPU. Each batch size has its own model worker
 * (started once), as loadWhisper's own does.
 */
async function withScheduler(w: Whisper, maxBatch: number, threads: number, device: DeviceRequest): Promise<Whisper> {
  if (w.model.maxBatch === maxBatch && w.model.maxEncodeBatch === 1) return { ...w, queue: modelQueue(w.runner, { concurrency: 64, maxWaiting: 256 }) };
  const key = `${w.resolved.encoderPath}|${w.resolved.decoderPath}|${maxBatch}`;
  if (!runners.has(key)) {
    runners.set(
      key,
      RemoteRunner.start({
        dir: w.resolved.dir,
        files: { encoder: w.resolved.encoderPath, decoder: w.resolved.decoderPath },
        engine: parseEngineOptions({ intraOpThreads: threads, device }),
        scheduler: { maxBatch, maxEncodeBatch: 1 },
      }),
    );
  }
  const runner = await runners.get(key)!;
  return { ...w, model: runner, runner, queue: modelQueue(runner, { concurrency: 64, maxWaiting: 256 }) };
}

export interface Load {
  wallMs: number;
  audioSeconds: number;
  tokens: number;
  latenciesMs: number[];
  peakRss: number;
}

/** Sends every request at once (as a server would queue them) and waits for all. */
export async function concurrent(w: Whisper, requests: readonly Float32Array[], options: TranscribeOptions): Promise<Load> {
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  const started = performance.now();
  try {
    const results = await Promise.all(
      requests.map(async (samples) => {
        const out = await w.queue.run((runner) => transcribeAll({ ...w, runner }, samples, options), { priority: requestPriority(samples.length) });
        return { out, ms: performance.now() - started };
      }),
    );
    return {
      wallMs: performance.now() - started,
      audioSeconds: requests.reduce((n, r) => n + r.length / RATE, 0),
      tokens: results.reduce((n, r) => n + r.out.segments.reduce((m, s) => m + s.tokens.length, 0), 0),
      latenciesMs: results.map((r) => r.ms),
      peakRss,
    };
  } finally {
    clearInterval(sampler);
  }
}

/** bench/transcribe.ts's equal work: greedy at temperature 0 only, no fallback, no timestamps, no previous text, `budget` tokens per window. */
export function equalWork(budget: number): TranscribeOptions {
  return {
    language: 'en',
    temperature: 0,
    compressionRatioThreshold: null,
    logprobThreshold: null,
    noSpeechThreshold: null,
    withoutTimestamps: true,
    conditionOnPreviousText: false,
    sampleLen: budget,
  };
}

export const rate = (l: Load) => l.audioSeconds / (l.wallMs / 1000);

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      threads: { type: 'string', default: '2' },
      ...DEVICE_OPTION,
      budget: { type: 'string', default: '128' },
      requests: { type: 'string', default: '16' },
      'long-s': { type: 'string', default: '600' },
      'skip-reference': { type: 'boolean', default: false },
      'head-of-line-only': { type: 'boolean', default: false },
      'memory-requests': { type: 'string', default: '500' },
    },
  });
  const threads = Math.max(1, Number(values.threads));
  const device = deviceArg(values.device);
  const budget = Math.max(1, Number(values.budget));
  const n = Math.max(1, Number(values.requests));
  const longSeconds = Math.max(30, Number(values['long-s']));
  const options = equalWork(budget);
  const modelDir = testModelDir({ preset: 'multilingual', dims: 'tiny', dtypes: ['int8'] });
  console.log(
    `concurrency: tiny-dims test model (multilingual, random weights), ${threads} intra-op threads, device ${device}, ${budget} tokens per ` +
      `30 s window, greedy, no fallback, ${n} concurrent 30 s requests`,
  );
  const rssStart = process.memoryUsage().rss;
  const fp32 = await loadWhisper(modelDir, { engine: { intraOpThreads: threads, device } });
  const int8 = await loadWhisper(modelDir, { dtype: 'int8', engine: { intraOpThreads: threads, device } });
  const long = await speech(Math.max(longSeconds, 30 + n * 7));
  const requests = Array.from({ length: n }, (_, i) => long.slice(i * 7 * RATE, (i * 7 + 30) * RATE));
  const short = long.slice(0, 3 * RATE);

  // Warm-up: one request on each model worker that is measured below, batch 1 as well as 16 (a
  // worker's first runs allocate its arenas: a cold batch-1 worker made the ratio look up to 1.5x better).
  for (const w of [fp32, int8]) {
    for (const maxBatch of [1, 16]) await concurrent(await withScheduler(w, maxBatch, threads, device), requests.slice(0, 1), options);
  }
  const rssIdle = process.memoryUsage().rss;

  const holOnly = values['head-of-line-only'];
  // 1. Batched against batch size 1, same model, same requests.
  const rows: string[][] = [['model', 'scheduler', 'wall', 'audio s / wall s', 'tokens', 'p50 latency', 'ratio']];
  const ratios: Record<string, number> = {};
  let peakRss = 0;
  let batched16: Load | undefined;
  for (const [name, w] of holOnly ? [] : ([
    ['fp32', fp32],
    ['int8', int8],
  ] as const)) {
    const one = await concurrent(await withScheduler(w, 1, threads, device), requests, options);
    await pause(200);
    const many = await concurrent(await withScheduler(w, 16, threads, device), requests, options);
    await pause(200);
    if (name === 'fp32') batched16 = many;
    peakRss = Math.max(peakRss, one.peakRss, many.peakRss);
    ratios[name] = rate(many) / rate(one);
    for (const [label, l] of [
      ['batch 1', one],
      ['batch 16', many],
    ] as const) {
      rows.push([
        label === 'batch 1' ? name : '',
        label,
        `${(l.wallMs / 1000).toFixed(1)} s`,
        rate(l).toFixed(2),
        String(l.tokens),
        `${(median(l.latenciesMs) / 1000).toFixed(1)} s`,
        label === 'batch 16' ? `${ratios[name]!.toFixed(2)}x` : '',
      ]);
    }
  }
  if (!holOnly) {
    printTable(rows);
    const fair = batched16!.tokens === n * budget;
    console.log(`  ${budget} tokens in every window: ${fair ? 'yes' : `NO (${batched16!.tokens} of ${n * budget})`}`);
    console.log(`  fp32: ${verdict(ratios.fp32!, TARGETS.batchFp32)}; int8: ${verdict(ratios.int8!, TARGETS.batchInt8)}`);
  }
  console.log(`RSS: ${mib(rssStart)} before loading, ${mib(rssIdle)} idle with both models loaded, ${mib(peakRss)} peak under load`);

  // 2. transformers.js, the same requests one after another, in its own process.
  if (!values['skip-reference'] && !holOnly) {
    const dir = mkdtempSync(join(tmpdir(), 'earshot-bench-concurrency-'));
    const ref = new Worker(new URL('lib/transformers-worker.ts', import.meta.url), 'transformers.js');
    try {
      await ref.request<LoadResult>({ op: 'load', modelDir, threads, device });
      const paths = requests.map((r, i) => {
        const p = join(dir, `${i}.f32`);
        writeFileSync(p, r);
        return p;
      });
      await ref.request<TranscribeResult>({ op: 'transcribe', input: paths[0], budget }); // warm-up
      let refMs = 0;
      let refTokens = 0;
      for (const p of paths) {
        const r = await ref.request<TranscribeResult>({ op: 'transcribe', input: p, budget });
        refMs += r.value.ms;
        refTokens += r.value.tokens;
      }
      const refRate = (n * 30) / (refMs / 1000);
      const ratio = rate(batched16!) / refRate;
      console.log(
        `transformers.js, ${n} requests one after another: ${(refMs / 1000).toFixed(1)} s, ${refRate.toFixed(2)} audio s / wall s, ` +
          `${refTokens} tokens; earshot batched fp32 is ${ratio.toFixed(2)}x (${verdict(ratio, TARGETS.reference)})`,
      );
    } finally {
      await ref.close();
      rmSync(dir, { recursive: true, force: true });
    }
    await pause(300);
  }

  // 3. Head-of-line: a 3 s request on an idle model, then while a long file is transcribing.
  const w = await withScheduler(fp32, 16, threads, device);
  const idle: number[] = [];
  for (let i = 0; i < 2; i++) idle.push((await concurrent(w, [short], options)).wallMs);
  const lag = monitorEventLoopDelay({ resolution: 10 });
  const longFile = long.subarray(0, longSeconds * RATE);
  const melStarted = performance.now();
  fp32.features.longForm(longFile);
  const melMs = performance.now() - melStarted;
  lag.enable();
  const longRun = concurrent(w, [longFile], options);
  const busy: number[] = [];
  let longDone = false;
  void longRun.then(() => (longDone = true));
  await pause(1500);
  while (!longDone && busy.length < 3) {
    busy.push((await concurrent(w, [short], options)).wallMs);
    await pause(500);
  }
  const longLoad = await longRun;
  lag.disable();
  const hol = median(busy) / median(idle);
  console.log(
    `head-of-line: 3 s request ${(median(idle) / 1000).toFixed(2)} s on an idle model, ${(median(busy) / 1000).toFixed(2)} s ` +
      `(median of ${busy.length}) while a ${longSeconds} s file transcribes (${(longLoad.wallMs / 1000).toFixed(1)} s): ` +
      `${hol.toFixed(2)}x (${hol <= TARGETS.headOfLine ? 'meets' : 'MISSES'} the target of at most ${TARGETS.headOfLine}x)`,
  );
  console.log(
    `event loop: log-mel of the ${longSeconds} s file takes ${melMs.toFixed(0)} ms on the main thread (measured alone; ` +
      `transcribe runs it in the mel worker thread); lag during the ` +
      `long transcription: p50 ${(lag.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms, ` +
      `max ${(lag.max / 1e6).toFixed(1)} ms`,
  );

  // 4. Throughput against concurrency.
  if (holOnly) return;
  const levels = [...new Set([1, 2, 4, 8, n].filter((c) => c <= n))].sort((a, b) => a - b);
  const curve: { c: number; rate: number }[] = [];
  for (const c of levels) {
    const l = c === n ? batched16! : await concurrent(await withScheduler(fp32, 16, threads, device), requests.slice(0, c), options);
    curve.push({ c, rate: rate(l) });
    await pause(200);
  }
  console.log(`throughput (audio s / wall s) by concurrency, fp32: ${curve.map((p) => `${p.c}: ${p.rate.toFixed(2)}`).join(', ')}`);
  mkdirSync(OUT, { recursive: true });
  const svg = join(OUT, 'concurrency.svg');
  writeFileSync(svg, plot(curve, `audio seconds per wall second, fp32, ${budget} tokens per window`));
  console.log(`  plot: ${svg}`);
  await memoryGrowth(await withScheduler(fp32, 16, threads, device), requests, options, Math.max(0, Number(values['memory-requests'])));
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
}

/**
 * RSS after the first 50 requests and after `total`, sent `requests.length` at a time (3 s of each
 * request's audio, at most 16 tokens: memory, not speed, is measured here). Growth must stay under 5%.
 */
async function memoryGrowth(w: Whisper, requests: readonly Float32Array[], options: TranscribeOptions, total: number): Promise<void> {
  if (total < 50) return;
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const settled = async () => {
    for (let i = 0; i < 3; i++) {
      gc();
      await pause(100);
    }
    return process.memoryUsage().rss;
  };
  const short = { ...options, sampleLen: Math.min(options.sampleLen ?? 16, 16) };
  let done = 0;
  let first = 0;
  const started = performance.now();
  while (done < total) {
    const wave = Math.min(requests.length, total - done);
    await concurrent(w, Array.from({ length: wave }, (_, i) => requests[(done + i) % requests.length]!.subarray(0, 3 * RATE)), short);
    done += wave;
    if (first === 0 && done >= 50) first = await settled();
  }
  const last = await settled();
  const growth = last / first - 1;
  console.log(
    `memory: RSS ${mib(first)} after 50 requests, ${mib(last)} after ${total} (${(growth * 100).toFixed(1)}% growth, ` +
      `${growth < 0.05 ? 'meets' : 'MISSES'} the target of under 5%; ${((performance.now() - started) / 1000).toFixed(0)} s)`,
  );
}

function verdict(ratio: number, target: number): string {
  return `${ratio.toFixed(2)}x, ${ratio >= target ? 'meets' : 'MISSES'} the target of ${target}x`;
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log('  ' + r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
}

/** A small line chart: concurrency on a log2 x axis, throughput on y. */
function plot(points: { c: number; rate: number }[], title: string): string {
  const W = 480;
  const H = 300;
  const m = { l: 56, r: 20, t: 36, b: 44 };
  const maxX = Math.log2(Math.max(...points.map((p) => p.c), 2));
  const maxY = Math.max(...points.map((p) => p.rate)) * 1.15;
  const x = (c: number) => m.l + (Math.log2(c) / maxX) * (W - m.l - m.r);
  const y = (v: number) => H - m.b - (v / maxY) * (H - m.t - m.b);
  const yTicks = Array.from({ length: 5 }, (_, i) => (maxY * i) / 4);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="13">${title}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    ...yTicks.map(
      (v) =>
        `<line x1="${m.l}" y1="${y(v)}" x2="${W - m.r}" y2="${y(v)}" stroke="#ddd"/>` +
        `<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(1)}</text>`,
    ),
    ...points.map((p) => `<text x="${x(p.c)}" y="${H - m.b + 16}" text-anchor="middle">${p.c}</text>`),
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 8}" text-anchor="middle">concurrent 30 s requests</text>`,
    `<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${points.map((p) => `${x(p.c).toFixed(1)},${y(p.rate).toFixed(1)}`).join(' ')}"/>`,
    ...points.map((p) => `<circle cx="${x(p.c).toFixed(1)}" cy="${y(p.rate).toFixed(1)}" r="3.5" fill="#1f77b4"/>`),
    `</svg>`,
  ];
  return parts.join('\n') + '\n';
}
