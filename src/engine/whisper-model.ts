// A loaded Whisper model: the encoder and the merged decoder as onnxruntime sessions, with the KV
// cache threaded between decoder steps. Everything above this file speaks in token ids, feature
// arrays and logits; only this file knows the hub's tensor names and the cache layout.
import './telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { EarshotError } from '../errors.ts';
import { DeviceLock, deviceLock } from './device-lock.ts';
import { type EngineOptions, sessionCreateError, sessionDevice, sessionOptions } from './execution.ts';
import { GreedyPicker, type LogitMask, type Pick } from './greedy-pick.ts';

type Tensor = ort.Tensor;

export interface WhisperDims {
  nMels: number;
  dModel: number;
  decoderLayers: number;
  decoderHeads: number;
  vocabSize: number;
  /** Encoder frames per 30 s window (1500). */
  nAudioCtx: number;
  /** Longest decoder sequence the model was trained on (448). */
  nTextCtx: number;
}

export function readDims(modelDir: string): WhisperDims {
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8'));
  } catch (e) {
    throw new EarshotError('model_not_found', 'bad_config', `cannot read ${join(modelDir, 'config.json')}: ${(e as Error).message}`);
  }
  const num = (k: string, fallback?: number): number => {
    const v = cfg[k] ?? fallback;
    if (typeof v !== 'number') {
      throw new EarshotError('model_not_found', 'bad_config', `config.json has no numeric "${k}"`);
    }
    return v;
  };
  return {
    nMels: num('num_mel_bins'),
    dModel: num('d_model'),
    decoderLayers: num('decoder_layers'),
    decoderHeads: num('decoder_attention_heads'),
    vocabSize: num('vocab_size'),
    nAudioCtx: num('max_source_positions', 1500),
    nTextCtx: num('max_target_positions', 448),
  };
}

/**
 * Per-sequence decoder state: the self-attention K/V of every layer, grown by one step each call,
 * and the cross-attention K/V computed once from the encoder output on the first step.
 */
export interface DecoderCache {
  batch: number;
  /** Tokens already in the self-attention cache. */
  length: number;
  /** present.N.decoder.key|value, in layer order: [k0, v0, k1, v1, ...]. */
  self: Tensor[];
  /** present.N.encoder.key|value, in layer order. */
  cross: Tensor[];
}

/** Options of one decoder call. */
export interface DecodeOptions {
  /** Also return the logits at this position of each row (the no-speech probability's). */
  alsoPosition?: number;
  /**
   * Per row: choose the next token greedily next to the model, under this mask (see greedy-pick.ts),
   * instead of returning the row's logits; null keeps the logits.
   */
  greedy?: readonly (LogitMask | null)[];
}

export interface DecodeOutput {
  /** Logits of the LAST position of each row: [batch * vocab]; empty when every row was picked (rows picked in a mixed batch are masked). */
  logits: Float32Array;
  /** With `greedy`: each row's pick (null for rows without a mask). */
  picks?: (Pick | null)[];
  /** With `alsoPosition`: the logits at that position of each row, [batch * vocab]. */
  positionLogits?: Float32Array;
  cache: DecoderCache;
}

/** Cross-attention weights of some heads: per head, `rows` × `frames` values, row-major. */
export interface CrossAttentions {
  weights: Float32Array[];
  rows: number;
  frames: number;
}

export interface ModelFiles {
  encoder: string;
  decoder: string;
}

/**
 * An encoder output as decoding sees it: only its shape ([batch, frames, dModel]). It may be a
 * tensor (a WhisperModel's own) or a handle to one kept in the model's worker thread.
 */
export interface EncodedAudio {
  readonly dims: readonly number[];
}

/** A decoder cache as decoding sees it: rows and cached tokens, never the K/V tensors themselves. */
export interface CacheHandle {
  readonly batch: number;
  readonly length: number;
}

export interface RunnerOutput {
  /** The last position's logits, [batch * vocab]; empty when every row was picked. */
  logits: Float32Array;
  positionLogits?: Float32Array | undefined;
  /** With `greedy`, from runners that pick (a runner may ignore `greedy` and return logits instead). */
  picks?: (Pick | null)[] | undefined;
  cache: CacheHandle;
}

