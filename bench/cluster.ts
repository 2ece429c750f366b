// `npm run bench -- cluster [--requests N] [--seconds S] [--budget N] [--rounds N]`: synchronous
// requests through the cluster. N concurrent requests of S seconds each (default 32 × 30 s) go to
// one API node (`earshot serve --redis --no-local-model`) with 1 worker, then with 2 workers
// (`earshot worker`, each with 1 intra-op thread, so two cores can show the scaling), and to one
// `earshot serve` holding the same model with 1 thread (the same work in-process). It reports the
// throughput (seconds of audio per wall second) of each, the 2-worker/1-worker ratio (target ≥ 1.7x)
// and the Redis path's overhead against in-process (target ≤ 5% of wall time).
//
// Tiny-dims test model with random weights; equal work in every configuration: one temperature
// (a single sampling pass, no fallback ladder) and `budget` tokens per 30 s window, which random
// weights always use up; VAD off. Each configuration runs `rounds` times; the median wall time counts.
// Each round also reports the cores each process kept busy (its CPU seconds over the wall time, all
// its threads, from /proc), so the ratio can be read against what two cores allow: when the whole
// cluster with one worker keeps U cores busy, two cores can give at most 2/U times its throughput.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { testModelDir } from '../scripts/test-model/index.ts';
import { connectRedis } from '../src/cluster/redis.ts';
import { startRedis } from '../test/helpers/redis-server.ts';
import { wav16 } from '../test/audio/support.ts';
import { jfkPcm, startServerChild, type ServerChild } from './lib/server-child.ts';
import { median } from './lib/stats.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const TARGETS = { ratio: 1.7, overhead: 0.05 };

function clip(seconds: number): Buffer {
  const speech = jfkPcm(11);
  const pcm = Buffer.alloc(Math.round(seconds * 16000) * 2);
  for (let at = 0; at < pcm.length; at += speech.length) speech.copy(pcm, at, 0, Math.min(speech.length, pcm.length - at));
  return Buffer.from(wav16(pcm));
}

/** Sends `n` requests at once; resolves with the wall seconds until the last answer. */
async function burst(url: string, n: number, wav: Buffer): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: n }, async () => {
      const f = new FormData();
      f.append('file', new Blob([new Uint8Array(wav)]), 'clip.wav');
      f.append('temperature', '0.01');
      f.append('vad_filter', 'false');
      const r = await fetch(`${url}/v1/audio/transcriptions`, { method: 'POST', body: f });
      if (r.status !== 200) throw new Error(`request answered ${r.status}: ${await r.text()}`);
      await r.text();
    }),
  );
  return (performance.now() - started) / 1000;
}

function startWorker(redisUrl: string, model: string, budget: number): ChildProcess {
  return spawn(process.execPath, [join(ROOT, 'bin/earshot.js'), 'worker', '--redis', redisUrl, '--model', model, '--threads', '1', '--sample-len', String(budget)], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, EARSHOT_LOG_LEVEL: 'warn' },
  });
}

async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  await exited;
}

