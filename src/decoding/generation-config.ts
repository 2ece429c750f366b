// Reads the parts of a Whisper `generation_config.json` that decoding needs (SOT sequence,
// special token ids, languages), validated with zod so a broken or foreign file fails with one
// clear typed error instead of an undefined deep inside the decoder.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { EarshotError } from '../errors.ts';

const tokenId = z.number().int().nonnegative();

const schema = z.object({
  decoder_start_token_id: tokenId,
  eos_token_id: tokenId,
  no_timestamps_token_id: tokenId,
  is_multilingual: z.boolean().optional(),
  lang_to_id: z.record(z.string(), tokenId).optional(),
  task_to_id: z.record(z.string(), tokenId).optional(),
  prev_sot_token_id: tokenId.optional(),
  suppress_tokens: z.array(tokenId).optional(),
  begin_suppress_tokens: z.array(tokenId).optional(),
  max_length: z.number().int().positive().optional(),
  alignment_heads: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()])).optional(),
});

export interface GenerationConfig {
  /** <|startoftranscript|> */
  decoderStartTokenId: number;
  /** <|endoftext|> */
  eosTokenId: number;
  noTimestampsTokenId: number;
  /** Undefined when the file does not say; the tokenizer then decides from the vocabulary size. */
  isMultilingual: boolean | undefined;
  /** Language code (without <| |>) → token id; empty for English-only models. */
  langToId: ReadonlyMap<string, number>;
  /** `transcribe` / `translate` → token id; empty when the file has none (English-only models). */
  taskToId: ReadonlyMap<string, number>;
  prevSotTokenId: number | undefined;
  /** HF's precomputed suppression lists; kept for reference only (see logit-filters.ts). */
  suppressTokens: readonly number[];
  beginSuppressTokens: readonly number[];
  /** [decoder layer, head] pairs whose cross-attention follows the audio (word timestamps); empty when the file has none. */
  alignmentHeads: readonly (readonly [number, number])[];
}

/** Validates a parsed generation_config.json. */
export function parseGenerationConfig(json: unknown, source = 'generation_config.json'): GenerationConfig {
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.join('.') || '(root)';
    throw new EarshotError(
      'invalid_argument',
      'bad_generation_config',
      `${source} is not a Whisper generation config: ${where}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const g = r.data;
  const langToId = new Map<string, number>();
  for (const [key, id] of Object.entries(g.lang_to_id ?? {})) {
    const m = /^<\|([a-z]+)\|>$/.exec(key);
    if (!m) {
      throw new EarshotError('invalid_argument', 'bad_generation_config', `${source}: bad language key "${key}"`);
    }
    langToId.set(m[1]!, id);
  }
  return {
    decoderStartTokenId: g.decoder_start_token_id,
    eosTokenId: g.eos_token_id,
    noTimestampsTokenId: g.no_timestamps_token_id,
    isMultilingual: g.is_multilingual,
    langToId,
    taskToId: new Map(Object.entries(g.task_to_id ?? {})),
    prevSotTokenId: g.prev_sot_token_id,
    suppressTokens: g.suppress_tokens ?? [],
    beginSuppressTokens: g.begin_suppress_tokens ?? [],
    alignmentHeads: g.alignment_heads ?? [],
  };
}

/** Reads a JSON file, turning a missing or unparsable file into a typed error. */
export async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new EarshotError('model_not_found', 'missing_file', `cannot read ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new EarshotError('invalid_argument', 'bad_json', `${path} is not valid JSON: ${(e as Error).message}`, {
      cause: e,
    });
  }
}
