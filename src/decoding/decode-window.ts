// Decodes one 30 s window, as openai/whisper's DecodingTask does: the initial tokens (prompt, SOT
// sequence) go through the decoder once, the no-speech probability is read at <|startoftranscript|>,
// then a token decoder (token-decoders.ts: greedy, sampling at a temperature with best_of
// candidates, or beam search with patience) chooses tokens step by step under the logit filters,
// with the KV cache carrying the past, and the ranker picks the best candidate.
// A forced `prefix` (a stream's committed text, streaming/stream-finals.ts) makes the result begin
// with given tokens: they go through the decoder in one call, as if they had been sampled.
// Hand-written because it is the product's core: no library decodes Whisper on onnxruntime-node.
import { EarshotError } from '../errors.ts';
import type { CacheHandle, EncodedAudio, ModelRunner } from '../engine/model-types.ts';
import { compressionRatio } from './compression.ts';
import type { Pick } from '../engine/greedy-pick.ts';
import { buildLogitFilters, maskFor } from './logit-filters.ts';
import { logSumExp } from './math.ts';
import { initialTokens, MAX_SAMPLE_LEN, sotSequence, type Task } from './sot.ts';
import { BeamSearchDecoder, GreedyDecoder, rankCandidates, type TokenDecoder } from './token-decoders.ts';
import type { WhisperTokenizer } from './tokenizer.ts';

export interface WindowDecodeOptions {
  task?: Task;
  /** Language code; required for multilingual models (detect it first), ignored for English-only. */
  language?: string;
  /** 0: greedy or beam search; above 0: sampling. */
  temperature?: number;
  /** Most tokens to sample (default MAX_SAMPLE_LEN, 224). */
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
  /**
   * Tokens the result must begin with, as if sampled (not counted in sampleLen, no log-probability):
   * without timestamps they follow the SOT sequence; with timestamps they follow the first token,
   * the timestamp the model picks, so the text keeps a start time of the model's choosing. Fed in
   * one decoder call either way. Not with beam search (every beam would be the same).
   */
  prefix?: readonly number[];
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

/** softmax(row)[token], without materialising the softmax. */
function softmaxAt(row: Float32Array, token: number): number {
  return Math.exp(row[token]! - logSumExp(row));
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
  if (o.prefix !== undefined && o.prefix.length > 0 && o.beamSize !== undefined) throw bad('a forced prefix is for greedy decoding or sampling, not beam search');
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
  const sampleLen = options.sampleLen ?? MAX_SAMPLE_LEN;
  const vocab = model.dims.vocabSize;

  const beamSize = temperature === 0 ? options.beamSize : undefined;
  const setup = { filters, eot: tok.eot, vocab, initTokens: init.tokens };
  const decoder: TokenDecoder =
    beamSize !== undefined
      ? new BeamSearchDecoder(setup, beamSize, options.patience ?? 1)
      : new GreedyDecoder(setup, temperature > 0 ? (options.bestOf ?? 1) : 1, temperature, options.random ?? Math.random);
  const nGroup = decoder.rows.length;
  const prefix = options.prefix ?? [];
  if (prefix.some((t) => !(Number.isInteger(t) && t >= 0 && t < vocab) || t === tok.eot)) {
    throw new EarshotError('invalid_argument', 'bad_decode_option', 'a forced prefix holds token ids of the vocabulary other than <|endoftext|>');
  }
  // How many sampled tokens come before the prefix: the first timestamp, when there are timestamps.
  const forceAfter = prefix.length === 0 ? -1 : options.withoutTimestamps ? 0 : 1;
  if (forceAfter === 0) decoder.force(prefix);
  // Greedy decoding lets the model's side pick each token under the filters' mask (a runner that
  // cannot returns logits instead, and the token is chosen here).
  const masks = (rows: readonly (readonly number[])[]) => (decoder.usesPicks ? rows.map((tokens) => maskFor(filters, tokens)) : undefined);

  // The prompt is the same for every candidate: run it once, then copy the cache per candidate.
  const fed = decoder.rows[0]!;
  const first = await model.decode(BigInt64Array.from(fed, BigInt), 1, encoded, null, {
    alsoPosition: init.sotIndex,
    greedy: masks([fed]),
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

  // Caches whose rows were selected into `cache`: finished once the next decode on the selection
  // has been made (finishing one before would tell a batching runner that this caller is done;
  // after, their tickets are back and finishing them only frees them), or at the end.
  let selectedFrom: CacheHandle[] = [];
  try {
    for (let step = 0; step < sampleLen; step++) {
      const { next, done, sources } = decoder.update(logits, picks);
      if (sources) {
        selectedFrom.push(cache);
        cache = model.selectRows(cache, sources);
      }
      // The prefix goes in after the first timestamp, in the same call as that timestamp.
      const forcing = step === 0 && forceAfter === 1;
      if (forcing) decoder.force(prefix);
      if (done || step === sampleLen - 1) break;
      options.signal?.throwIfAborted();
      const feed = forcing ? next.flatMap((t) => [t, ...prefix]) : next;
      const out = await model.decode(BigInt64Array.from(feed, BigInt), nGroup, encoded, cache, { greedy: masks(decoder.rows) });
      // Each step's cache replaces the last: free it now rather than when the garbage collector
      // notices (which, with picks and no logits to allocate, can be many steps later).
      model.finish?.(cache);
      for (const c of selectedFrom) model.finish?.(c);
      selectedFrom = [];
      cache = out.cache;
      logits = out.logits;
      picks = out.picks;
    }
  } finally {
    // No more steps on this cache: a batching runner need not wait for this caller.
    model.finish?.(cache);
    for (const c of selectedFrom) model.finish?.(c);
  }

  const candidates = decoder.finalize();
  const best = candidates[rankCandidates(candidates, options.lengthPenalty ?? null)]!;
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