/**
 * What decoding needs from a model: a WhisperModel itself, the batching scheduler that stands in
 * front of one, or the remote runner that talks to both in a worker thread. Encoder outputs and
 * caches are opaque, so decoding cannot depend on where the tensors live.
 */
export interface ModelRunner {
  readonly dims: WhisperDims;
  encode(features: Float32Array, batch: number): Promise<EncodedAudio>;
  decode(
    tokens: BigInt64Array,
    batch: number,
    encoded: EncodedAudio,
    cache: CacheHandle | null,
    opts?: DecodeOptions,
  ): Promise<RunnerOutput>;
  selectRows(cache: CacheHandle, rows: readonly number[]): CacheHandle;
  /**
   * The caller makes no more calls with `handle` (a cache, or an encoder output): what it holds can
   * go now rather than at garbage collection, and a batching scheduler stops waiting for the caller.
   * Optional: runners with nothing to free or wait for lack it.
   */
  finish?(handle: CacheHandle | EncodedAudio): void;
  /** This runner with every call at `priority` (higher first), where the runner batches calls. */
  withPriority?(priority: number): ModelRunner;
  /** Word timing: WhisperModel.crossAttentions (optional: a runner that cannot forward it lacks it). */
  crossAttentions?(
    tokens: readonly number[],
    encoded: EncodedAudio,
    heads: readonly (readonly [number, number])[],
    from?: number,
  ): Promise<CrossAttentions>;
}

export class WhisperModel {
  readonly dims: WhisperDims;
  readonly dir: string;
  private readonly encoder: ort.InferenceSession;
  private readonly decoder: ort.InferenceSession;
  private readonly selfNames: { past: string; present: string }[];
  private readonly crossNames: { past: string; present: string }[];
  /** Outputs a cached step needs: logits and the grown self-attention cache. */
  private readonly cachedFetches: string[];
  private readonly decoderInputs: Set<string>;
  private readonly headDim: number;
  private readonly picker: GreedyPicker;
  /** On WebGPU, the process's one-call-at-a-time lock (device-lock.ts); null elsewhere. */
  private readonly lock: DeviceLock | null;

  private constructor(
    dir: string,
    dims: WhisperDims,
    encoder: ort.InferenceSession,
    decoder: ort.InferenceSession,
    picker: GreedyPicker,
    lock: DeviceLock | null,
  ) {
    this.dir = dir;
    this.lock = lock;
    this.dims = dims;
    this.encoder = encoder;
    this.decoder = decoder;
    this.picker = picker;
    this.headDim = dims.dModel / dims.decoderHeads;
    this.decoderInputs = new Set(decoder.inputNames);
    const names = (kind: 'decoder' | 'encoder') =>
      Array.from({ length: dims.decoderLayers }, (_, l) =>
        (['key', 'value'] as const).map((kv) => ({
          past: `past_key_values.${l}.${kind}.${kv}`,
          present: `present.${l}.${kind}.${kv}`,
        })),
      ).flat();
    this.selfNames = names('decoder');
    this.crossNames = names('encoder');
    this.cachedFetches = ['logits', ...this.selfNames.map((n) => n.present)];
    for (const { past } of [...this.selfNames, ...this.crossNames]) {
      if (!this.decoderInputs.has(past)) {
        throw new EarshotError(
          'model_not_found',
          'bad_model',
          `${dir}: the decoder has no input ${past}; earshot needs a merged decoder with a KV cache (decoder_model_merged)`,
        );
      }
    }
  }

  static async load(dir: string, files: ModelFiles, opts: EngineOptions): Promise<WhisperModel> {
    const dims = readDims(dir);
    const so = sessionOptions(opts);
    const lock = sessionDevice(opts) === 'webgpu' ? deviceLock() : null;
    const create = (path: string) => ort.InferenceSession.create(path, so);
    const [encoder, decoder] = await locked(lock, () => Promise.all([create(files.encoder), create(files.decoder)])).catch((e: unknown) => {
      throw sessionCreateError(e);
    });
    // The logits are on the CPU whatever runs the decoder, so the picks' reductions run there, on
    // one thread: a second session's thread pool would spin against the decoder's between runs
    // (with two threads a batch-16 step took half as long again on 2 cores).
    const picker = new GreedyPicker(dims.vocabSize, { intraOpNumThreads: 1, executionProviders: ['cpu'], logSeverityLevel: 3 });
    return new WhisperModel(dir, dims, encoder, decoder, picker, lock);
  }

