// How the next token of every candidate is chosen, one strategy per class, as openai/whisper's
// GreedyDecoder and BeamSearchDecoder: `update` takes one step's logits (or the model's own greedy
// picks), grows the candidates and says which tokens to feed next; `finalize` hands back the
// finished candidates for ranking. decode-window.ts runs the model around them.
// Hand-written because it is the product's core: openai/whisper's decoding rules, on our runner.
import type { Pick } from '../engine/greedy-pick.ts';
import { applyLogitFilters, type LogitFilter } from './logit-filters.ts';
import { logSumExp } from './math.ts';
import { N_TEXT_CTX } from './sot.ts';

export interface Candidate {
  /** Sampled tokens, without the initial tokens and without <|endoftext|>. */
  tokens: number[];
  sumLogprob: number;
}

export interface StepResult {
  /** The token each row feeds into the next decoder step. */
  next: number[];
  /** Nothing more to decode. */
  done: boolean;
  /** Beam search: the row each new row continues, when the rows were reordered. */
  sources?: number[];
}

export interface TokenDecoder {
  /** Whether the model may pick each row's token itself under the filters' mask (greedy only). */
  readonly usesPicks: boolean;
  /** The candidates' tokens so far, initial tokens included, one row each. */
  readonly rows: readonly (readonly number[])[];
  update(logits: Float32Array, picks?: readonly (Pick | null)[]): StepResult;
  /** Appends `tokens` to every row as if sampled (a forced prefix: decode-window.ts), before any row has finished. */
  force(tokens: readonly number[]): void;
  finalize(): Candidate[];
}

export interface DecoderSetup {
  filters: readonly LogitFilter[];
  eot: number;
  vocab: number;
  /** The initial tokens (prompt and SOT sequence); sampling begins after them. */
  initTokens: readonly number[];
}

function argmaxOf(row: Float32Array): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < row.length; i++) {
    if (row[i]! > bestValue) {
      bestValue = row[i]!;
      best = i;
    }
  }
  return best;
}

/** Draws from softmax(row / temperature). */
function sample(row: Float32Array, temperature: number, random: () => number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let total = 0;
  for (let i = 0; i < row.length; i++) total += Math.exp((row[i]! - max) / temperature);
  let r = random() * total;
  let last = 0;
  for (let i = 0; i < row.length; i++) {
    const p = Math.exp((row[i]! - max) / temperature);
    if (p === 0) continue;
    last = i;
    r -= p;
    if (r < 0) return i;
  }
  return last;
}

/** The `k` largest entries of `row`, best first (ties: lower id first). */
function topK(row: Float32Array, k: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (ids.length === k && v <= row[ids[k - 1]!]!) continue;
    let at = ids.length;
    while (at > 0 && row[ids[at - 1]!]! < v) at--;
    ids.splice(at, 0, i);
    if (ids.length > k) ids.pop();
  }
  return ids;
}

/** Greedy at temperature 0, sampling above it: every row chooses its own next token. */
export class GreedyDecoder implements TokenDecoder {
  readonly rows: number[][];
  readonly usesPicks: boolean;
  private readonly sums: Float64Array;
  private readonly sampleBegin: number;

  constructor(
    private readonly setup: DecoderSetup,
    nGroup: number,
    private readonly temperature: number,
    private readonly random: () => number,
  ) {
    this.rows = Array.from({ length: nGroup }, () => [...setup.initTokens]);
    this.sums = new Float64Array(nGroup);
    this.sampleBegin = setup.initTokens.length;
    this.usesPicks = temperature === 0;
  }

  update(logits: Float32Array, picks?: readonly (Pick | null)[]): StepResult {
    const { eot, vocab, filters } = this.setup;
    const next: number[] = [];
    this.rows.forEach((tokens, r) => {
      if (tokens[tokens.length - 1] === eot && tokens.length > this.sampleBegin) {
        next.push(eot);
        return;
      }
      const pick = picks?.[r];
      if (pick) {
        this.sums[r] += pick.logprob;
        next.push(pick.token);
        return;
      }
      const row = logits.subarray(r * vocab, (r + 1) * vocab);
      applyLogitFilters(filters, row, tokens);
      const t = this.temperature === 0 ? argmaxOf(row) : sample(row, this.temperature, this.random);
      // Greedy: the chosen logit is the row's maximum, so logsumexp skips its own max pass.
      this.sums[r] += row[t]! - logSumExp(row, 0, row.length, this.temperature === 0 ? row[t]! : undefined);
      next.push(t);
    });
    this.rows.forEach((tokens, r) => tokens.push(next[r]!));
    const done = this.rows.every((t) => t[t.length - 1] === eot) || this.rows[0]!.length > N_TEXT_CTX;
    return { next, done };
  }

