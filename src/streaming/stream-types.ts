// What a stream session reports and holds, shared by the session (stream-session.ts) and its two
// workers: partial hypotheses (stream-partials.ts) and finals (stream-finals.ts).
import type { DecodingModel } from '../decoding/transcribe.ts';
import type { ModelRunner } from '../engine/model-types.ts';
import type { WorkQueue } from '../engine/work-queue.ts';
import type { IncrementalLogMel, LogMelExtractor } from '../features/index.ts';
import type { EarshotError } from '../errors.ts';
import type { LocalAgreement } from './local-agreement.ts';

/** The parts of a loaded model a stream uses: decoding's, the mel's frames, and the model's work queue. */
export interface StreamModel extends DecodingModel {
  features: Pick<LogMelExtractor, 'config' | 'melFrames'>;
  queue: WorkQueue<ModelRunner>;
}

export interface FinalSegment {
  start: number;
  end: number;
  text: string;
}

/** What a session reports. Positions are seconds on the stream's time line (from its first sample). */
export type StreamEvent =
  | { type: 'speech_started'; item: number; start: number }
  | { type: 'partial'; item: number; delta: string; committed: string; tentative: string }
  | { type: 'speech_stopped'; item: number; end: number; forced: boolean }
  | { type: 'final'; item: number; text: string; start: number; end: number; language: string; segments: FinalSegment[] }
  | { type: 'error'; item: number | null; error: EarshotError };

export interface StreamObserver {
  /** Seconds from a detected endpoint to its final. */
  finalLatency?(seconds: number): void;
  /** Seconds between two partial updates of one utterance. */
  partialInterval?(seconds: number): void;
  partialDropped?(): void;
}

export interface StreamStats {
  partials: number;
  droppedPartials: number;
  finals: number;
  /** Finals that came from a speculative decode (see stream-finals.ts). */
  speculated: number;
}

/** A final's decode: its text begins with the utterance's committed text (stream-partials.ts). */
export interface FinalResult {
  text: string;
  /** Seconds from the start of the utterance. */
  segments: FinalSegment[];
  language: string;
}

export interface Speculation {
  end: number;
  abort: AbortController;
  result: Promise<FinalResult>;
  /** How many committed tokens it was decoded with. */
  prefix: number;
}

export interface Utterance {
  item: number;
  /** Absolute sample where it starts. */
  start: number;
  /** Set once it has ended. */
  end: number | null;
  /** Its log-mel, computed as its audio arrives (partials and finals read prefixes of it). */
  mel: IncrementalLogMel;
  agreement: LocalAgreement;
  committedText: string;
  /** Utterance samples at which the next partial falls due. */
  nextPartialAt: number;
  lastPartialAt: number | null;
  language: string | undefined;
  /** Aborts its queued or running partial. */
  partial: AbortController | null;
  /** The final decoded early for a tentative end (see stream-finals.ts). */
  speculation: Speculation | null;
}

/** What the session lends its workers: how to report, the counters, and the stream's own abort. */
export interface SessionParts {
  send(e: StreamEvent): void;
  fail(item: number | null, e: unknown): void;
  readonly counts: StreamStats;
  readonly observer: StreamObserver;
  /** Aborted when the client is gone. */
  readonly signal: AbortSignal;
  now(): number;
}
