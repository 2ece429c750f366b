// The logit filters of openai/whisper's decoding.py (SuppressBlank, SuppressTokens,
// ApplyTimestampRules), on one sequence's logits at a time. They run at every decoder step for
// every beam, so apply() allocates nothing: ranges are masked with Float32Array.fill, and the
// "is a timestamp more likely than any text token" test compares logsumexp(timestamp logits) with
// max(text logits) directly — the same comparison as openai's on log_softmax values, since both
// sides differ from it by the same normaliser.
//
// Suppressed tokens: openai's default `suppress_tokens="-1"` means tokenizer.non_speech_tokens
// plus <|transcribe|> <|translate|> <|startoftranscript|> <|startofprev|> <|startoflm|>
// <|nospeech|>. HF's generation_config.suppress_tokens holds exactly that set, precomputed (the
// tests check this for tiny and tiny.en), and begin_suppress_tokens is SuppressBlank's [" ", EOT].
// We compute the set from the tokenizer instead of trusting the file, so a model whose
// generation_config lacks or trims the list still decodes as openai does.
//
// max_initial_timestamp follows openai (1.0 s → index 50), not HF's tiny.en
// max_initial_timestamp_index of 1.
//
// Every filter only masks, and what it masks depends on the sequence so far alone, except the
// timestamp rule's last test, which reads the logits. So a filter says what it masks as a LogitMask
// (ids, ranges, and whether that test follows), which greedy decoding sends with the decoder call
// so the model's thread picks the token (engine/greedy-pick.ts); applyMask does the same here on a
// whole row, for sampling and beam search.
import { EarshotError } from '../errors.ts';
import { type LogitMask, maskRow } from '../engine/greedy-pick.ts';
import { logSumExp, maxOf } from './math.ts';
import { TIME_PRECISION, type WhisperTokenizer } from './tokenizer.ts';

/** A LogitMask being built up by a chain of filters. */
export interface MaskBuilder {
  ids: number[];
  ranges: [number, number][];
  timestampBegin?: number;
}

export interface LogitFilter {
  /**
   * Adds what this filter masks at the next position to `into`. `tokens` is the whole sequence so
   * far, initial tokens included, so `tokens.length === sampleBegin` at the first sampled position.
   */
  mask(tokens: ArrayLike<number>, into: MaskBuilder): void;
  /** Masks `logits` (one sequence, vocabulary-sized) in place: this filter alone, as applyLogitFilters does a chain. */
  apply(logits: Float32Array, tokens: ArrayLike<number>): void;
}

/** Masks one row in place: the mask's ids and ranges, then the timestamp rule if the mask asks for it. */
export function applyMask(logits: Float32Array, mask: LogitMask): void {
  maskRow(logits, mask);
  const ts = mask.timestampBegin;
  // The timestamps together outweigh the best text token: a timestamp it is.
  if (ts !== undefined && logSumExp(logits, ts, logits.length) > maxOf(logits, 0, ts)) logits.fill(-Infinity, 0, ts);
}

/** What `filters` mask after `tokens`, in their order. */
export function maskFor(filters: readonly LogitFilter[], tokens: ArrayLike<number>): LogitMask {
  const into: MaskBuilder = { ids: [], ranges: [] };
  for (const f of filters) f.mask(tokens, into);
  return into;
}

/** A filter's `apply`, from its `mask`. */
function applyOne(filter: LogitFilter, logits: Float32Array, tokens: ArrayLike<number>): void {
  applyMask(logits, maskFor([filter], tokens));
}

/** At the first sampled position, forbid a blank (" ") or an immediate <|endoftext|>. */
export class SuppressBlank implements LogitFilter {
  readonly #ids: Int32Array;
  readonly #sampleBegin: number;

  constructor(blankAndEot: readonly number[], sampleBegin: number) {
    this.#ids = Int32Array.from(blankAndEot);
    this.#sampleBegin = sampleBegin;
  }

  static fromTokenizer(tok: WhisperTokenizer, sampleBegin: number): SuppressBlank {
    return new SuppressBlank([...tok.encode(' '), tok.eot], sampleBegin);
  }

  mask(tokens: ArrayLike<number>, into: MaskBuilder): void {
    if (tokens.length === this.#sampleBegin) into.ids.push(...this.#ids);
  }

  apply(logits: Float32Array, tokens: ArrayLike<number>): void {
    applyOne(this, logits, tokens);
  }
}

/** Forbids a fixed set of tokens at every step. */
export class SuppressTokens implements LogitFilter {
  readonly ids: Int32Array;

  constructor(ids: readonly number[]) {
    this.ids = Int32Array.from(ids);
  }

  mask(_tokens: ArrayLike<number>, into: MaskBuilder): void {
    into.ids.push(...this.ids);
  }

  apply(logits: Float32Array, tokens: ArrayLike<number> = []): void {
    applyOne(this, logits, tokens);
  }
}

export interface TimestampRuleIds {
  eot: number;
  noTimestamps: number;
  timestampBegin: number;
}

/**
 * Keeps sampled timestamps well formed: <|notimestamps|> never; timestamps in pairs (a lone
 * timestamp is followed by another or by EOT; a pair by text); never decreasing, and a new
 * segment longer than zero; the first token a timestamp no later than `maxInitialTimestampIndex`;
 * and a timestamp forced whenever all timestamps together outweigh the best text token.
 */
export class ApplyTimestampRules implements LogitFilter {
  readonly #eot: number;
  readonly #noTimestamps: number;
  readonly #tsBegin: number;
  readonly #sampleBegin: number;
  readonly #maxInitial: number | null;

