// `npm run bench -- transcribe [--threads N] [--reps N] [--long-reps N] [--budget N] [--step-reps N] [--device D]`: earshot's
// transcribeAll against transformers.js's ASR pipeline on the tiny-dims test model, for a 30 s and a
// 5 min input made of the shared real-English clips, each side in its own process (peak RSS is its
// own) and both measured alternately in the same run. The work is made equal: random weights never
// emit <|endoftext|>, so every 30 s window generates exactly `budget` tokens on both sides (greedy,
// no fallback, no timestamps, no previous-text prompt, back-to-back windows). Then the decode loop's
// time per token is compared with a bare onnxruntime loop over the same decoder session.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { testModelDir } from '../scripts/test-model/index.ts';
import { DEVICE_OPTION, deviceArg } from './lib/device-arg.ts';
import { decodeAudio } from '../src/audio/index.ts';
import { Worker } from './lib/child.ts';
import { median, mib, pause } from './lib/stats.ts';
import type { LoadResult, StepsResult, TranscribeResult } from './lib/transcribe-protocol.ts';

const RATE = 16000;
const CLIPS = fileURLToPath(new URL('../../shared/audio/real-en/', import.meta.url));
const TARGET_SPEEDUP = 1.5;
const TARGET_OVERHEAD = 0.1;

/** The shared real-English clips back to back, repeated until `seconds` long. */
async function speech(seconds: number): Promise<Float32Array> {
  const clips: Float32Array[] = [];
  for (const f of readdirSync(CLIPS).filter((f) => f.endsWith('.wav')).sort()) {
    clips.push((await decodeAudio(join(CLIPS, f))).samples);
  }
  const out = new Float32Array(seconds * RATE);
  for (let at = 0, i = 0; at < out.length; i++) {
    const clip = clips[i % clips.length]!.subarray(0, out.length - at);
    out.set(clip, at);
    at += clip.length;
  }
  return out;
}

