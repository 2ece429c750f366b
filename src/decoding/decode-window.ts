// Decodes one 30 s window, as openai/whisper's DecodingTask does: the initial tokens (prompt, SOT
// sequence) go through the decoder once, the no-speech probability is read at <|startoftranscript|>,
// then tokens are chosen step by step (greedy, sampling at a temperature with best_of candidates,
// or beam search with patience) under the logit filters, with the KV cache carrying the past.
// Hand-written because it is the product's core: no library decodes Whisper on onnxruntime-node.
import { EarshotError } from '../errors.ts';
import type { CacheHandle, EncodedAudio, ModelRunner } from '../engine/whisper-model.ts';
import { compressionRatio } from './compression.ts';
import type { Pick } from '../engine/greedy-pick.ts';
import { applyLogitFilters, buildLogitFilters, maskFor } from './logit-filters.ts';
import { logSumExp } from './math.ts';
import { initialTokens, N_TEXT_CTX, sotSequence, type Task } from './sot.ts';
import type { WhisperTokenizer } from './tokenizer.ts';

export interface WindowDecodeOptions {
  task?: Task;
  /** Language code; required for multilingual models (detect it first), ignored for English-only. */
  language?: string;
  /** 0: greedy or beam search; above 0: sampling. */
  temperature?: number;
  /** Most tokens to sample (openai: n_text_ctx / 2 = 224). */
  sampleLen?: number;
  /** Candidates sampled at a temperature above 0; the most likely one wins. */
  bestOf?: number;
  /** Beam search at temperature 0 when set. */
  beamSize?: number;
  /** Beam search waits for round(beamSize * patience) finished candidates (default 1). */
  patience?: number;
  /** null: rank by mean log-probability; a number: Google NMT's length penalty. */
  lengthPenalty?: number | null;
  /** Previous-text tokens, put after <|startofprev|>. */
  prompt?: readonly number[];
  withoutTimestamps?: boolean;
  suppressTokens?: string | readonly number[];
  suppressBlank?: boolean;
  maxInitialTimestamp?: number | null;
  /** Uniform [0, 1) source for sampling; Math.random by default. */
  random?: () => number;
  /** Stops the decode between steps (rejecting with its reason): work nobody waits for any more. */
  signal?: AbortSignal;
}

export interface WindowDecodeResult {
  /** Sampled tokens, without the initial tokens and without <|endoftext|>. */
  tokens: number[];
  text: string;
  sumLogprob: number;
  avgLogprob: number;
  noSpeechProb: number;
  temperature: number;
  compressionRatio: number;
}

interface Candidate {
  tokens: number[];
  sumLogprob: number;
}

/** Log-probability of `token` in `row` (a log_softmax without materialising it). */
function logprobOf(row: Float32Array, token: number): number {
  return row[token]! - logSumExp(row);
}

