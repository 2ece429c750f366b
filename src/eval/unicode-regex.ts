// Python's `re` treats `\b` as a boundary between Unicode word characters (letters, digits, `_`),
// JavaScript's only between ASCII ones, so "é" would end a word. The normalisers are ports of
// Python rules; they build their patterns through `pyRegex` to keep Python's meaning of `\b`.

const WORD = '[\\p{L}\\p{N}_]';
const BOUNDARY = `(?:(?<=${WORD})(?!${WORD})|(?<!${WORD})(?=${WORD}))`;

/** A `u`-flagged RegExp from a Python-style pattern, with `\b` as a Unicode word boundary. */
export function pyRegex(pattern: string, flags = 'g'): RegExp {
  return new RegExp(pattern.replace(/\\b/g, BOUNDARY), flags.includes('u') ? flags : `${flags}u`);
}
