// The Whisper tokenizer: byte-level BPE from the model's tokenizer.json (via @huggingface/tokenizers),
// plus what openai/whisper's tokenizer.py adds on top: the special and timestamp token ids, and
// decode rules. openai's semantics win where HF's differ:
// - decode never applies HF's `clean_up_tokenization_spaces` (" don 't" stays as written), so
//   decode(encode(s)) === s, as with tiktoken;
// - timestamp tokens (<|0.00|> … <|30.00|>) are handled here, not by the library: tiny.en's
//   tokenizer.json lacks them, and HF's multilingual files mark them non-special;
// - text that spells a special token ("<|endoftext|>", "<|0.00|>") is refused by encode, as
//   tiktoken's default `disallowed_special` does, so user prompts cannot inject control tokens.
import { Tokenizer } from '@huggingface/tokenizers';
import { EarshotError } from '../errors.ts';
import { parseGenerationConfig, readJson, type GenerationConfig } from './generation-config.ts';

/** Timestamp tokens run from <|0.00|> to <|30.00|> in 0.02 s steps: 1501 of them. */
export const TIMESTAMP_COUNT = 1501;
/** Seconds per timestamp token (CHUNK_LENGTH / n_audio_ctx = 30 / 1500). */
export const TIME_PRECISION = 0.02;

export interface DecodeOptions {
  /** Drop <|endoftext|>, <|startoftranscript|>, language tokens …; default true. */
  skipSpecialTokens?: boolean;
  /** Render timestamp tokens as `<|1.08|>` (openai's decode_with_timestamps); default false: dropped. */
  timestamps?: boolean;
}

export interface TokenizerFiles {
  /** Parsed tokenizer.json */
  tokenizerJson: unknown;
  /** Parsed tokenizer_config.json */
  tokenizerConfig: unknown;
  generationConfig: GenerationConfig;
}

export class WhisperTokenizer {
  readonly eot: number;
  readonly sot: number;
  readonly translate: number;
  readonly transcribe: number;
  readonly sotLm: number;
  readonly sotPrev: number;
  /** <|nospeech|> (openai's name) or <|nocaptions|> (older HF files): the same id. */
  readonly noSpeech: number;
  readonly noTimestamps: number;
  readonly timestampBegin: number;
  /** One past the last valid id: timestampBegin + 1501 (51865 multilingual, 51864 English-only). */
  readonly vocabSize: number;
  readonly isMultilingual: boolean;
  /** Language code → language token id, in token order; empty for English-only models. */
  readonly languageTokens: ReadonlyMap<string, number>;
  readonly generationConfig: GenerationConfig;

  readonly #bpe: Tokenizer;
  /** Text of every id in [eot, timestampBegin), as written in tokenizer.json. */
  readonly #specialText: Map<number, string>;
  /** Every string that would name a special or timestamp token, for encode's refusal. */
  readonly #reservedText: Set<string>;
  #nonSpeech: readonly number[] | undefined;

  constructor(files: TokenizerFiles) {
    const { tokenizerJson, tokenizerConfig, generationConfig } = files;
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null) {
      throw new EarshotError('invalid_argument', 'bad_tokenizer', 'tokenizer.json must be a JSON object');
    }
    try {
      this.#bpe = new Tokenizer(tokenizerJson, (tokenizerConfig ?? {}) as object);
    } catch (e) {
      throw new EarshotError('invalid_argument', 'bad_tokenizer', `cannot load tokenizer.json: ${(e as Error).message}`, {
        cause: e,
      });
    }
    this.generationConfig = generationConfig;
    const id = (name: string): number => {
      const v = this.#bpe.token_to_id(name);
      if (v === undefined) {
        throw new EarshotError('invalid_argument', 'bad_tokenizer', `tokenizer.json has no ${name} token`);
      }
      return v;
    };
    this.eot = id('<|endoftext|>');
    this.sot = id('<|startoftranscript|>');
    this.translate = id('<|translate|>');
    this.transcribe = id('<|transcribe|>');
    this.sotLm = id('<|startoflm|>');
    this.sotPrev = id('<|startofprev|>');
    this.noSpeech = this.#bpe.token_to_id('<|nospeech|>') ?? id('<|nocaptions|>');
    this.noTimestamps = id('<|notimestamps|>');
    if (this.noTimestamps !== generationConfig.noTimestampsTokenId || this.sot !== generationConfig.decoderStartTokenId) {
      throw new EarshotError(
        'invalid_argument',
        'bad_tokenizer',
        'tokenizer.json and generation_config.json disagree on <|notimestamps|> or <|startoftranscript|>',
      );
    }
    this.timestampBegin = this.noTimestamps + 1;
    this.vocabSize = this.timestampBegin + TIMESTAMP_COUNT;
    // 51865 tokens = multilingual (99 languages); large-v3 has one more language and 51866.
    this.isMultilingual = generationConfig.isMultilingual ?? this.vocabSize >= 51865;

