// The languages Whisper knows, in openai/whisper's order (tokenizer.py's LANGUAGES), and the
// lookup behind `--language`: a code ("de"), a name ("german") or one of openai's aliases
// ("castilian") resolves to a code; anything else is a typed error. Which of these a given model
// supports comes from its generation_config (see sot.ts).
import { EarshotError } from '../errors.ts';

/** Code → English name. The order is the order of the language tokens after <|startoftranscript|>. */
export const LANGUAGES: ReadonlyMap<string, string> = new Map([
  ['en', 'english'], ['zh', 'chinese'], ['de', 'german'], ['es', 'spanish'], ['ru', 'russian'],
  ['ko', 'korean'], ['fr', 'french'], ['ja', 'japanese'], ['pt', 'portuguese'], ['tr', 'turkish'],
  ['pl', 'polish'], ['ca', 'catalan'], ['nl', 'dutch'], ['ar', 'arabic'], ['sv', 'swedish'],
  ['it', 'italian'], ['id', 'indonesian'], ['hi', 'hindi'], ['fi', 'finnish'], ['vi', 'vietnamese'],
  ['he', 'hebrew'], ['uk', 'ukrainian'], ['el', 'greek'], ['ms', 'malay'], ['cs', 'czech'],
  ['ro', 'romanian'], ['da', 'danish'], ['hu', 'hungarian'], ['ta', 'tamil'], ['no', 'norwegian'],
  ['th', 'thai'], ['ur', 'urdu'], ['hr', 'croatian'], ['bg', 'bulgarian'], ['lt', 'lithuanian'],
  ['la', 'latin'], ['mi', 'maori'], ['ml', 'malayalam'], ['cy', 'welsh'], ['sk', 'slovak'],
  ['te', 'telugu'], ['fa', 'persian'], ['lv', 'latvian'], ['bn', 'bengali'], ['sr', 'serbian'],
  ['az', 'azerbaijani'], ['sl', 'slovenian'], ['kn', 'kannada'], ['et', 'estonian'],
  ['mk', 'macedonian'], ['br', 'breton'], ['eu', 'basque'], ['is', 'icelandic'], ['hy', 'armenian'],
  ['ne', 'nepali'], ['mn', 'mongolian'], ['bs', 'bosnian'], ['kk', 'kazakh'], ['sq', 'albanian'],
  ['sw', 'swahili'], ['gl', 'galician'], ['mr', 'marathi'], ['pa', 'punjabi'], ['si', 'sinhala'],
  ['km', 'khmer'], ['sn', 'shona'], ['yo', 'yoruba'], ['so', 'somali'], ['af', 'afrikaans'],
  ['oc', 'occitan'], ['ka', 'georgian'], ['be', 'belarusian'], ['tg', 'tajik'], ['sd', 'sindhi'],
  ['gu', 'gujarati'], ['am', 'amharic'], ['yi', 'yiddish'], ['lo', 'lao'], ['uz', 'uzbek'],
  ['fo', 'faroese'], ['ht', 'haitian creole'], ['ps', 'pashto'], ['tk', 'turkmen'],
  ['nn', 'nynorsk'], ['mt', 'maltese'], ['sa', 'sanskrit'], ['lb', 'luxembourgish'],
  ['my', 'myanmar'], ['bo', 'tibetan'], ['tl', 'tagalog'], ['mg', 'malagasy'], ['as', 'assamese'],
  ['tt', 'tatar'], ['haw', 'hawaiian'], ['ln', 'lingala'], ['ha', 'hausa'], ['ba', 'bashkir'],
  ['jw', 'javanese'], ['su', 'sundanese'], ['yue', 'cantonese'],
]);

/** Name or alias → code (openai's TO_LANGUAGE_CODE). */
const TO_LANGUAGE_CODE: ReadonlyMap<string, string> = new Map([
  ...[...LANGUAGES].map(([code, name]) => [name, code] as [string, string]),
  ['burmese', 'my'], ['valencian', 'ca'], ['flemish', 'nl'], ['haitian', 'ht'],
  ['letzeburgesch', 'lb'], ['pushto', 'ps'], ['panjabi', 'pa'], ['moldavian', 'ro'],
  ['moldovan', 'ro'], ['sinhalese', 'si'], ['castilian', 'es'], ['mandarin', 'zh'],
]);

/**
 * Resolves what a user typed for `--language` (code, name or alias, any case, surrounding space
 * ignored) to a language code. Throws `invalid_argument/unknown_language` otherwise.
 */
export function resolveLanguage(input: string): string {
  const key = input.trim().toLowerCase();
  if (LANGUAGES.has(key)) return key;
  const code = TO_LANGUAGE_CODE.get(key);
  if (code !== undefined) return code;
  throw new EarshotError(
    'invalid_argument',
    'unknown_language',
    `unknown language "${input}": give a code such as "en" or "de", or a name such as "english" or "german"`,
  );
}

/** The English name of a language code, e.g. `german` for `de`; undefined for unknown codes. */
export function languageName(code: string): string | undefined {
  return LANGUAGES.get(code);
}
