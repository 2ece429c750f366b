// English text normalisation for WER, a port of openai/whisper's EnglishTextNormalizer
// (whisper/normalizers/english.py): lower-case; drop bracketed/parenthesised spans and hesitations;
// expand contractions and titles; remove symbols and accents; spelled-out numbers to digits
// (normalize-numbers.ts); British to American spelling; currency and percent glued to their
// numbers. The spelling map is english-spelling.json, a copy of the `normalizer.json` that
// openai's Whisper checkpoints ship (the same data as openai/whisper's english.json).
import { readFileSync } from 'node:fs';
import { BRACKETED, PARENTHESISED, removeSymbolsAndDiacritics } from './normalize-basic.ts';
import { normalizeEnglishNumbers } from './normalize-numbers.ts';
import { pyRegex } from './unicode-regex.ts';

let spellings: ReadonlyMap<string, string> | undefined;

/** British → American spellings, e.g. `colour` → `color` (1,740 words). */
export function englishSpellings(): ReadonlyMap<string, string> {
  spellings ??= new Map(
    Object.entries(JSON.parse(readFileSync(new URL('./english-spelling.json', import.meta.url), 'utf8')) as Record<string, string>),
  );
  return spellings;
}

const HESITATIONS = pyRegex('\\b(hmm|mm|mhm|mmm|uh|um)\\b');

/** In openai's order: specific contractions and titles before the general `'s`, `n't`… rules. */
const REPLACERS: ReadonlyArray<[RegExp, string]> = (
  [
    // common contractions
    ["\\bwon't\\b", 'will not'],
    ["\\bcan't\\b", 'can not'],
    ["\\blet's\\b", 'let us'],
    ["\\bain't\\b", 'aint'],
    ["\\by'all\\b", 'you all'],
    ['\\bwanna\\b', 'want to'],
    ['\\bgotta\\b', 'got to'],
    ['\\bgonna\\b', 'going to'],
    ["\\bi'ma\\b", 'i am going to'],
    ['\\bimma\\b', 'i am going to'],
    ['\\bwoulda\\b', 'would have'],
    ['\\bcoulda\\b', 'could have'],
    ['\\bshoulda\\b', 'should have'],
    ["\\bma'am\\b", 'madam'],
    // titles and prefixes
    ['\\bmr\\b', 'mister '],
    ['\\bmrs\\b', 'missus '],
    ['\\bst\\b', 'saint '],
    ['\\bdr\\b', 'doctor '],
    ['\\bprof\\b', 'professor '],
    ['\\bcapt\\b', 'captain '],
    ['\\bgov\\b', 'governor '],
    ['\\bald\\b', 'alderman '],
    ['\\bgen\\b', 'general '],
    ['\\bsen\\b', 'senator '],
    ['\\brep\\b', 'representative '],
    ['\\bpres\\b', 'president '],
    ['\\brev\\b', 'reverend '],
    ['\\bhon\\b', 'honorable '],
    ['\\basst\\b', 'assistant '],
    ['\\bassoc\\b', 'associate '],
    ['\\blt\\b', 'lieutenant '],
    ['\\bcol\\b', 'colonel '],
    ['\\bjr\\b', 'junior '],
    ['\\bsr\\b', 'senior '],
    ['\\besq\\b', 'esquire '],
    // perfect tenses ("'s done" is ambiguous, so it is not here)
    ["'d been\\b", ' had been'],
    ["'s been\\b", ' has been'],
    ["'d gone\\b", ' had gone'],
    ["'s gone\\b", ' has gone'],
    ["'d done\\b", ' had done'],
    ["'s got\\b", ' has got'],
    // general contractions
    ["n't\\b", ' not'],
    ["'re\\b", ' are'],
    ["'s\\b", ' is'],
    ["'d\\b", ' would'],
    ["'ll\\b", ' will'],
    ["'t\\b", ' not'],
    ["'ve\\b", ' have'],
    ["'m\\b", ' am'],
  ] as const
).map(([p, r]) => [pyRegex(p), r]);

/** EnglishTextNormalizer; the result is trimmed (openai's can keep an edge space). */
export function normalizeEnglish(text: string): string {
  let s = text.toLowerCase();
  s = s.replace(BRACKETED, '').replace(PARENTHESISED, '');
  s = s.replace(HESITATIONS, '');
  s = s.replace(/\s+'/g, "'"); // "don 't" → "don't"
  for (const [pattern, replacement] of REPLACERS) s = s.replace(pattern, replacement);
  s = s.replace(/(\d),(\d)/g, '$1$2'); // thousands separators
  s = s.replace(/\.([^0-9]|$)/g, ' $1'); // periods not followed by a digit
  s = removeSymbolsAndDiacritics(s, '.%$¢€£'); // numeric symbols stay for the number rules
  s = normalizeEnglishNumbers(s);
  const map = englishSpellings();
  s = s
    .split(/\s+/)
    .filter((w) => w.length > 0)
    .map((w) => map.get(w) ?? w)
    .join(' ');
  s = s.replace(/([$¢€£])\s+([0-9])/g, '$1$2');
  s = s.replace(/([0-9])\s+%/g, '$1%');
  // currency signs and points with no number after them, percent signs with none before
  s = s.replace(/[.$¢€£]([^0-9])/g, ' $1');
  s = s.replace(/([^0-9])%/g, '$1 ');
  return s.replace(/\s+/g, ' ').trim();
}