    this.#specialText = new Map();
    for (let t = this.eot; t < this.timestampBegin; t++) {
      const text = this.#bpe.id_to_token(t);
      if (text === undefined) {
        throw new EarshotError('invalid_argument', 'bad_tokenizer', `tokenizer.json has no token with id ${t}`);
      }
      this.#specialText.set(t, text);
    }
    this.#reservedText = new Set(this.#specialText.values());
    this.#reservedText.add('<|nospeech|>').add('<|nocaptions|>');
    for (let i = 0; i < TIMESTAMP_COUNT; i++) this.#reservedText.add(timestampText(i));

    const languages = new Map<string, number>();
    if (this.isMultilingual) {
      const sorted = [...generationConfig.langToId].sort((a, b) => a[1] - b[1]);
      for (const [code, tokenId] of sorted) languages.set(code, tokenId);
    }
    this.languageTokens = languages;
  }

  /** True for <|0.00|> … <|30.00|>. */
  isTimestamp(token: number): boolean {
    return token >= this.timestampBegin && token < this.vocabSize;
  }

  /** Seconds a timestamp token stands for (relative to its 30 s window). */
  timestampSeconds(token: number): number {
    if (!this.isTimestamp(token)) {
      throw new EarshotError('invalid_argument', 'not_a_timestamp', `token ${token} is not a timestamp token`);
    }
    return (token - this.timestampBegin) * TIME_PRECISION;
  }

  /**
   * Byte-level BPE ids of `text`, with no special tokens added. Whisper prompts carry a leading
   * space (" " + text.trim()); that is the caller's job (sot.ts), not this one's.
   */
  encode(text: string): number[] {
    for (const m of text.matchAll(/<\|[^|<>]{1,40}\|>/g)) {
      if (this.#reservedText.has(m[0])) {
        throw new EarshotError(
          'invalid_argument',
          'special_token_in_text',
          `text contains the special token ${m[0]}; it cannot be used in a prompt`,
        );
      }
    }
    return this.#bpe.encode(text, { add_special_tokens: false }).ids;
  }

  /** Text of a token sequence. Throws `invalid_argument/bad_token_id` for ids outside the vocabulary. */
  decode(tokens: ArrayLike<number>, options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecialTokens ?? true;
    const keepTimestamps = options.timestamps ?? false;
    let out = '';
    let run: number[] = [];
    const flush = (): void => {
      if (run.length > 0) {
        out += this.#bpe.decode(run, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
        run = [];
      }
    };
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (!Number.isInteger(t) || t < 0 || t >= this.vocabSize) {
        throw new EarshotError('invalid_argument', 'bad_token_id', `token id ${t} is outside the vocabulary (0..${this.vocabSize - 1})`);
      }
      if (t < this.eot) {
        run.push(t);
      } else if (t < this.timestampBegin) {
        flush();
        if (!skipSpecial) out += this.#specialText.get(t)!;
      } else {
        flush();
        if (keepTimestamps) out += timestampText(t - this.timestampBegin);
      }
    }
    flush();
    return out;
  }

  /**
   * openai's `non_speech_tokens`: the first token of symbols that mark speaker tags, music and
   * other non-spoken annotations (♪, [, (, « …), keeping ordinary punctuation. This is the "-1"
   * entry of `suppress_tokens`. Computed from the vocabulary, so it is right for any Whisper model.
   */
  nonSpeechTokens(): readonly number[] {
    if (this.#nonSpeech) return this.#nonSpeech;
    const symbols = [...'"#()*+/:;<=>@[\\]^_`{|}~「」『』'];
    symbols.push(...'<< >> <<< >>> -- --- -( -[ (\' (" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪'.split(' '));
    // U+2640..U+267F symbols share their first two UTF-8 bytes, so suppressing the first token
    // is safe even when they are split into several tokens.
    const miscellaneous = new Set([...'♩♪♫♬♭♮♯']);
    // Hyphens and single quotes stay allowed between words, not at the start of one.
    const result = new Set([this.encode(' -')[0]!, this.encode(" '")[0]!]);
    for (const symbol of [...symbols, ...miscellaneous]) {
      for (const tokens of [this.encode(symbol), this.encode(' ' + symbol)]) {
        if (tokens.length === 1 || miscellaneous.has(symbol)) result.add(tokens[0]!);
      }
    }
    this.#nonSpeech = [...result].sort((a, b) => a - b);
    return this.#nonSpeech;
  }
}

/** `<|1.08|>` for timestamp index 54, as openai's tokenizer writes it. */
export function timestampText(index: number): string {
  return `<|${(index * TIME_PRECISION).toFixed(2)}|>`;
}

/** Loads the tokenizer of a model directory (tokenizer.json, tokenizer_config.json, generation_config.json). */
export async function loadWhisperTokenizer(modelDir: string): Promise<WhisperTokenizer> {
  const [tokenizerJson, tokenizerConfig, generation] = await Promise.all([
    readJson(`${modelDir}/tokenizer.json`),
    readJson(`${modelDir}/tokenizer_config.json`),
    readJson(`${modelDir}/generation_config.json`),
  ]);
  return new WhisperTokenizer({
    tokenizerJson,
    tokenizerConfig,
    generationConfig: parseGenerationConfig(generation, `${modelDir}/generation_config.json`),
  });
}
