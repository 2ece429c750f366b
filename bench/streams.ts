// `npm run bench -- streams [--seconds S] [--max N] [--sample-len T] [--partial-sample-len T] [--device D]`: how many concurrent real-time
// streams this machine sustains, and end-of-speech → final latency, on a tiny-dims test model
// (random weights, so every decode runs to its token budget: the worst case for a given budget).
// Each stream is a StreamSession fed speech with pauses (the shared English clips) in 100 ms
// chunks at real-time pace, its start staggered. Two setups in the same run: batched through the
// shared scheduler (earshot's default) and the baseline, one model call at a time (the bare model
// behind a queue of concurrency 1). A level is "sustained" when the p95 latency from a detected
// end of speech to its final stays under 1 s. Finals and partials both use `--sample-len` tokens
// (default 24; `--partial-sample-len` sets the partials' apart, as the server's sessions take the
// one `--sample-len` for both): a small budget keeps the final latency low; say so when quoting the
// figures. A partial's budget is further scaled to its audio (streaming/stream-partials.ts). Each
// line gives partials per utterance (decoded partials over finals) and the interval between two
// partials of one utterance, p50/p95 (the target is the configured 500 ms), the encoder runs, and
// the decoder rows per step run (1.00: no two streams' steps shared a run). The two setups
// alternate level by level.
// Latency is counted over the ends the VAD detected; the utterances still open when the audio ends
// (closed by end(), with no silence to detect) are reported apart.
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { testModelDir } from '../scripts/test-model/index.ts';
import { DEVICE_OPTION, deviceArg } from './lib/device-arg.ts';
import { decodeAudio } from '../src/audio/index.ts';
import { modelQueue, type Whisper } from '../src/runtime/loaded-model.ts';
import { loadWhisper } from '../src/runtime/model-cache.ts';
import { StreamSession } from '../src/streaming/stream-session.ts';
import { loadSileroVad, type SileroVad } from '../src/vad/silero.ts';
import { log } from '../src/log.ts';

const SR = 16000;
const CHUNK = SR / 10;
/** The shared English clips the streams speak (bench/gpu.ts and the device kit use them too). */
export const STREAM_CLIPS = ['goforward', 'harvard_spk1_snt1', 'jfk', 'librispeech_1995-1837-0001'];
const CLIPS_DIR = new URL('../../shared/audio/real-en/', import.meta.url).pathname;
const SUSTAINED_P95_S = 1;

/** `seconds` of the clips (read from `dir`) one after another, 1 s of silence after each. */
export async function speechWithPauses(seconds: number, dir: string = CLIPS_DIR): Promise<Float32Array> {
  const clips = await Promise.all(STREAM_CLIPS.map(async (c) => (await decodeAudio(join(dir, `${c}.wav`))).samples));
  const out = new Float32Array(seconds * SR);
  for (let at = SR / 2, k = 0; at < out.length; k++) {
    const c = clips[k % clips.length]!.subarray(0, out.length - at);
    out.set(c, at);
    at += c.length + SR; // 1 s pause after each clip
  }
  return out;
}

