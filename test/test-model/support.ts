// Helpers shared by the test-model tests: running the built ONNX files with onnxruntime-node directly
// (feeds the way a merged-decoder client builds them), and reading the files back with onnx-proto.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { DIMS, onnxFileNames, PRESET_SPECS, testModelDir, type Dtype, type Preset } from '../../scripts/test-model/index.ts';

export const { onnx } = onnxProto;

/** Every test asks for this dtype list, so one cached build per preset serves the whole suite. */
export const ALL_DTYPES: Dtype[] = ['fp32', 'fp16', 'q8', 'int8'];

export function modelDir(preset: Preset): string {
  return testModelDir({ preset, dtypes: ALL_DTYPES });
}
export const SMALL = DIMS.small;
export const HEAD_DIM = SMALL.dModel / SMALL.heads;

const sessions = new Map<string, Promise<ort.InferenceSession>>();

export function session(dir: string, kind: 'encoder' | 'decoder', dtype: Dtype = 'fp32'): Promise<ort.InferenceSession> {
  const path = join(dir, onnxFileNames(dtype)[kind]);
  let s = sessions.get(path);
  if (!s) {
    s = ort.InferenceSession.create(path);
    sessions.set(path, s);
  }
  return s;
}

export function readModel(dir: string, file: string): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(readFileSync(join(dir, file)));
}

/** Deterministic log-mel-like features in Whisper's range, varying over time and band. */
export function features(nMels: number, batch = 1, phase = 0): ort.Tensor {
  const frames = SMALL.melFrames;
  const data = new Float32Array(batch * nMels * frames);
  for (let b = 0; b < batch; b++)
    for (let m = 0; m < nMels; m++)
      for (let t = 0; t < frames; t++)
        data[(b * nMels + m) * frames + t] = 0.8 * Math.sin(0.013 * t * (m + 1) + phase + b) - 0.2;
  return new ort.Tensor('float32', data, [batch, nMels, frames]);
}

export async function encode(dir: string, preset: Preset, dtype: Dtype = 'fp32', batch = 1, phase = 0) {
  const enc = await session(dir, 'encoder', dtype);
  const out = await enc.run({ input_features: features(PRESET_SPECS[preset].nMels, batch, phase) });
  return out.last_hidden_state!;
}

export function ids(rows: number[][]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(rows.flat(), (v) => BigInt(v)), [rows.length, rows[0]!.length]);
}

/** Zero-length past tensors, sized as transformers.js sizes them: batch_size -> batch, any other name -> 0. */
export function emptyPast(dec: ort.InferenceSession, batch: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const meta of dec.inputMetadata) {
    if (!meta.name.startsWith('past_key_values.') || !meta.isTensor) continue;
    const shape = meta.shape.map((d) => (typeof d === 'number' ? d : d === 'batch_size' ? batch : 0));
    feeds[meta.name] = new ort.Tensor('float32', new Float32Array(0), shape);
  }
  return feeds;
}

/** present.* outputs renamed to the past_key_values.* inputs of the next step. */
/**
 * The past for the next cached step: `out`'s self-attention presents, and the encoder keys/values of
 * `first` (the prompt run), since a cached step outputs empty encoder presents, as the hub's merged
 * decoders do (consumers keep the first step's).
 */
export function pastFrom(out: ort.InferenceSession.OnnxValueMapType, first: ort.InferenceSession.OnnxValueMapType = out): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, value] of Object.entries(out)) {
    if (name.startsWith('present.') && name.includes('.decoder.')) feeds[name.replace('present.', 'past_key_values.')] = value as ort.Tensor;
  }
  for (const [name, value] of Object.entries(first)) {
    if (name.startsWith('present.') && name.includes('.encoder.')) feeds[name.replace('present.', 'past_key_values.')] = value as ort.Tensor;
  }
  return feeds;
}

export function flag(value: boolean): ort.Tensor {
  return new ort.Tensor('bool', Uint8Array.of(value ? 1 : 0), [1]);
}

/** One decoder call: no past (first step) or the given past (cached branch). */
export async function decode(
  dec: ort.InferenceSession,
  tokens: number[][],
  encoderHidden: ort.Tensor,
  past?: Record<string, ort.Tensor>,
) {
  return dec.run({
    input_ids: ids(tokens),
    encoder_hidden_states: encoderHidden,
    ...(past ?? emptyPast(dec, tokens.length)),
    use_cache_branch: flag(past !== undefined),
  });
}

/** Logits row [vocab] of batch item b at position t of a [batch, seq, vocab] tensor. */
export function row(logits: ort.Tensor, b: number, t: number): Float32Array {
  const [, seq, vocab] = logits.dims as [number, number, number];
  const data = logits.data as Float32Array;
  return data.subarray((b * seq + t) * vocab, (b * seq + t + 1) * vocab);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function argmax(values: ArrayLike<number>, skip: ReadonlySet<number> = new Set()): number {
  let best = -1;
  for (let i = 0; i < values.length; i++) if (!skip.has(i) && (best < 0 || values[i]! > values[best]!)) best = i;
  return best;
}

/** Pearson correlation, to compare a lower-precision model's logits with fp32's. */
export function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i]! - ma) * (b[i]! - mb);
    saa += (a[i]! - ma) ** 2;
    sbb += (b[i]! - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}