/** Waits until the API node's /metrics shows `n` live workers. */
async function workersLive(api: ServerChild, n: number): Promise<void> {
  for (const end = Date.now() + 120_000; ; ) {
    const text = await (await fetch(`${api.url}/metrics`)).text();
    const live = text.split('\n').filter((l) => l.startsWith('earshot_cluster_workers{')).reduce((s, l) => s + Number(l.split(' ').at(-1)), 0);
    if (live >= n) return;
    if (Date.now() > end) throw new Error(`only ${live} of ${n} workers came up`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Redis's own counters: commands, bytes in and out, CPU seconds (user + system). */
async function redisCounters(url: string): Promise<{ commands: number; bytesIn: number; bytesOut: number; cpuS: number }> {
  const r = connectRedis(url, 'earshot-bench');
  try {
    const info = await r.info();
    const v = (k: string): number => Number(new RegExp(`^${k}:(\\S+)`, 'm').exec(info)?.[1] ?? NaN);
    return {
      commands: v('total_commands_processed'),
      bytesIn: v('total_net_input_bytes'),
      bytesOut: v('total_net_output_bytes'),
      cpuS: v('used_cpu_user') + v('used_cpu_sys'),
    };
  } finally {
    r.disconnect();
  }
}

const TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds (user + system, every thread) a process has used so far, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from the 3rd on
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S; // utime, stime: fields 14 and 15
}

/** The processes whose CPU a round accounts for, by name. */
type Processes = Record<string, number>;

interface Timed {
  wall: number;
  /** Cores kept busy by all the processes together, in the median round. */
  cores: number;
}

async function timed(label: string, url: string, n: number, wav: Buffer, rounds: number, seconds: number, procs: Processes): Promise<Timed> {
  await burst(url, 2, wav); // warm-up: first runs of the sessions
  const runs: Timed[] = [];
  for (let i = 0; i < rounds; i++) {
    const load = loadavg()[0]!.toFixed(1);
    const before = Object.fromEntries(Object.entries(procs).map(([k, pid]) => [k, cpuSeconds(pid)]));
    const wall = await burst(url, n, wav);
    const busy = Object.entries(procs).map(([k, pid]) => [k, (cpuSeconds(pid) - before[k]!) / wall] as const);
    const cores = busy.reduce((sum, [, c]) => sum + c, 0);
    runs.push({ wall, cores });
    const each = busy.map(([k, c]) => `${k} ${c.toFixed(2)}`).join(', ');
    console.log(`  ${label} round ${i + 1}: ${wall.toFixed(2)} s wall, ${((n * seconds) / wall).toFixed(1)} audio s/s, cores busy ${cores.toFixed(2)} (${each}; load average before: ${load})`);
  }
  const wall = median(runs.map((r) => r.wall));
  return runs.find((r) => r.wall === wall) ?? { wall, cores: NaN };
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      requests: { type: 'string', default: '32' },
      seconds: { type: 'string', default: '30' },
      budget: { type: 'string', default: '32' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const n = Number(values.requests);
  const seconds = Number(values.seconds);
  const budget = Number(values.budget);
  const rounds = Number(values.rounds);
  const model = testModelDir({ preset: 'english', dims: 'tiny' });
  const wav = clip(seconds);
  console.log(`cluster: ${n} concurrent ${seconds} s requests, ${budget} tokens per window, ${rounds} rounds, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

  const single = await startServerChild(['--threads', '1', '--sample-len', String(budget), '--queue-size', String(n)]);
  let local: number;
  try {
    local = (await timed('in-process (earshot serve, 1 thread)', single.url, n, wav, rounds, seconds, { server: single.child.pid! })).wall;
  } finally {
    await single.stop();
  }

  const redis = await startRedis();
  // The first worker before the API node: a node without a model is ready once a worker is.
  const workers: ChildProcess[] = [startWorker(redis.url, model, budget)];
  let api: ServerChild | undefined;
  let one: Timed;
  let two: number;
  let perRequest: { commands: number; bytesIn: number; bytesOut: number; cpuS: number };
  try {
    api = await startServerChild(['--redis', redis.url, '--no-local-model', '--sample-len', String(budget), '--queue-size', String(n)]);
    await workersLive(api, 1);
    const before = await redisCounters(redis.url);
    const procs: Processes = { 'API node': api.child.pid!, 'worker 1': workers[0]!.pid! };
    one = await timed('cluster, 1 worker', api.url, n, wav, rounds, seconds, procs);
    workers.push(startWorker(redis.url, model, budget));
    await workersLive(api, 2);
    two = (await timed('cluster, 2 workers', api.url, n, wav, rounds, seconds, { ...procs, 'worker 2': workers[1]!.pid! })).wall;
    // Per request, idle traffic (heartbeats, BullMQ's polling, /ready probes) included: an upper bound.
    const after = await redisCounters(redis.url);
    const sent = 2 * (rounds * n + 2);
    perRequest = {
      commands: (after.commands - before.commands) / sent,
      bytesIn: (after.bytesIn - before.bytesIn) / sent,
      bytesOut: (after.bytesOut - before.bytesOut) / sent,
      cpuS: (after.cpuS - before.cpuS) / sent,
    };
  } finally {
    await Promise.all(workers.map(stopChild));
    await api?.stop();
    await redis.stop();
  }
  const audio = n * seconds;
  const ratio = one.wall / two;
  const overhead = (one.wall - local) / local;
  const cores = availableParallelism();
  const allowed = Math.min(2, cores / one.cores);
  console.log('');
  console.log('| measure | result | target |');
  console.log('|---|---|---|');
  console.log(`| in-process, 1 thread | ${local.toFixed(2)} s wall, ${(audio / local).toFixed(1)} audio s/s | |`);
  console.log(`| cluster, 1 worker | ${one.wall.toFixed(2)} s wall, ${(audio / one.wall).toFixed(1)} audio s/s, ${one.cores.toFixed(2)} cores busy (API node and worker; Redis's CPU is in its row) | |`);
  console.log(`| cluster, 2 workers | ${two.toFixed(2)} s wall, ${(audio / two).toFixed(1)} audio s/s | |`);
  console.log(`| 2 workers vs 1 | **${ratio.toFixed(2)}x** (${ratio >= TARGETS.ratio ? 'meets' : 'misses'}); ${cores} cores allow at most ${allowed.toFixed(2)}x when one worker's cluster keeps ${one.cores.toFixed(2)} busy | ≥ ${TARGETS.ratio}x |`);
  const p = perRequest;
  console.log(`| Redis, per ${seconds} s request | ${p.commands.toFixed(0)} commands, ${(p.bytesIn / 2 ** 20).toFixed(2)} MiB in, ${(p.bytesOut / 2 ** 20).toFixed(2)} MiB out, ${(p.cpuS * 1000).toFixed(2)} ms of Redis CPU: one Redis core serves about ${(1 / p.cpuS).toFixed(0)} such requests/s | |`);
  console.log(`| Redis path vs in-process, 1 worker | **${(overhead * 100).toFixed(1)}%** of wall time (${overhead <= TARGETS.overhead ? 'meets' : 'misses'}) | ≤ ${TARGETS.overhead * 100}% |`);
}