  /** Runs the encoder on `batch` windows of log-mel features laid out [batch, nMels, 3000]. */
  async encode(features: Float32Array, batch: number): Promise<Tensor> {
    const frames = features.length / (batch * this.dims.nMels);
    const input = new ort.Tensor('float32', features, [batch, this.dims.nMels, frames]);
    const out = await locked(this.lock, () => this.encoder.run({ input_features: input }));
    return out.last_hidden_state!;
  }

  /**
   * One decoder call. With no cache, `tokens` is the whole prompt of each row and the cross-attention
   * K/V are computed from `encoded`; with a cache, `tokens` holds the new token(s) of each row.
   */
  async decode(
    tokens: BigInt64Array,
    batch: number,
    encoded: Tensor,
    cache: DecoderCache | null,
    opts: DecodeOptions = {},
  ): Promise<DecodeOutput> {
    const seq = tokens.length / batch;
    const feeds: Record<string, Tensor> = {
      input_ids: new ort.Tensor('int64', tokens, [batch, seq]),
      use_cache_branch: new ort.Tensor('bool', new Uint8Array([cache ? 1 : 0]), [1]),
    };
    if (this.decoderInputs.has('encoder_hidden_states')) {
      // The cached branch reads the cross-attention K/V from the cache, never the encoder output,
      // so it gets a zero-length stand-in with the right batch instead of `batch` copies of it.
      feeds.encoder_hidden_states = cache
        ? new ort.Tensor('float32', new Float32Array(0), [batch, 0, this.dims.dModel])
        : encoded;
    }
    const heads = this.dims.decoderHeads;
    const empty = new ort.Tensor('float32', new Float32Array(0), [batch, heads, 0, this.headDim]);
    this.selfNames.forEach(({ past }, i) => (feeds[past] = cache ? cache.self[i]! : empty));
    this.crossNames.forEach(({ past }, i) => (feeds[past] = cache ? cache.cross[i]! : empty));

    // On a cached step the cross-attention K/V come back unchanged and are not used (the first
    // step's are kept): not fetching them saves copying the whole cross cache out of onnxruntime
    // at every step, which is most of a step's cost at large batches.
    const out = await locked(this.lock, () => this.decoder.run(feeds, cache ? this.cachedFetches : this.decoder.outputNames));
    const logits = out.logits!;
    const vocab = logits.dims[2]!;
    const all = logits.data as Float32Array;
    const at = (pos: number): Float32Array => {
      const rows = new Float32Array(batch * vocab);
      for (let b = 0; b < batch; b++) rows.set(all.subarray((b * seq + pos) * vocab, (b * seq + pos + 1) * vocab), b * vocab);
      return rows;
    };
    const last = seq === 1 ? all : at(seq - 1);
    const positionLogits = opts.alsoPosition === undefined ? undefined : at(opts.alsoPosition); // copied before picking masks `last`
    const picks = opts.greedy?.some((m) => m !== null) ? await this.picker.pick(last, opts.greedy) : undefined;
    return {
      logits: picks?.every((p) => p !== null) ? new Float32Array(0) : last,
      positionLogits,
      picks,
      cache: {
        batch,
        length: (cache?.length ?? 0) + seq,
        self: this.selfNames.map(({ present }) => out[present]!),
        // The cached branch passes the cross K/V through; keep the first step's tensors so that
        // models whose cached branch returns empty placeholders still work.
        cross: cache ? cache.cross : this.crossNames.map(({ present }) => out[present]!),
      },
    };
  }

  /** The cache rows `rows` of `cache`, in that order (beam reordering, copies per candidate). */
  selectRows(cache: DecoderCache, rows: readonly number[]): DecoderCache {
    return selectCacheRows(cache, rows);
  }

