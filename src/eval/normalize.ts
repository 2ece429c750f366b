// The normaliser a reference and a hypothesis go through before scoring, chosen by language:
// English gets openai/whisper's EnglishTextNormalizer (numbers, spellings, contractions); Chinese
// and Cantonese are first written in simplified characters (so 漢/汉 is not an error) and then,
// like every other language, go through the BasicTextNormalizer. The basic one keeps combining
// marks that are part of the spelling (preserve_marks: Devanagari, Thai, Arabic vowel points…)
// rather than splitting words at them; accented Latin letters are kept as they are.
import { convertChinese } from '../output/chinese.ts';
import { normalizeBasic } from './normalize-basic.ts';
import { normalizeEnglish } from './normalize-english.ts';

const SIMPLIFY: ReadonlySet<string> = new Set(['zh', 'yue']);

export async function normalizeFor(text: string, language: string | null | undefined): Promise<string> {
  if (language === 'en') return normalizeEnglish(text);
  const t = language != null && SIMPLIFY.has(language) ? await convertChinese(text, 'simplified') : text;
  return normalizeBasic(t, { preserveMarks: true });
}