export const quantile = (xs: number[], q: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

export interface Result {
  streams: number;
  /** End-of-speech → final, for ends the VAD detected. */
  latencies: number[];
  /** The same for the utterances open when the audio ended (closed by end(), no silence after them). */
  flushLatencies: number[];
  finals: number;
  partials: number;
  dropped: number;
  /** Seconds between two partials of one utterance. */
  partialIntervals: number[];
  /** Seconds after the last audio until the last final. */
  drain: number;
  /** The scheduler's runs during the level, by kind, and the rows they took (how much stream work shared a run). */
  runs: { encode: number; prompt: number; step: number };
  rows: { encode: number; prompt: number; step: number };
}

/** `n` streams at once on `w`, each fed `audio` at real-time pace (staggered starts). */
export async function runLevel(w: Whisper, vad: SileroVad, audio: Float32Array, n: number, sampleLen: number, partialSampleLen = sampleLen): Promise<Result> {
  const latencies: number[] = [];
  const partialIntervals: number[] = [];
  const flushLatencies: number[] = [];
  let finals = 0;
  let ending = false;
  const sessions = Array.from({ length: n }, () => {
    // A final's latency is reported just before the final itself; its item stopped before or after end().
    let latency = NaN;
    const flushed = new Set<number>();
    return new StreamSession(w, vad, (e) => {
      if (e.type === 'speech_stopped' && ending) flushed.add(e.item);
      if (e.type === 'final') {
        finals++;
        (flushed.has(e.item) ? flushLatencies : latencies).push(latency);
      }
      if (e.type === 'error') throw e.error;
    }, { sampleLen, partialSampleLen, language: 'en', observer: { finalLatency: (s) => (latency = s), partialInterval: (s) => partialIntervals.push(s) } });
  });
  // Stagger: stream i starts i * 0.37 s into the cycle (leading silence), so endpoints do not align.
  const offsets = sessions.map((_, i) => Math.round(((i * 0.37) % 4) * SR));
  const before = await w.model.stats();
  const chunks = Math.ceil(audio.length / CHUNK);
  const start = performance.now();
  for (let k = 0; k < chunks; k++) {
    for (let i = 0; i < n; i++) {
      const from = k * CHUNK - offsets[i]!;
      const piece = from < 0 ? new Float32Array(CHUNK) : audio.subarray(from, from + CHUNK);
      sessions[i]!.push(piece.length > 0 ? piece : new Float32Array(CHUNK));
    }
    const wait = start + (k + 1) * 100 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const audioEnd = performance.now();
  ending = true;
  await Promise.all(sessions.map((s) => s.end()));
  const drain = (performance.now() - audioEnd) / 1000;
  const partials = sessions.reduce((a, s) => a + s.stats.partials, 0);
  const dropped = sessions.reduce((a, s) => a + s.stats.droppedPartials, 0);
  const after = await w.model.stats();
  const kinds = ['encode', 'prompt', 'step'] as const;
  const delta = (k: 'runs' | 'rows') => Object.fromEntries(kinds.map((x) => [x, after[k][x] - before[k][x]])) as Result['runs'];
  return { streams: n, latencies, flushLatencies, finals, partials, dropped, partialIntervals, drain, runs: delta('runs'), rows: delta('rows') };
}

function line(label: string, r: Result): string {
  const ms = (s: number) => `${Math.round(s * 1000)} ms`.padStart(8);
  const flush = r.flushLatencies.length > 0 ? ` (+${r.flushLatencies.length} at the end of the audio, max ${ms(Math.max(...r.flushLatencies)).trim()})` : '';
  return `${label.padEnd(10)} ${String(r.streams).padStart(3)} streams: final latency p50 ${ms(quantile(r.latencies, 0.5))} p95 ${ms(quantile(r.latencies, 0.95))} over ${r.latencies.length} detected ends${flush}, partials ${r.partials} decoded / ${r.dropped} dropped (${(r.partials / Math.max(1, r.finals)).toFixed(1)} per utterance, interval p50 ${ms(quantile(r.partialIntervals, 0.5)).trim()} p95 ${ms(quantile(r.partialIntervals, 0.95)).trim()}), drain ${r.drain.toFixed(2)} s; encoder runs ${r.runs.encode}, rows per step run ${(r.rows.step / Math.max(1, r.runs.step)).toFixed(2)}`;
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: 'string', default: '12' },
      max: { type: 'string', default: '16' },
      'sample-len': { type: 'string', default: '24' },
      'partial-sample-len': { type: 'string' },
      ...DEVICE_OPTION,
    },
  });
  const device = deviceArg(values.device);
  const seconds = Number(values.seconds);
  const max = Number(values.max);
  const sampleLen = Number(values['sample-len']);
  const partialSampleLen = Number(values['partial-sample-len'] ?? sampleLen);
  if (![seconds, max, sampleLen, partialSampleLen].every((v) => Number.isInteger(v) && v >= 1)) {
    throw new Error('--seconds, --max, --sample-len and --partial-sample-len must be positive integers');
  }
  log.level = 'warn';
  const base = await loadWhisper(testModelDir({ preset: 'multilingual', dims: 'tiny' }), { engine: { device } });
  const vad = await loadSileroVad();
  const audio = await speechWithPauses(seconds);
  const batched = (): Whisper => ({ ...base, queue: modelQueue(base.runner, { concurrency: base.queue.concurrency, lane: base.queue.lane, maxWaiting: 10000 }) });
  const oneAtATime = (): Whisper => ({ ...base, runner: base.model, queue: modelQueue(base.model, { concurrency: 1, maxWaiting: 10000 }) });

  console.log(`load average before the run: ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`);
  console.log(`tiny-dims multilingual test model on device ${device}, ${seconds} s of speech with pauses per stream at real-time pace, sampleLen ${sampleLen}, partials' ${partialSampleLen}`);
  await runLevel(batched(), vad, audio.subarray(0, 3 * SR), 1, sampleLen, partialSampleLen); // warm-up

  const single = await runLevel(batched(), vad, audio, 1, sampleLen, partialSampleLen);
  console.log(line('1 stream', single));
  const capacity: Record<string, number> = {};
  // The two setups alternate at each level, so that a drift in the machine's load hits both alike;
  // a setup stops at the first level it does not sustain.
  const setups = [['batched', batched], ['one-by-one', oneAtATime]] as const;
  const going = new Set<string>(setups.map(([label]) => label));
  for (const [label] of setups) capacity[label] = 0;
  for (let n = 2; n <= max && going.size > 0; n *= 2) {
    for (const [label, make] of setups) {
      if (!going.has(label)) continue;
      const r = await runLevel(make(), vad, audio, n, sampleLen, partialSampleLen);
      console.log(line(label, r));
      if (quantile(r.latencies, 0.95) > SUSTAINED_P95_S || r.finals === 0) going.delete(label);
      else capacity[label] = n;
    }
  }
  console.log(
    `sustained (p95 end-of-speech → final ≤ ${SUSTAINED_P95_S} s): batched ${capacity.batched} streams, one-by-one ${capacity['one-by-one']} streams` +
      ` (ratio ${capacity['one-by-one'] ? (capacity.batched! / capacity['one-by-one']).toFixed(1) : '∞'}x)`,
  );
  const p95 = quantile(single.latencies, 0.95);
  console.log(`one stream: p95 end-of-speech → final ${Math.round(p95 * 1000)} ms (target ≤ 300 ms): ${p95 <= 0.3 ? 'met' : 'NOT met'}`);
}