  force(tokens: readonly number[]): void {
    for (const row of this.rows) row.push(...tokens);
  }

  finalize(): Candidate[] {
    return this.rows.map((tokens, r) => {
      const sampled = tokens.slice(this.sampleBegin);
      const end = sampled.indexOf(this.setup.eot);
      return { tokens: end < 0 ? sampled : sampled.slice(0, end), sumLogprob: this.sums[r]! };
    });
  }
}

/**
 * Beam search at temperature 0: the beamSize+1 best continuations of every beam compete; finished
 * ones are kept aside until round(beamSize * patience) of them exist.
 */
export class BeamSearchDecoder implements TokenDecoder {
  readonly usesPicks = false;
  rows: number[][];
  private readonly sums: Float64Array;
  private readonly sampleBegin: number;
  private readonly maxCandidates: number;
  /** Finished sequences by content. */
  private readonly finished = new Map<string, Candidate>();

  constructor(
    private readonly setup: DecoderSetup,
    private readonly beamSize: number,
    patience: number,
  ) {
    this.rows = Array.from({ length: beamSize }, () => [...setup.initTokens]);
    this.sums = new Float64Array(beamSize);
    this.sampleBegin = setup.initTokens.length;
    this.maxCandidates = Math.round(beamSize * patience);
  }

  update(logits: Float32Array): StepResult {
    const { eot, vocab, filters } = this.setup;
    const scored: { seq: number[]; score: number; source: number }[] = [];
    const seen = new Set<string>();
    for (let r = 0; r < this.rows.length; r++) {
      const row = logits.subarray(r * vocab, (r + 1) * vocab);
      applyLogitFilters(filters, row, this.rows[r]!);
      const lse = logSumExp(row);
      for (const t of topK(row, this.beamSize + 1)) {
        const seq = [...this.rows[r]!, t];
        const key = seq.join(',');
        const score = this.sums[r]! + (row[t]! - lse);
        if (seen.has(key)) {
          // The same sequence from two beams (possible only after identical histories): keep the last, as a dict would.
          const i = scored.findIndex((s) => s.seq.join(',') === key);
          scored[i] = { seq, score, source: r };
        } else {
          seen.add(key);
          scored.push({ seq, score, source: r });
        }
      }
    }
    scored.sort((a, b) => b.score - a.score);
    const kept: typeof scored = [];
    const newlyFinished: typeof scored = [];
    for (const s of scored) {
      if (s.seq[s.seq.length - 1] === eot) newlyFinished.push(s);
      else {
        kept.push(s);
        if (kept.length === this.beamSize) break;
      }
    }
    for (const s of newlyFinished) {
      if (this.finished.size >= this.maxCandidates) break;
      this.finished.set(s.seq.join(','), { tokens: s.seq.slice(this.sampleBegin, -1), sumLogprob: s.score });
    }
    const next: number[] = [];
    kept.forEach((s, i) => {
      this.rows[i] = s.seq;
      this.sums[i] = s.score;
      next.push(s.seq[s.seq.length - 1]!);
    });
    const sources = kept.map((s) => s.source);
    const done = this.finished.size >= this.maxCandidates || this.rows[0]!.length > N_TEXT_CTX;
    return { next, done, ...(sources.some((s, i) => s !== i) ? { sources } : {}) };
  }

  force(): void {
    throw new Error('beam search takes no forced prefix (decode-window.ts refuses it)');
  }

  finalize(): Candidate[] {
    // Not enough finished beams: the unfinished ones count as if they ended here.
    if (this.finished.size < this.beamSize) {
      const order = [...this.sums.keys()].sort((a, b) => this.sums[b]! - this.sums[a]!);
      for (const r of order) {
        const key = [...this.rows[r]!, this.setup.eot].join(',');
        this.finished.set(key, { tokens: this.rows[r]!.slice(this.sampleBegin), sumLogprob: this.sums[r]! });
        if (this.finished.size >= this.beamSize) break;
      }
    }
    return [...this.finished.values()];
  }
}

/** openai's MaximumLikelihoodRanker: index of the best candidate. */
export function rankCandidates(cands: readonly Candidate[], lengthPenalty: number | null): number {
  let best = 0;
  let bestScore = -Infinity;
  cands.forEach((c, i) => {
    const len = c.tokens.length;
    const penalty = lengthPenalty === null ? len : ((5 + len) / 6) ** lengthPenalty;
    const score = c.sumLogprob / penalty;
    if (score > bestScore) {
      bestScore = score;
      best = i;
    }
  });
  return best;
}
