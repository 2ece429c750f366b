// A loaded Whisper model: the encoder and the merged decoder as onnxruntime sessions, with the KV
// cache threaded between decoder steps. Everything above this file speaks in token ids, feature
// arrays and logits; only this file knows the hub's tensor names and the cache layout.
import './telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import ort from 'onnxruntime-node';
import { EarshotError } from '../errors.ts';
import { DeviceLock, deviceLock } from './device-lock.ts';
import { DevicePicker } from './device-pick.ts';
import { DeviceTensors, gatherHostRows, onDevice, type RowOf, tensorBytes, transferOf } from './device-tensors.ts';
import { type EngineOptions, sessionCreateError, sessionDevice, sessionOptions } from './execution.ts';
import { GreedyPicker, type LogitMask } from './greedy-pick.ts';
import { castHost, emptyTensor, floatTensor, hostFloat32, type ModelIoTypes, readIoTypes } from './io-types.ts';
import { readDims, type WhisperDims } from './model-dims.ts';
import { releaseHandle, RowSelection, selectCacheRows } from './cache-rows.ts';
import { type DeviceTensorStats, gatherEach, NO_DEVICE_TENSORS, releaseTensors, retainTensors } from './device-refs.ts';
import type { DecoderCache, DecodeOptions, DecodeOutput, CrossAttentions, ModelFiles, LoadOptions, TransferCounts } from './model-types.ts';

type Tensor = ort.Tensor;

export class WhisperModel {
  readonly dims: WhisperDims;
  readonly dir: string;
  /** The float types its sessions take and give (io-types.ts): float32, or float16 for some fp16 files. */
  readonly io: ModelIoTypes;
  private readonly encoder: ort.InferenceSession;
  /** The decoder for prompts (no cache), and for every call when nothing is kept on the device. */
  private readonly decoder: ort.InferenceSession;
  /**
   * With keepOnDevice, one decoder session per set of outputs fetched: onnxruntime-node 1.30 keeps
   * one IoBinding per session and never clears it, so an output fetched by one run and not the next
   * stays bound to the old run's tensor, and the next run fails on its shape (see WEBGPU.md).
   * `step` fetches the cached step's outputs; `align`, made on first use, the alignment weights.
   */
  private readonly step: ort.InferenceSession;
  private align: Promise<ort.InferenceSession> | null = null;
  private readonly makeAlign: () => Promise<ort.InferenceSession>;
  private readonly selfNames: { past: string; present: string }[];
  private readonly crossNames: { past: string; present: string }[];
  /** Outputs a cached step needs: logits and the grown self-attention cache. */
  private readonly cachedFetches: string[];
  private readonly decoderInputs: Set<string>;
  private readonly headDim: number;
  private readonly picker: GreedyPicker;
  /** With keepOnDevice: greedy picks of a cached step, on the device. */
  private readonly devicePicker: DevicePicker | null;
  /** On WebGPU, the process's one-call-at-a-time lock (device-lock.ts); null elsewhere. */
  private readonly lock: DeviceLock | null;
  /** With keepOnDevice: moves and copies of the tensors kept on the device. */
  private readonly device: DeviceTensors | null;
  /** Bytes that crossed session.run boundaries (uploads of host feeds, downloads of host outputs). */
  readonly transfers: TransferCounts = {
    encode: { runs: 0, up: 0, down: 0 },
    prompt: { runs: 0, up: 0, down: 0 },
    step: { runs: 0, up: 0, down: 0 },
  };

  private constructor(
    dir: string,
    dims: WhisperDims,
    encoder: ort.InferenceSession,
    decoder: ort.InferenceSession,
    picker: GreedyPicker,
    lock: DeviceLock | null,
    device: DeviceTensors | null,
    step: ort.InferenceSession,
    makeAlign: () => Promise<ort.InferenceSession>,
    pickOptions: ort.InferenceSession.SessionOptions,
  ) {
    this.step = step;
    this.makeAlign = makeAlign;
    this.dir = dir;
    this.lock = lock;
    this.device = device;
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
    this.io = readIoTypes(dir, encoder, decoder);
    this.devicePicker = device ? new DevicePicker(dims.vocabSize, this.io.logits, pickOptions, (s, feeds) => this.run(s, 'step', feeds, undefined, false)) : null;
  }

