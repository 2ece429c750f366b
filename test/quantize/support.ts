// Helpers shared by the quantisation tests: a quantised copy of a built test model in a temporary
// folder (removed when the process exits), and greedy decoding through earshot's model runner.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testModelDir, type DimsName, type Preset } from '../../scripts/test-model/index.ts';
import { quantizeFolder, type QuantizeFolderResult, type QuantTarget } from '../../src/models/quantize/index.ts';
import type { ModelRunner } from '../../src/engine/model-types.ts';

const made: string[] = [];
process.on('exit', () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'earshot-quantize-test-'));
  made.push(d);
  return d;
}

export interface QuantizedCopy extends QuantizeFolderResult {
  /** The fp32 test model it was made from. */
  source: string;
}

/** Quantises the (cached) fp32 test model into a new temporary folder. */
export function quantizedCopy(
  preset: Preset,
  to: QuantTarget,
  opts: { dims?: DimsName; perChannel?: boolean } = {},
): QuantizedCopy {
  const source = testModelDir({ preset, dims: opts.dims ?? 'small' });
  const outDir = join(tempDir(), 'model');
  return { source, ...quantizeFolder(source, { to, outDir, perChannel: opts.perChannel ?? false }) };
}

/** Deterministic log-mel-like features [1, nMels, 3000]; `phase` varies them per input. */
export function features(nMels: number, phase: number): Float32Array {
  const frames = 3000;
  const data = new Float32Array(nMels * frames);
  for (let m = 0; m < nMels; m++) {
    for (let t = 0; t < frames; t++) {
      data[m * frames + t] = 0.8 * Math.sin(0.011 * t * (m + 1) * (1 + 0.3 * phase) + 1.7 * phase) - 0.2 + 0.1 * Math.cos(0.37 * m * phase);
    }
  }
  return data;
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/**
 * Greedy decoding (plain argmax, no suppression) of `steps` tokens after `prompt`, returning each
 * step's logits. With `forced`, those tokens are fed instead of the model's own picks (teacher
 * forcing), so two models can be compared on the same token path.
 */
export async function greedy(
  model: ModelRunner,
  mel: Float32Array,
  prompt: number[],
  steps: number,
  forced?: readonly number[],
): Promise<{ tokens: number[]; logits: Float32Array[] }> {
  const encoded = await model.encode(mel, 1);
  let out = await model.decode(BigInt64Array.from(prompt, BigInt), 1, encoded, null);
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  for (let i = 0; i < steps; i++) {
    logits.push(Float32Array.from(out.logits));
    tokens.push(argmax(out.logits));
    const next = forced?.[i] ?? tokens[i]!;
    if (i + 1 < steps) out = await model.decode(BigInt64Array.of(BigInt(next)), 1, encoded, out.cache);
  }
  return { tokens, logits };
}

/** max |a - b| / max |b|: the error of `a` relative to the range of the reference `b`. */
export function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}