  /**
   * Word timing's one teacher-forced decoder run (one row, no cache) over the whole `tokens`
   * sequence: the cross-attention weights (after the softmax) of each alignment head `heads[i]` =
   * [layer, head], for the positions `from`.. of the sequence. Needs a decoder with the
   * `cross_attentions.N` outputs of the hub's `*_timestamped` exports; others get a typed error.
   */
  async crossAttentions(
    tokens: readonly number[],
    encoded: Tensor,
    heads: readonly (readonly [number, number])[],
    from = 0,
  ): Promise<CrossAttentions> {
    const names = Array.from({ length: this.dims.decoderLayers }, (_, l) => `cross_attentions.${l}`);
    if (!names.every((n) => this.decoder.outputNames.includes(n))) {
      throw new EarshotError(
        'invalid_argument',
        'no_cross_attentions',
        `${this.dir}: this model's decoder has no cross-attention outputs (cross_attentions.N), which word timestamps need; ` +
          'use an export that has them, such as the onnx-community/whisper-*_timestamped repositories',
      );
    }
    if (heads.length === 0) throw new EarshotError('invalid_argument', 'bad_alignment_heads', `${this.dir}: no alignment heads given`);
    for (const [l, h] of heads) {
      if (!(Number.isInteger(l) && Number.isInteger(h) && l >= 0 && h >= 0 && l < this.dims.decoderLayers && h < this.dims.decoderHeads)) {
        throw new EarshotError('invalid_argument', 'bad_alignment_heads', `${this.dir}: alignment head [${l}, ${h}] is not in this model`);
      }
    }
    if (encoded.dims[0] !== 1 || !(from >= 0 && from < tokens.length)) {
      throw new EarshotError('invalid_argument', 'bad_model_call', 'crossAttentions takes one encoded window and a start inside the tokens');
    }
    const seq = tokens.length;
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, this.dims.decoderHeads, 0, this.headDim]);
    const feeds: Record<string, Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens, (t) => BigInt(t)), [1, seq]),
      use_cache_branch: new ort.Tensor('bool', new Uint8Array([0]), [1]),
    };
    if (this.decoderInputs.has('encoder_hidden_states')) feeds.encoder_hidden_states = encoded;
    for (const { past } of [...this.selfNames, ...this.crossNames]) feeds[past] = empty;
    const layers = [...new Set(heads.map(([l]) => l))];
    const out = await locked(this.lock, () => this.decoder.run(feeds, layers.map((l) => names[l]!)));
    const frames = out[names[heads[0]?.[0] ?? 0]!]?.dims[3] ?? encoded.dims[1]!;
    const rows = seq - from;
    const weights = heads.map(([l, h]) => {
      const all = out[names[l]!]!.data as Float32Array; // [1, heads, seq, frames]
      const start = (h * seq + from) * frames;
      return all.slice(start, start + rows * frames);
    });
    return { weights, rows, frames };
  }

  async release(): Promise<void> {
    await Promise.all([locked(this.lock, () => Promise.all([this.encoder.release(), this.decoder.release()])), this.picker.release()]);
  }
}

/** `fn` under `lock`, or as it is without one. */
function locked<T>(lock: DeviceLock | null, fn: () => Promise<T>): Promise<T> {
  return lock ? lock.run(fn) : fn();
}

/** A cache holding only the rows `rows` of `cache`, in that order (beam reordering, finished rows). */
export function selectCacheRows(cache: DecoderCache, rows: readonly number[]): DecoderCache {
  const pick = (t: Tensor): Tensor => {
    const [b, h, s, d] = t.dims as [number, number, number, number];
    const rowSize = h * s * d;
    const src = t.data as Float32Array;
    const dst = new Float32Array(rows.length * rowSize);
    rows.forEach((r, i) => {
      if (r < 0 || r >= b) throw new RangeError(`cache row ${r} out of range 0..${b - 1}`);
      dst.set(src.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize);
    });
    return new ort.Tensor('float32', dst, [rows.length, h, s, d]);
  };
  return { batch: rows.length, length: cache.length, self: cache.self.map(pick), cross: cache.cross.map(pick) };
}
