// Text normalisation for scoring languages other than English, following openai/whisper's
// BasicTextNormalizer (whisper/normalizers/basic.py): lower-case, drop [bracketed]/<tagged> and
// (parenthesised) spans, turn marks, symbols and punctuation into spaces, collapse whitespace.
// Written here rather than taken from a library because the scores must match how Whisper's own
// evaluations normalise, rule for rule. Python iterates over code points and reads Unicode
// categories; `for…of` and `\p{…}` do the same in JavaScript.

/** Letters that NFKD does not split into base + mark (basic.py's ADDITIONAL_DIACRITICS). */
const ADDITIONAL_DIACRITICS: ReadonlyMap<string, string> = new Map(Object.entries({
  'œ': 'oe', 'Œ': 'OE', 'ø': 'o', 'Ø': 'O', 'æ': 'ae', 'Æ': 'AE', 'ß': 'ss', 'ẞ': 'SS',
  'đ': 'd', 'Đ': 'D', 'ð': 'd', 'Ð': 'D', 'þ': 'th', 'Þ': 'th', 'ł': 'l', 'Ł': 'L',
}));

const NONSPACING_MARK = /^\p{Mn}$/u;
const MARK_SYMBOL_PUNCT = /^[\p{M}\p{S}\p{P}]$/u;
const SYMBOL_PUNCT = /^[\p{S}\p{P}]$/u;

/**
 * NFKD, then: characters in `keep` stay, the letters above are spelled out, non-spacing marks
 * (accents) are dropped, other marks, symbols and punctuation become a space.
 */
export function removeSymbolsAndDiacritics(s: string, keep = ''): string {
  let out = '';
  for (const c of s.normalize('NFKD')) {
    if (keep.includes(c)) out += c;
    else if (ADDITIONAL_DIACRITICS.has(c)) out += ADDITIONAL_DIACRITICS.get(c);
    else if (NONSPACING_MARK.test(c)) continue;
    else out += MARK_SYMBOL_PUNCT.test(c) ? ' ' : c;
  }
  return out;
}

/**
 * NFKC, then symbols and punctuation (and marks, unless `preserveMarks`) become a space. Accents
 * on Latin letters survive either way, since NFKC composes them into the letter.
 */
export function removeSymbols(s: string, preserveMarks = false): string {
  const drop = preserveMarks ? SYMBOL_PUNCT : MARK_SYMBOL_PUNCT;
  let out = '';
  for (const c of s.normalize('NFKC')) out += drop.test(c) ? ' ' : c;
  return out;
}

/** `[…]` or `<…>` spans (basic.py's first rule, also the English normaliser's). */
export const BRACKETED = /[<[][^>\]]*[>\]]/g;
/** `(…)` spans, shortest match. */
export const PARENTHESISED = /\(([^)]+?)\)/g;

export interface BasicNormalizerOptions {
  /** Drop accents (NFKD + remove non-spacing marks), as `remove_diacritics=True`. */
  removeDiacritics?: boolean;
  /**
   * Keep combining marks that are part of a word's spelling (Devanagari, Thai, Arabic vowel
   * points…) instead of turning them into spaces, as `preserve_marks=True`.
   */
  preserveMarks?: boolean;
}

/** BasicTextNormalizer; the result is trimmed (openai's keeps an edge space, which no split sees). */
export function normalizeBasic(s: string, opts: BasicNormalizerOptions = {}): string {
  if (opts.removeDiacritics && opts.preserveMarks) {
    throw new RangeError('preserveMarks cannot be combined with removeDiacritics');
  }
  let t = s.toLowerCase().replace(BRACKETED, '').replace(PARENTHESISED, '');
  t = opts.removeDiacritics ? removeSymbolsAndDiacritics(t) : removeSymbols(t, opts.preserveMarks ?? false);
  return t.toLowerCase().replace(/\s+/g, ' ').trim();
}
