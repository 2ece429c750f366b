// The decoder's first tokens, as openai/whisper's Tokenizer.sot_sequence and
// DecodingTask._get_initial_tokens build them:
//   [<|startofprev|>, …last 223 prompt tokens] <|startoftranscript|> [<|lang|> <|task|>] [<|notimestamps|>]
// Ids come from the model's generation_config (decoder_start_token_id, lang_to_id, task_to_id,
// no_timestamps_token_id) through the tokenizer that loaded it.
import { EarshotError } from '../errors.ts';
import { languageName, resolveLanguage } from './languages.ts';
import type { WhisperTokenizer } from './tokenizer.ts';

export type Task = 'transcribe' | 'translate';

/** Whisper's decoder context (n_text_ctx); every released model has 448. */
export const N_TEXT_CTX = 448;

/** Most tokens sampled in one window: half the decoder's positions, as openai/whisper; the other half is kept for the prompt. */
export const MAX_SAMPLE_LEN = N_TEXT_CTX / 2;

export interface SotOptions {
  /** Code, name or alias ("de", "German", "castilian"). Multilingual default: "en", as openai. */
  language?: string;
  /** Default "transcribe". */
  task?: Task;
  /** Append <|notimestamps|>: text only, no timestamp tokens sampled. */
  withoutTimestamps?: boolean;
}

/**
 * <|startoftranscript|> [language task] [<|notimestamps|>]. English-only models take no language
 * or task token; asking one for another language or for translation is a typed error rather than
 * openai's silent fallback to English, since the result would not be what was asked for.
 */
export function sotSequence(tok: WhisperTokenizer, options: SotOptions = {}): number[] {
  const gen = tok.generationConfig;
  const task = options.task ?? 'transcribe';
  if (task !== 'transcribe' && task !== 'translate') {
    throw new EarshotError('invalid_argument', 'unknown_task', `unknown task "${String(task)}": use "transcribe" or "translate"`);
  }
  const seq = [gen.decoderStartTokenId];
  if (tok.isMultilingual) {
    const code = resolveLanguage(options.language ?? 'en');
    const langId = tok.languageTokens.get(code);
    if (langId === undefined) {
      throw new EarshotError(
        'invalid_argument',
        'unsupported_language',
        `this model does not support ${languageName(code) ?? code} ("${code}")`,
      );
    }
    seq.push(langId, gen.taskToId.get(task) ?? (task === 'transcribe' ? tok.transcribe : tok.translate));
  } else {
    requestedLanguage(tok, options.language);
    if (task === 'translate') {
      throw new EarshotError('invalid_argument', 'unsupported_task', 'this model is English-only; it cannot translate');
    }
  }
  if (options.withoutTimestamps) seq.push(gen.noTimestampsTokenId);
  return seq;
}

/**
 * The language to decode in, for a requested code, name or alias: undefined means detect it (a
 * multilingual model asked for nothing or `auto`); an English-only model takes English or `auto`
 * and refuses any other language with a typed error.
 */
export function requestedLanguage(tok: WhisperTokenizer, requested: string | undefined): string | undefined {
  const r = requested?.trim().toLowerCase();
  if (!r || r === 'auto') return tok.isMultilingual ? undefined : 'en';
  const code = resolveLanguage(r);
  if (!tok.isMultilingual && code !== 'en') {
    throw new EarshotError('invalid_argument', 'unsupported_language', `this model is English-only; it cannot transcribe "${requested}"`);
  }
  return code;
}

/** Prompt text as Whisper encodes it: one leading space, surrounding whitespace trimmed. */
export function encodePrompt(tok: WhisperTokenizer, text: string): number[] {
  const trimmed = text.trim();
  return trimmed === '' ? [] : tok.encode(' ' + trimmed);
}

export interface InitialTokens {
  /** What the decoder is fed before sampling. */
  tokens: number[];
  /** Index of the first sampled token (= tokens.length). */
  sampleBegin: number;
  /** Index of <|startoftranscript|> in `tokens` (the no-speech probability is read there). */
  sotIndex: number;
}

/**
 * Prepends the previous-text prompt, if any: <|startofprev|> + the last n_text_ctx/2 - 1 (223)
 * prompt tokens. `prompt` is token ids (previous windows' output, or encodePrompt's result).
 */
export function initialTokens(
  tok: WhisperTokenizer,
  sot: readonly number[],
  prompt: readonly number[] = [],
  nTextCtx = N_TEXT_CTX,
): InitialTokens {
  const tokens: number[] = [];
  if (prompt.length > 0) {
    const keep = Math.floor(nTextCtx / 2) - 1;
    tokens.push(tok.generationConfig.prevSotTokenId ?? tok.sotPrev);
    tokens.push(...prompt.slice(Math.max(0, prompt.length - keep)));
  }
  const sotIndex = tokens.length;
  tokens.push(...sot);
  return { tokens, sampleBegin: tokens.length, sotIndex };
}