  static async load(dir: string, files: ModelFiles, opts: EngineOptions, load: LoadOptions = {}): Promise<WhisperModel> {
    const dims = readDims(dir);
    const so = sessionOptions(opts);
    const lock = sessionDevice(opts) === 'webgpu' ? deviceLock() : null;
    const keep = lock !== null && (load.keepOnDevice ?? true);
    // Kept on the device: the encoder output and every present.* (the K/V caches), which are only
    // fed back; the logits and the alignment heads' weights (outputs not named: 'cpu') come to the host.
    const present = Array.from({ length: dims.decoderLayers }, (_, l) =>
      ['decoder', 'encoder'].flatMap((kind) => ['key', 'value'].map((kv) => [`present.${l}.${kind}.${kv}`, 'gpu-buffer'] as const)),
    ).flat();
    const placed = (where: ort.InferenceSession.SessionOptions['preferredOutputLocation']) => (keep ? { ...so, preferredOutputLocation: where } : so);
    const create = (path: string, options: ort.InferenceSession.SessionOptions) => ort.InferenceSession.create(path, options);
    const [encoder, decoder, step] = await locked(lock, async () => {
      const [encoder, decoder] = await Promise.all([create(files.encoder, placed('gpu-buffer')), create(files.decoder, placed(Object.fromEntries(present)))]);
      // The step session's outputs all stay on the device, the logits too (see devicePicker). One
      // string for all also avoids 1.30's positional mix-up of locations when a run fetches a
      // subset of the outputs (WEBGPU.md).
      return [encoder, decoder, keep ? await create(files.decoder, placed('gpu-buffer')) : null] as const;
    }).catch((e: unknown) => {
      throw sessionCreateError(e);
    });
    // The logits are on the CPU whatever runs the decoder, so the picks' reductions run there, on
    // one thread: a second session's thread pool would spin against the decoder's between runs
    // (with two threads a batch-16 step took half as long again on 2 cores).
    const picker = new GreedyPicker(dims.vocabSize, { intraOpNumThreads: 1, executionProviders: ['cpu'], logSeverityLevel: 3 });
    const device = keep ? new DeviceTensors(lock, so) : null;
    const makeAlign = () => (keep ? locked(lock, () => create(files.decoder, so)) : Promise.resolve(decoder));
    return new WhisperModel(dir, dims, encoder, decoder, picker, lock, device, step ?? decoder, makeAlign, so);
  }

  /**
   * A tensor whose row i is `rows[i]` (rows of [batch, ...] tensors of one shape but the first
   * dim): gathered on the device when any source is kept there, else copied on the host.
   */
  async gatherRows(rows: readonly RowOf[]): Promise<Tensor> {
    return this.device && rows.some((r) => onDevice(r.tensor)) ? this.device.gather(rows) : gatherHostRows(rows);
  }

  /** `t` (an encoder output, a cache tensor) on the host: a copy when it is kept on the device. */
  async toHost(t: Tensor): Promise<Tensor> {
    return this.device && onDevice(t) ? this.device.toHost(t) : t;
  }

  /** session.run, under the device lock, with its host<->device bytes counted under `kind`. */
  private async run(
    session: ort.InferenceSession,
    kind: keyof TransferCounts,
    feeds: Record<string, Tensor>,
    fetches?: readonly string[],
    countRun = true,
  ): Promise<Record<string, Tensor>> {
    const out = await locked(this.lock, () => (fetches ? session.run(feeds, fetches) : session.run(feeds)));
    const t = transferOf(feeds, out);
    const c = this.transfers[kind];
    if (countRun) c.runs++;
    c.up += t.up;
    c.down += t.down;
    if (this.device) for (const v of Object.values(out)) this.device.track(v);
    return out;
  }

  /** Runs the encoder on `batch` windows of log-mel features laid out [batch, nMels, 3000]. */
  async encode(features: Float32Array, batch: number): Promise<Tensor> {
    const frames = features.length / (batch * this.dims.nMels);
    const input = floatTensor(this.io.features, features, [batch, this.dims.nMels, frames]);
    const out = (await this.run(this.encoder, 'encode', { input_features: input })).last_hidden_state!;
    if (out.type === this.io.hidden) return out;
    // An encoder and a decoder of different I/O types (say encoder=fp32,decoder=fp16): the output
    // is cast once here, on the host, rather than at every use.
    const host = await this.toHost(out).finally(() => releaseTensors([out])); // the cast copy replaces it
    if (host !== out) this.transfers.encode.down += tensorBytes(host);
    return castHost(host, this.io.hidden);
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
    // Ownership (device-refs.ts): the returned cache holds a reference on each of its tensors, the
    // caller's to finish; everything else this call made on the device goes before it returns.
    const selection = cache instanceof RowSelection ? await this.selected(cache) : null;
    const made: Tensor[] = [];
    let result: DecodeOutput | undefined;
    try {
      return (result = await this.decodeOn(tokens, batch, encoded, selection ?? cache, opts, made));
    } finally {
      if (result && cache) retainTensors(result.cache.cross); // a step passes its input's cross K/V on
      const kept = new Set(result ? [...result.cache.self, ...result.cache.cross] : []);
      releaseTensors(made.filter((t) => !kept.has(t)));
      if (selection) releaseTensors([...selection.self, ...selection.cross]);
    }
  }

  /** decode, on a cache of tensors; the run's outputs go into `made`. */
  private async decodeOn(
    tokens: BigInt64Array,
    batch: number,
    encoded: Tensor,
    cache: DecoderCache | null,
    opts: DecodeOptions,
    made: Tensor[],
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
        ? emptyTensor(this.io.hidden, [batch, 0, this.dims.dModel])
        : encoded;
    }
    const heads = this.dims.decoderHeads;
    const empty = emptyTensor(this.io.cache, [batch, heads, 0, this.headDim]);
    this.selfNames.forEach(({ past }, i) => (feeds[past] = cache ? cache.self[i]! : empty));
    this.crossNames.forEach(({ past }, i) => (feeds[past] = cache ? cache.cross[i]! : empty));