function softmaxAt(row: Float32Array, token: number): number {
  return Math.exp(logprobOf(row, token));
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

/** openai's MaximumLikelihoodRanker: index of the best candidate. */
function rank(cands: readonly Candidate[], lengthPenalty: number | null): number {
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

function validate(o: WindowDecodeOptions): void {
  const t = o.temperature ?? 0;
  const bad = (msg: string) => new EarshotError('invalid_argument', 'bad_decode_option', msg);
  if (!(t >= 0 && t <= 10)) throw bad(`temperature must be between 0 and 10, got ${t}`);
  if (o.beamSize !== undefined && !(Number.isInteger(o.beamSize) && o.beamSize >= 1 && o.beamSize <= 32)) {
    throw bad(`beam_size must be an integer from 1 to 32, got ${o.beamSize}`);
  }
  if (o.bestOf !== undefined && !(Number.isInteger(o.bestOf) && o.bestOf >= 1 && o.bestOf <= 32)) {
    throw bad(`best_of must be an integer from 1 to 32, got ${o.bestOf}`);
  }
  if (o.patience !== undefined && !(o.patience > 0)) throw bad(`patience must be above 0, got ${o.patience}`);
  if (o.beamSize !== undefined && t > 0) throw bad('beam search is for temperature 0; sampling uses best_of');
  if (o.bestOf !== undefined && t === 0) throw bad('best_of is for sampling at a temperature above 0');
  if (o.patience !== undefined && o.beamSize === undefined) throw bad('patience needs beam_size');
}

/**
 * Decodes the window whose encoder output is `encoded` (batch 1). Returns the most likely
 * candidate under openai's ranking.
 */
export async function decodeWindow(
  model: ModelRunner,
  tok: WhisperTokenizer,
  encoded: EncodedAudio,
  options: WindowDecodeOptions = {},
): Promise<WindowDecodeResult> {
  validate(options);
  const temperature = options.temperature ?? 0;
  const sot = sotSequence(tok, {
    language: tok.isMultilingual ? options.language : undefined,
    task: options.task,
    withoutTimestamps: options.withoutTimestamps,
  });
  const init = initialTokens(tok, sot, options.prompt ?? []);
  const filters = buildLogitFilters(tok, {
    sampleBegin: init.sampleBegin,
    suppressBlank: options.suppressBlank,
    suppressTokens: options.suppressTokens,
    withoutTimestamps: options.withoutTimestamps,
    maxInitialTimestamp: options.maxInitialTimestamp,
  });
  const sampleLen = options.sampleLen ?? Math.floor(N_TEXT_CTX / 2);
  const random = options.random ?? Math.random;
  const vocab = model.dims.vocabSize;
  const eot = tok.eot;

  const beamSize = temperature === 0 ? options.beamSize : undefined;
  const nGroup = beamSize ?? (temperature > 0 ? (options.bestOf ?? 1) : 1);
  // Greedy decoding lets the model's side pick each token under the filters' mask (a runner that
  // cannot returns logits instead, and the token is chosen here).
  const greedy = temperature === 0 && beamSize === undefined;
  const masks = (rows: readonly number[][]) => (greedy ? rows.map((tokens) => maskFor(filters, tokens)) : undefined);

  // The prompt is the same for every candidate: run it once, then copy the cache per candidate.
  const first = await model.decode(BigInt64Array.from(init.tokens, BigInt), 1, encoded, null, {
    alsoPosition: init.sotIndex,
    greedy: masks([init.tokens]),
  });
  const noSpeechProb = softmaxAt(first.positionLogits!, tok.noSpeech);
  let cache: CacheHandle = nGroup === 1 ? first.cache : model.selectRows(first.cache, new Array(nGroup).fill(0));
  if (cache !== first.cache) model.finish?.(first.cache);
  let picks: readonly (Pick | null)[] | undefined = first.picks;
  let logits: Float32Array = first.logits;
  if (nGroup > 1) {
    logits = new Float32Array(nGroup * vocab);
    for (let r = 0; r < nGroup; r++) logits.set(first.logits, r * vocab);
  }

  const rows: number[][] = Array.from({ length: nGroup }, () => [...init.tokens]);
  const sums = new Float64Array(nGroup);
  const maxCandidates = beamSize === undefined ? 0 : Math.round(beamSize * (options.patience ?? 1));
  const finished = new Map<string, Candidate>(); // beam search: finished sequences by content

  try {
    for (let step = 0; step < sampleLen; step++) {
      const next: number[] = [];
      if (beamSize === undefined) {
        // Greedy or sampling: every row chooses its own next token.
        for (let r = 0; r < nGroup; r++) {
          const tokens = rows[r]!;
          if (tokens[tokens.length - 1] === eot && tokens.length > init.sampleBegin) {
            next.push(eot);
            continue;
          }
          const pick = picks?.[r];
          if (pick) {
            sums[r] += pick.logprob;
            next.push(pick.token);
            continue;
          }
          const row = logits.subarray(r * vocab, (r + 1) * vocab);
          applyLogitFilters(filters, row, tokens);
          const t = temperature === 0 ? argmaxOf(row) : sample(row, temperature, random);
          // Greedy: the chosen logit is the row's maximum, so logsumexp skips its own max pass.
          sums[r] += row[t]! - logSumExp(row, 0, row.length, temperature === 0 ? row[t]! : undefined);
          next.push(t);
        }
        rows.forEach((tokens, r) => tokens.push(next[r]!));
        const done = rows.every((t) => t[t.length - 1] === eot);
        if (done || rows[0]!.length > N_TEXT_CTX) break;
      } else {
        // Beam search: the beamSize+1 best continuations of every beam compete; finished ones are kept
        // aside until maxCandidates of them exist.
        const scored: { seq: number[]; score: number; source: number }[] = [];
        const seen = new Set<string>();
        for (let r = 0; r < nGroup; r++) {
          const row = logits.subarray(r * vocab, (r + 1) * vocab);
          applyLogitFilters(filters, row, rows[r]!);
          const lse = logSumExp(row);
          for (const t of topK(row, beamSize + 1)) {
            const seq = [...rows[r]!, t];
            const key = seq.join(',');
            const score = sums[r]! + (row[t]! - lse);
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
            if (kept.length === beamSize) break;
          }
        }
        for (const s of newlyFinished) {
          if (finished.size >= maxCandidates) break;
          finished.set(s.seq.join(','), { tokens: s.seq.slice(init.sampleBegin, -1), sumLogprob: s.score });
        }
        kept.forEach((s, i) => {
          rows[i] = s.seq;
          sums[i] = s.score;
          next.push(s.seq[s.seq.length - 1]!);
        });
        const sources = kept.map((s) => s.source);
        // The reordered cache goes on with this caller, so the old one is not finished here (a
        // batching runner would stop waiting for the caller); it is freed when collected.
        if (sources.some((s, i) => s !== i)) cache = model.selectRows(cache, sources);
        if (finished.size >= maxCandidates || rows[0]!.length > N_TEXT_CTX) break;
      }
      if (step === sampleLen - 1) break;
      options.signal?.throwIfAborted();
      const out = await model.decode(BigInt64Array.from(next, BigInt), nGroup, encoded, cache, { greedy: masks(rows) });
      // Each step's cache replaces the last: free it now rather than when the garbage collector
      // notices (which, with picks and no logits to allocate, can be many steps later).
      model.finish?.(cache);
      cache = out.cache;
      logits = out.logits;
      picks = out.picks;
    }
  } finally {
    // No more steps on this cache: a batching runner need not wait for this caller.
    model.finish?.(cache);
  }

  let candidates: Candidate[];
  if (beamSize === undefined) {
    candidates = rows.map((tokens, r) => {
      const sampled = tokens.slice(init.sampleBegin);
      const end = sampled.indexOf(eot);
      return { tokens: end < 0 ? sampled : sampled.slice(0, end), sumLogprob: sums[r]! };
    });
  } else {
    // Not enough finished beams: the unfinished ones count as if they ended here.
    if (finished.size < beamSize) {
      const order = [...sums.keys()].sort((a, b) => sums[b]! - sums[a]!);
      for (const r of order) {
        const key = [...rows[r]!, eot].join(',');
        finished.set(key, { tokens: rows[r]!.slice(init.sampleBegin), sumLogprob: sums[r]! });
        if (finished.size >= beamSize) break;
      }
    }
    candidates = [...finished.values()];
  }

  const best = candidates[rank(candidates, options.lengthPenalty ?? null)]!;
  const text = tok.decode(best.tokens).trim();
  return {
    tokens: best.tokens,
    text,
    sumLogprob: best.sumLogprob,
    avgLogprob: best.sumLogprob / (best.tokens.length + 1),
    noSpeechProb,
    temperature,
    compressionRatio: compressionRatio(text),
  };
}
