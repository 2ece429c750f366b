// What a test model can be asked for: presets (tokenizer + mel bands), dimension sets and weight
// formats, resolved and validated into one plain object that the builder and the cache key share.
import { EarshotError } from '../../src/errors.ts';

export type Preset = 'english' | 'multilingual' | 'mel128';
export type DimsName = 'small' | 'tiny' | 'base';
/** Weight formats, named as transformers.js names its `dtype` option. */
export type Dtype = 'fp32' | 'fp16' | 'q8' | 'int8';

export const PRESETS: readonly Preset[] = ['english', 'multilingual', 'mel128'];
export const DIMS_NAMES: readonly DimsName[] = ['small', 'tiny', 'base'];
export const DTYPES: readonly Dtype[] = ['fp32', 'fp16', 'q8', 'int8'];
/**
 * The merged decoder's form: `single`, one graph for both branches; `if`, optimum's If on
 * use_cache_branch over two graphs (what the hub's decoder_model_merged.onnx files are).
 */
export type MergedForm = 'single' | 'if';
export const MERGED_FORMS: readonly MergedForm[] = ['single', 'if'];

/** File-name suffix the hub (and transformers.js) uses for each weight format. */
export const DTYPE_SUFFIX: Record<Dtype, string> = {
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '_int8',
};

export interface PresetSpec {
  /** Folder under test/fixtures holding the real tokenizer and config files. */
  fixture: 'whisper-tiny.en' | 'whisper-tiny';
  vocabSize: number;
  nMels: number;
}

export const PRESET_SPECS: Record<Preset, PresetSpec> = {
  english: { fixture: 'whisper-tiny.en', vocabSize: 51864, nMels: 80 },
  multilingual: { fixture: 'whisper-tiny', vocabSize: 51865, nMels: 80 },
  // large-v3 style front end (128 mel bands). A real v3 vocabulary has 51866 entries (it adds
  // <|yue|>); we reuse the multilingual tokenizer, so ids from 50358 on sit one lower than in v3.
  mel128: { fixture: 'whisper-tiny', vocabSize: 51865, nMels: 128 },
};

export interface ModelDims {
  dModel: number;
  encoderLayers: number;
  decoderLayers: number;
  heads: number;
  ffnDim: number;
  /** Whisper's fixed sizes: 3000 mel frames in, 1500 encoder positions out, 448 decoder positions. */
  melFrames: number;
  sourcePositions: number;
  targetPositions: number;
}

const WHISPER_FIXED = { melFrames: 3000, sourcePositions: 1500, targetPositions: 448 };

export const DIMS: Record<DimsName, ModelDims> = {
  small: { dModel: 64, encoderLayers: 2, decoderLayers: 2, heads: 4, ffnDim: 256, ...WHISPER_FIXED },
  tiny: { dModel: 384, encoderLayers: 4, decoderLayers: 4, heads: 6, ffnDim: 1536, ...WHISPER_FIXED },
  // Whisper base's sizes: the GPU benchmark's larger model (bench/gpu.ts).
  base: { dModel: 512, encoderLayers: 6, decoderLayers: 6, heads: 8, ffnDim: 2048, ...WHISPER_FIXED },
};

export interface TestModelOptions {
  preset: Preset;
  dims?: DimsName;
  /** Weight formats to write; fp32 is always written (it is the reference for the others). */
  dtypes?: readonly Dtype[];
  /** Seed of the weights; the same seed gives byte-identical files. */
  seed?: number;
  /** Decoders also output `cross_attentions.N`, as the hub's `*_timestamped` repositories (word timestamps). */
  timestamped?: boolean;
  /** The merged decoder's form; `single` by default. */
  merged?: MergedForm;
  /**
   * The fp16 files take and give float16 tensors (input_features, last_hidden_state,
   * encoder_hidden_states, the K/V caches, logits, cross_attentions) instead of keeping float32
   * I/O: the form of an fp16 conversion without keep_io_types (onnxconverter's default) and of
   * onnxruntime-genai's exports, whose caches transformers.js builds as float16 (`kv_cache_dtype`).
   * Needs fp16 among the dtypes; the other formats keep float32 I/O.
   */
  halfIo?: boolean;
}

export interface ResolvedOptions {
  preset: Preset;
  dims: DimsName;
  dtypes: Dtype[];
  seed: number;
  timestamped: boolean;
  merged: MergedForm;
  halfIo: boolean;
}

function oneOf<T extends string>(what: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new EarshotError(
    'invalid_argument',
    `bad_${what}`,
    `unknown ${what} ${JSON.stringify(value)}: expected one of ${allowed.join(', ')}`,
  );
}

/** Validates options and fills defaults; dtypes come back sorted, deduplicated, fp32 first. */
export function resolveOptions(o: TestModelOptions): ResolvedOptions {
  const preset = oneOf('preset', o.preset, PRESETS);
  const dims = oneOf('dims', o.dims ?? 'small', DIMS_NAMES);
  const wanted = new Set<Dtype>(['fp32']);
  for (const d of o.dtypes ?? []) wanted.add(oneOf('dtype', d, DTYPES));
  const dtypes = DTYPES.filter((d) => wanted.has(d));
  const seed = o.seed ?? 1;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new EarshotError('invalid_argument', 'bad_seed', `seed must be a non-negative integer, got ${seed}`);
  }
  if (o.timestamped !== undefined && typeof o.timestamped !== 'boolean') {
    throw new EarshotError('invalid_argument', 'bad_timestamped', `timestamped must be true or false, got ${JSON.stringify(o.timestamped)}`);
  }
  const merged = oneOf('merged', o.merged ?? 'single', MERGED_FORMS);
  if (o.halfIo !== undefined && typeof o.halfIo !== 'boolean') {
    throw new EarshotError('invalid_argument', 'bad_half_io', `halfIo must be true or false, got ${JSON.stringify(o.halfIo)}`);
  }
  if (o.halfIo && !dtypes.includes('fp16')) {
    throw new EarshotError('invalid_argument', 'bad_half_io', 'float16 I/O (halfIo) is a form of the fp16 files: add fp16 to the dtypes');
  }
  return { preset, dims, dtypes, seed, timestamped: o.timestamped ?? false, merged, halfIo: o.halfIo ?? false };
}
