// Typed errors shared by every layer. Each carries a stable `code` so the CLI can print one clear
// line and the server can map it to an HTTP status without string matching.

export type ErrorKind =
  | 'invalid_audio' // unreadable, corrupt or unsupported input
  | 'audio_too_long' // over the configured duration bound
  | 'invalid_argument' // a bad option or parameter
  | 'model_not_found' // unknown model id, or a file missing from the hub / cache
  | 'model_unavailable' // offline and not cached, gated, or download failed
  | 'integrity' // a downloaded file failed verification
  | 'unauthorized' // missing or wrong API key
  | 'forbidden' // a valid key without the role the route needs (an ordinary key on an admin route)
  | 'payload_too_large' // an upload or message over its size bound
  | 'overloaded' // the work queue is full: retry later
  | 'not_ready' // the model is still loading
  | 'not_found' // no such resource (e.g. a job id), or not the caller's
  | 'conflict' // the resource is not in a state that allows this (e.g. a job's result before it is done)
  | 'insufficient_storage' // the server's disk cannot take what it must store (full, or failing)
  | 'internal';

export class EarshotError extends Error {
  readonly kind: ErrorKind;
  /** Finer-grained machine-readable reason, e.g. 'empty_file', 'truncated', 'not_audio'. */
  readonly code: string;
  /** The request parameter the error is about, where there is one (OpenAI's `error.param`). */
  readonly param: string | undefined;

  constructor(kind: ErrorKind, code: string, message: string, options?: { cause?: unknown; param?: string | undefined }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EarshotError';
    this.kind = kind;
    this.code = code;
    this.param = options?.param;
  }
}

export function isEarshotError(e: unknown): e is EarshotError {
  return e instanceof EarshotError;
}