  constructor(ids: TimestampRuleIds, sampleBegin: number, maxInitialTimestampIndex: number | null) {
    this.#eot = ids.eot;
    this.#noTimestamps = ids.noTimestamps;
    this.#tsBegin = ids.timestampBegin;
    this.#sampleBegin = sampleBegin;
    this.#maxInitial = maxInitialTimestampIndex;
  }

  mask(tokens: ArrayLike<number>, into: MaskBuilder): void {
    const tsBegin = this.#tsBegin;
    const n = tokens.length;
    into.ids.push(this.#noTimestamps);
    into.timestampBegin = tsBegin;

    const sampled = n - this.#sampleBegin;
    const lastWasTimestamp = sampled >= 1 && tokens[n - 1]! >= tsBegin;
    const penultimateWasTimestamp = sampled < 2 || tokens[n - 2]! >= tsBegin;
    if (lastWasTimestamp) {
      if (penultimateWasTimestamp) into.ranges.push([tsBegin, Infinity]); // pair closed: text next
      else into.ranges.push([0, this.#eot]); // pair open: timestamp or EOT next
    }

    let lastTimestamp = -1;
    for (let i = n - 1; i >= this.#sampleBegin; i--) {
      if (tokens[i]! >= tsBegin) {
        lastTimestamp = tokens[i]!;
        break;
      }
    }
    if (lastTimestamp >= 0) {
      // A closing timestamp may equal the opening one; anything else must be strictly later, so
      // every new segment has a nonzero length and the seek loop cannot stall.
      const end = lastWasTimestamp && !penultimateWasTimestamp ? lastTimestamp : lastTimestamp + 1;
      into.ranges.push([tsBegin, end]);
    }

    if (n === this.#sampleBegin) {
      into.ranges.push([0, tsBegin]); // the first sampled token is a timestamp
      if (this.#maxInitial !== null) into.ranges.push([tsBegin + this.#maxInitial + 1, Infinity]);
    }
  }

  apply(logits: Float32Array, tokens: ArrayLike<number>): void {
    applyOne(this, logits, tokens);
  }
}

/** Applies filters in order, as openai does (blank, suppress, timestamps). */
export function applyLogitFilters(filters: readonly LogitFilter[], logits: Float32Array, tokens: ArrayLike<number>): void {
  applyMask(logits, maskFor(filters, tokens));
}

/**
 * openai's `_get_suppress_tokens`: `spec` is a list of ids or a comma-separated string; -1 stands
 * for the non-speech symbols. Control tokens that must never be sampled are always added. An
 * empty spec means no suppression at all (openai then adds no SuppressTokens filter).
 */
export function suppressTokenIds(tok: WhisperTokenizer, spec: string | readonly number[] = '-1'): number[] {
  let ids: number[];
  if (typeof spec === 'string') {
    if (spec.trim() === '') return [];
    ids = spec.split(',').map((s) => {
      const v = Number(s.trim());
      if (s.trim() === '' || !Number.isInteger(v)) {
        throw new EarshotError('invalid_argument', 'bad_suppress_tokens', `suppress_tokens: "${s}" is not a token id`);
      }
      return v;
    });
  } else {
    if (spec.length === 0) return [];
    ids = [...spec];
  }
  for (const id of ids) {
    if (!Number.isInteger(id) || id < -1 || id >= tok.vocabSize) {
      throw new EarshotError('invalid_argument', 'bad_suppress_tokens', `suppress_tokens: ${id} is not a token id of this model`);
    }
  }
  const set = new Set(ids.filter((t) => t >= 0));
  if (ids.includes(-1)) for (const t of tok.nonSpeechTokens()) set.add(t);
  for (const t of [tok.transcribe, tok.translate, tok.sot, tok.sotPrev, tok.sotLm, tok.noSpeech]) set.add(t);
  return [...set].sort((a, b) => a - b);
}

export interface LogitFilterOptions {
  /** Index of the first sampled token (InitialTokens.sampleBegin). */
  sampleBegin: number;
  /** Default true. */
  suppressBlank?: boolean;
  /** Default "-1" (non-speech symbols). */
  suppressTokens?: string | readonly number[];
  /** True when <|notimestamps|> is in the SOT sequence; then no timestamp rules. */
  withoutTimestamps?: boolean;
  /** Seconds; default 1.0. 0 or null: no limit (openai treats a falsy value so). */
  maxInitialTimestamp?: number | null;
}

/** The filter chain DecodingTask builds for one decode call. */
export function buildLogitFilters(tok: WhisperTokenizer, options: LogitFilterOptions): LogitFilter[] {
  const filters: LogitFilter[] = [];
  if (options.suppressBlank ?? true) filters.push(SuppressBlank.fromTokenizer(tok, options.sampleBegin));
  const suppress = suppressTokenIds(tok, options.suppressTokens ?? '-1');
  if (suppress.length > 0) filters.push(new SuppressTokens(suppress));
  if (!options.withoutTimestamps) {
    const seconds = options.maxInitialTimestamp === undefined ? 1.0 : options.maxInitialTimestamp;
    if (seconds !== null && !(Number.isFinite(seconds) && seconds >= 0)) {
      throw new EarshotError('invalid_argument', 'bad_max_initial_timestamp', `max_initial_timestamp must be a number of seconds ≥ 0, got ${seconds}`);
    }
    const index = seconds ? roundHalfEven(seconds / TIME_PRECISION) : null;
    filters.push(new ApplyTimestampRules(tok, options.sampleBegin, index));
  }
  return filters;
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