interface Side {
  worker: Worker;
  runs: Map<string, TranscribeResult[]>;
  maxRssBytes: number;
  loadMs: number;
  loadRssBytes: number;
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      threads: { type: 'string', default: '2' },
      reps: { type: 'string', default: '3' },
      // One 5 min run is already 10 windows; more runs of it would take the bench past 5 minutes.
      'long-reps': { type: 'string', default: '1' },
      budget: { type: 'string', default: '128' },
      'step-reps': { type: 'string', default: '5' },
      ...DEVICE_OPTION,
    },
  });
  const device = deviceArg(values.device);
  const threads = Math.max(1, Number(values.threads));
  const reps = Math.max(1, Number(values.reps));
  const longReps = Math.max(1, Number(values['long-reps']));
  const budget = Math.max(1, Number(values.budget));
  const stepReps = Math.max(1, Number(values['step-reps']));

  const modelDir = testModelDir({ preset: 'multilingual', dims: 'tiny' });
  const dir = mkdtempSync(join(tmpdir(), 'earshot-bench-transcribe-'));
  const sides: Record<'earshot' | 'transformers.js', Side> = {
    earshot: { worker: new Worker(new URL('lib/earshot-worker.ts', import.meta.url), 'earshot'), runs: new Map(), maxRssBytes: 0, loadMs: 0, loadRssBytes: 0 },
    'transformers.js': {
      worker: new Worker(new URL('lib/transformers-worker.ts', import.meta.url), 'transformers.js'),
      runs: new Map(),
      maxRssBytes: 0,
      loadMs: 0,
      loadRssBytes: 0,
    },
  };
  try {
    const long = await speech(300);
    const inputs = [
      { name: '30 s', path: join(dir, '30s.f32'), seconds: 30, reps },
      { name: '5 min', path: join(dir, '300s.f32'), seconds: 300, reps: longReps },
    ];
    writeFileSync(inputs[0]!.path, long.subarray(0, 30 * RATE));
    writeFileSync(inputs[1]!.path, long);

    console.log(
      `transcribe: tiny-dims test model (multilingual, random weights, fp32), ${threads} intra-op threads, device ${device}, ` +
        `${budget} tokens per 30 s window; median of ${reps} (30 s) and ${longReps} (5 min) alternating runs after one warm-up`,
    );
    console.log(`load average before the run: ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores`);
    for (const side of Object.values(sides)) {
      const r = await side.worker.request<LoadResult>({ op: 'load', modelDir, threads, device });
      side.loadMs = r.value.loadMs;
      side.loadRssBytes = r.maxRssBytes;
    }
    const once = async (side: Side, input: (typeof inputs)[number]) => {
      const r = await side.worker.request<TranscribeResult>({ op: 'transcribe', input: input.path, budget });
      side.maxRssBytes = r.maxRssBytes;
      await pause(300); // let onnxruntime's spinning worker threads go idle before the other side runs
      return r.value;
    };
    for (const side of Object.values(sides)) await once(side, inputs[0]!);
    for (let rep = 0; rep < Math.max(reps, longReps); rep++) {
      for (const input of inputs.filter((i) => rep < i.reps)) {
        const order = rep % 2 === 0 ? Object.values(sides) : Object.values(sides).reverse();
        for (const side of order) {
          const list = side.runs.get(input.name) ?? [];
          list.push(await once(side, input));
          side.runs.set(input.name, list);
        }
      }
    }
    await sides['transformers.js'].worker.close();
    const steps = (
      await sides.earshot.worker.request<StepsResult>({ op: 'steps', input: inputs[0]!.path, budget, reps: stepReps })
    ).value;

    const rows: string[][] = [['input', 'side', 'windows', 'tokens', 'wall (median)', 'per 30 s window', 'ratio']];
    let fair = true;
    for (const input of inputs) {
      const ours = sides.earshot.runs.get(input.name)!;
      const ref = sides['transformers.js'].runs.get(input.name)!;
      const oursMs = median(ours.map((r) => r.ms));
      const refMs = median(ref.map((r) => r.ms));
      const windows = input.seconds / 30;
      for (const [name, list, ms] of [
        ['earshot', ours, oursMs],
        ['transformers.js', ref, refMs],
      ] as const) {
        const r = list[0]!;
        if (list.some((x) => x.windows !== windows || x.tokens !== windows * budget)) fair = false;
        rows.push([
          name === 'earshot' ? input.name : '',
          name,
          String(r.windows),
          String(r.tokens),
          `${(ms / 1000).toFixed(2)} s`,
          `${(ms / r.windows).toFixed(0)} ms`,
          name === 'earshot' ? `${(refMs / oursMs).toFixed(2)}x faster` : '',
        ]);
      }
    }
    printTable(rows);
    console.log(
      `  expected ${budget} tokens in each 30 s window on both sides: ${fair ? 'yes' : 'NO, the comparison is not fair'}`,
    );
    for (const input of inputs) {
      const ratio =
        median(sides['transformers.js'].runs.get(input.name)!.map((r) => r.ms)) / median(sides.earshot.runs.get(input.name)!.map((r) => r.ms));
      console.log(`  ${input.name}: ${ratio >= TARGET_SPEEDUP ? 'meets' : 'MISSES'} the target of ${TARGET_SPEEDUP}x`);
    }
    const [es, tj] = [sides.earshot, sides['transformers.js']];
    console.log(
      `peak RSS (each side's own process, over all its runs): earshot ${mib(es.maxRssBytes)}, transformers.js ` +
        `${mib(tj.maxRssBytes)}; after loading the model: earshot ${mib(es.loadRssBytes)} in ${es.loadMs.toFixed(0)} ms, ` +
        `transformers.js ${mib(tj.loadRssBytes)} in ${tj.loadMs.toFixed(0)} ms`,
    );

    // The overhead is the median of per-pair ratios: a pair ran back to back, under the same load.
    const pairs = steps.earshotMsPerToken.map((ms, i) => ms / steps.bareMsPerToken[i]!);
    const overhead = median(pairs) - 1;
    console.log(
      `decoder step, one 30 s window, ${steps.tokens} tokens (decoder calls: earshot ${steps.earshotCalls}, bare ${steps.bareCalls}), ` +
        `${stepReps} back-to-back pairs:`,
    );
    console.log(
      `  earshot decode loop ${median(steps.earshotMsPerToken).toFixed(2)} ms/token, bare onnxruntime loop ` +
        `${median(steps.bareMsPerToken).toFixed(2)} ms/token (medians); overhead ${(overhead * 100).toFixed(1)}% ` +
        `(median of pair ratios ${pairs.map((p) => p.toFixed(2)).join(' ')}; ` +
        `${overhead <= TARGET_OVERHEAD ? 'meets' : 'MISSES'} the target of ${TARGET_OVERHEAD * 100}%)`,
    );
    console.log(`machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`);
  } finally {
    await Promise.all(Object.values(sides).map((s) => s.worker.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log('  ' + r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
}
