// Chinese script of the output: Whisper writes Mandarin in whichever script its training data used
// for similar audio (often traditional), so users pick one. The conversion is opencc-js (OpenCC's
// dictionaries, phrase-aware), in the Taiwan standard both ways: traditional → simplified reads
// Taiwan variants (tw2s), simplified → traditional writes them (s2tw). Each direction is built on
// first use (simplified → traditional takes about half a second) and then kept. The CLI's `--zh`
// and the server's `zh` field both come here; `as-is` (the default) leaves the text untouched.
import { EarshotError } from '../errors.ts';
import type { Transcription } from '../decoding/transcription.ts';

export const ZH_SCRIPTS = ['as-is', 'simplified', 'traditional'] as const;
/** The script Chinese output is written in; `as-is` keeps what the model wrote. */
export type ZhScript = (typeof ZH_SCRIPTS)[number];
export const DEFAULT_ZH_SCRIPT: ZhScript = 'as-is';

/** Languages whose text is converted: Mandarin and Cantonese (Japanese kanji are left alone). */
const CHINESE_LANGUAGES: ReadonlySet<string> = new Set(['zh', 'yue']);

export type TextConverter = (text: string) => string;

const converters = new Map<ZhScript, Promise<TextConverter>>();

async function build(to: ZhScript): Promise<TextConverter> {
  switch (to) {
    case 'as-is':
      return (s) => s;
    case 'simplified': {
      const { Converter } = await import('opencc-js/t2cn');
      return Converter({ from: 'tw', to: 'cn' });
    }
    case 'traditional': {
      const { Converter } = await import('opencc-js/cn2t');
      return Converter({ from: 'cn', to: 'tw' });
    }
  }
}

/** Checks a user-given script name (`--zh`, the `zh` form field); throws `invalid_argument/bad_zh`. */
export function parseZhScript(value: string): ZhScript {
  const v = value.trim().toLowerCase();
  if ((ZH_SCRIPTS as readonly string[]).includes(v)) return v as ZhScript;
  throw new EarshotError('invalid_argument', 'bad_zh', `unknown Chinese script "${value}": expected ${ZH_SCRIPTS.join(', ')}`);
}

/** The converter to `to`, built once per process. */
export function chineseConverter(to: ZhScript): Promise<TextConverter> {
  let p = converters.get(to);
  if (!p) {
    p = build(to);
    converters.set(to, p);
    p.catch(() => converters.delete(to));
  }
  return p;
}

/** Converts one string to `to` (any language: use for text known to be Chinese). */
export async function convertChinese(text: string, to: ZhScript): Promise<string> {
  return (await chineseConverter(to))(text);
}

/**
 * The transcription with its full text and each segment's text written in `to`, when its language
 * is Chinese; otherwise (or for `as-is`) the same object. The full text is converted as a whole,
 * not re-joined from the segments, so phrases that span two segments convert as phrases.
 */
export async function convertTranscription(t: Transcription, to: ZhScript): Promise<Transcription> {
  if (to === 'as-is' || !CHINESE_LANGUAGES.has(t.language)) return t;
  const convert = await chineseConverter(to);
  return {
    ...t,
    text: convert(t.text),
    segments: t.segments.map((s) => ({
      ...s,
      text: convert(s.text),
      ...(s.words ? { words: s.words.map((w) => ({ ...w, word: convert(w.word) })) } : {}),
    })),
  };
}