    // On a cached step the cross-attention K/V come back unchanged and are not used (the first
    // step's are kept): not fetching them saves copying the whole cross cache out of onnxruntime
    // at every step, which is most of a step's cost at large batches.
    const out = cache ? await this.run(this.step, 'step', feeds, this.cachedFetches) : await this.run(this.decoder, 'prompt', feeds, this.decoder.outputNames);
    made.push(...Object.values(out));
    const cacheOut = {
      batch,
      length: (cache?.length ?? 0) + seq,
      self: this.selfNames.map(({ present }) => out[present]!),
      // The cached branch passes the cross K/V through; keep the first step's tensors so that
      // models whose cached branch returns empty placeholders still work.
      cross: cache ? cache.cross : this.crossNames.map(({ present }) => out[present]!),
    };
    let logits = out.logits!;
    if (onDevice(logits)) {
      // A step's logits stay on the device (device-pick.ts): greedy rows are picked there and only
      // their statistics come back; other rows need the logits themselves, copied back.
      const masks = opts.greedy;
      if (masks?.every((m) => m !== null) && opts.alsoPosition === undefined && seq === 1 && this.devicePicker) {
        return { logits: new Float32Array(0), picks: await this.devicePicker.pick(logits, masks as LogitMask[]), cache: cacheOut };
      }
      logits = await this.device!.toHost(logits);
      this.transfers.step.down += tensorBytes(logits);
    }
    const vocab = logits.dims[2]!;
    const all = hostFloat32(logits); // float16 logits are read as float32 from here on
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
      cache: cacheOut,
    };
  }

  /** The cache rows `rows` of `cache`, in that order (beam reordering, copies per candidate). */
  selectRows(cache: DecoderCache, rows: readonly number[]): DecoderCache {
    // Device tensors cannot be read here: the rows are gathered on the device at the next decode.
    if (cache instanceof RowSelection) return new RowSelection(cache.from, rows.map((r) => cache.rows[r]!));
    return cache.self.some(onDevice) ? new RowSelection(cache, rows) : selectCacheRows(cache, rows);
  }

  /** A RowSelection's tensors, gathered on the device (the caller's to release). */
  private async selected(sel: RowSelection): Promise<DecoderCache> {
    const rows = (t: Tensor) => sel.rows.map((row) => ({ tensor: t, row }));
    const all = await gatherEach((r) => this.device!.gather(r), [...sel.from.self, ...sel.from.cross].map(rows));
    return { batch: sel.batch, length: sel.length, self: all.slice(0, sel.from.self.length), cross: all.slice(sel.from.self.length) };
  }

  /** Its caller is done with `handle` (an encoder output or a cache): its device tensors go now, not at GC. */
  finish(handle: Tensor | DecoderCache): void {
    releaseHandle(handle);
  }

  /** The tensors this model keeps on the device and has not freed yet (device-refs.ts). */
  deviceTensors(): DeviceTensorStats {
    return this.device?.stats() ?? NO_DEVICE_TENSORS;
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
    const empty = emptyTensor(this.io.cache, [1, this.dims.decoderHeads, 0, this.headDim]);
    const feeds: Record<string, Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens, (t) => BigInt(t)), [1, seq]),
      use_cache_branch: new ort.Tensor('bool', new Uint8Array([0]), [1]),
    };
    if (this.decoderInputs.has('encoder_hidden_states')) feeds.encoder_hidden_states = encoded;
    for (const { past } of [...this.selfNames, ...this.crossNames]) feeds[past] = empty;
    const layers = [...new Set(heads.map(([l]) => l))];
    const out = await this.run(await (this.align ??= this.makeAlign()), 'prompt', feeds, layers.map((l) => names[l]!));
    const frames = out[names[heads[0]?.[0] ?? 0]!]?.dims[3] ?? encoded.dims[1]!;
    const rows = seq - from;
    const weights = heads.map(([l, h]) => {
      const all = hostFloat32(out[names[l]!]!); // [1, heads, seq, frames]
      const start = (h * seq + from) * frames;
      return all.slice(start, start + rows * frames);
    });
    return { weights, rows, frames };
  }

  async release(): Promise<void> {
    await this.device?.disposeAll(); // first: device buffers must go before the sessions that made them
    await Promise.all([
      locked(this.lock, async () => {
        const align = this.align && (await this.align);
        const all = new Set([this.encoder, this.decoder, this.step, ...(align ? [align] : [])]);
        await Promise.all([...all].map((s) => s.release()));
      }),
      this.picker.release(),
      this.devicePicker?.release(),
      this.device?.release(),
    ]);
  }
}

/** `fn` under `lock`, or as it is without one. */
function locked<T>(lock: DeviceLock | null, fn: () => Promise<T>): Promise<T> {
  return lock ? lock.run(fn) : fn();
}
