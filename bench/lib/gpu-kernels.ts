// The GPU bench's model-level timings, on a WhisperModel in the bench's own thread (no scheduler,
// no messages): an encoder run at a batch of windows, and a decoder step at a batch of rows with
// its KV cache, the greedy pick made next to the model as earshot's decoding does.
import ort from 'onnxruntime-node';
import { WhisperModel } from '../../src/engine/whisper-model.ts';
import { median } from './stats.ts';

/** Multilingual Whisper's prompt: <|startoftranscript|><|en|><|transcribe|><|notimestamps|>. */
const PROMPT = [50258, 50259, 50359, 50363];
/** Special tokens (from <|endoftext|> on) are never picked: every row decodes its whole budget. */
const TEXT_ONLY = { ids: [], ranges: [[50257, Infinity]] as const };

/** Deterministic log-mel-like features for `batch` windows. */
function features(nMels: number, batch: number): Float32Array {
  const f = new Float32Array(batch * nMels * 3000);
  for (let i = 0; i < f.length; i++) f[i] = Math.sin(i * 0.37 + (i % 7)) * 0.6 - 0.1;
  return f;
}

/**
 * Times `fn`: one warm-up call (shader compilation, arenas), then calls until `minRuns` are done
 * and `minMs` has passed, or `maxMs` has (a slow device still gets one timed call).
 */
async function timed(fn: () => Promise<unknown>, opts: { minRuns: number; minMs: number; maxMs: number }): Promise<{ ms: number; runs: number }> {
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < opts.minRuns || performance.now() - start < opts.minMs) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
    if (performance.now() - start > opts.maxMs) break;
  }
  return { ms: median(times), runs: times.length };
}

/**
 * Median ms of one encoder run over `batch` windows. On a GPU `encode` returns once the run is
 * queued, its output staying on the device (timed alone, it gave 7 ms a run on lavapipe where
 * waiting for the output took 530 ms more, and the untimed queue piled up): there a run is timed as
 * one of `perSync` back-to-back runs up to a copy of the last output to the host, which waits for
 * the device's queue; that copy, shared by `perSync` runs, is in the figure. On the CPU the output
 * is the finished run's: `perSync` 1.
 */
export async function encoderMs(model: WhisperModel, batch: number, maxMs: number, perSync: number): Promise<{ ms: number; runs: number }> {
  const input = features(model.dims.nMels, batch);
  const round = async () => {
    let last: Awaited<ReturnType<WhisperModel['encode']>> | undefined;
    for (let i = 0; i < perSync; i++) {
      // Each output freed once the next is queued (on WebGPU a batch-32 base-dims output is 98 MB of device memory).
      const next = await model.encode(input, batch);
      if (last) model.finish(last);
      last = next;
    }
    await model.toHost(last!);
    model.finish(last!);
  };
  const t = await timed(round, { minRuns: 3, minMs: 1000, maxMs });
  return { ms: t.ms / perSync, runs: t.runs * perSync };
}

/**
 * Median ms of one cached decoder step at `batch` rows (each row's prompt run first, then `steps`
 * steps of one token per row, the first of them untimed). The rows share one window's encoder
 * output, copied `batch` times: the decoder's work is the same as with `batch` different windows.
 */
export async function decoderStepMs(model: WhisperModel, batch: number, steps: number): Promise<{ ms: number; promptMs: number; steps: number }> {
  const one = await model.encode(features(model.dims.nMels, 1), 1);
  const host = await model.toHost(one); // on WebGPU the encoder output stays on the device
  // The model's own type (float32, or float16 for fp16 files with float16 I/O), copied as it is.
  const row = host.data as Float32Array | Uint16Array;
  const rows = new (row.constructor as new (n: number) => typeof row)(row.length * batch);
  for (let b = 0; b < batch; b++) rows.set(row, b * row.length);
  const encoded = new ort.Tensor(host.type as 'float32', rows as Float32Array, [batch, ...one.dims.slice(1)]);
  model.finish(one);
  const greedy = Array.from({ length: batch }, () => TEXT_ONLY);
  const prompt = BigInt64Array.from({ length: batch * PROMPT.length }, (_, i) => BigInt(PROMPT[i % PROMPT.length]!));
  let t = performance.now();
  let out = await model.decode(prompt, batch, encoded, null, { greedy });
  const promptMs = performance.now() - t;
  const times: number[] = [];
  for (let s = 0; s <= steps; s++) {
    const next = BigInt64Array.from(out.picks!, (p) => BigInt(p!.token));
    t = performance.now();
    const last = out.cache;
    out = await model.decode(next, batch, encoded, last, { greedy });
    if (s > 0) times.push(performance.now() - t);
    model.finish(last); // the step's cache replaces it: freed now, not at GC (GBs at batch 256)
  }
  model.finish(out.cache);
  return { ms: median(times), promptMs, steps: times.length };
}
