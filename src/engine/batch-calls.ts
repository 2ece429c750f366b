// The calls a BatchScheduler holds until a run takes them: one kind per model entry point
// (encoder, decoder prompt, decoder step), each with the key of the calls it may share a run with
// and the cohort (group) it belongs to. Shared by the dispatch policy and the batch execution.
import type ort from 'onnxruntime-node';
import type { ScheduledCache } from './batch-cache.ts';
import type { LogitMask } from './greedy-pick.ts';
import type { DecodeOutput } from './model-types.ts';

type Tensor = ort.Tensor;

export interface CallBase {
  /** Calls of one key can share a run. */
  key: string;
  /** The cohort the call belongs to: the callers a waiting group expects back (see Ticket.group). */
  group: string;
  rows: number;
  priority: number;
  /** Among equal priorities, lower first: the caller's job's place in the work queue (batch-policy.ts). */
  order: number;
  seq: number;
  arrived: number;
  /** Whether this call follows a result the scheduler handed out (the caller came back). */
  linked: boolean;
  reject: (e: unknown) => void;
}

export interface EncodeCall extends CallBase {
  kind: 'encode';
  features: Float32Array;
  resolve: (t: Tensor) => void;
}

export interface PromptCall extends CallBase {
  kind: 'prompt';
  tokens: BigInt64Array;
  encoded: Tensor;
  alsoPosition?: number;
  greedy?: readonly (LogitMask | null)[];
  resolve: (o: DecodeOutput) => void;
}

export interface StepCall extends CallBase {
  kind: 'step';
  tokens: BigInt64Array;
  cache: ScheduledCache;
  alsoPosition?: number;
  greedy?: readonly (LogitMask | null)[];
  resolve: (o: DecodeOutput) => void;
}

export type Call = EncodeCall | PromptCall | StepCall;

/** Callers given an encoder output come back with a prompt call; those given a cache of length n, with a step on it. */
export const PROMPT_GROUP = 'prompt';
export const stepGroup = (length: number) => `step:${length}`;
