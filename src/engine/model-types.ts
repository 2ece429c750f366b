// The types a loaded model speaks in, to the scheduler and the decoders above it: the decoder's
// per-sequence cache, a decode step's options and output, the encoded audio, and ModelRunner, the
// interface the scheduler, the model worker and the decoders call (WhisperModel is one).
import type ort from 'onnxruntime-node';
import type { Pick, LogitMask } from './greedy-pick.ts';
import type { Transfer } from './device-tensors.ts';
import type { WhisperDims } from './model-dims.ts';

type Tensor = ort.Tensor;

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

/** How a model is loaded, beyond the engine options. */
export interface LoadOptions {
  /**
   * Keep the encoder output and the decoder's K/V caches on the device between runs (WebGPU only;
   * the default there). Off, every run copies them to the host and back, as on the CPU.
   */
  keepOnDevice?: boolean;
}

/** Host<->device bytes of a model's runs, by kind of run (see device-tensors.ts). */
export type TransferCounts = Record<'encode' | 'prompt' | 'step', Transfer & { runs: number }>;

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
