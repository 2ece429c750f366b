// Spelled-out English numbers to digits, for scoring: a port of openai/whisper's
// EnglishNumberNormalizer (whisper/normalizers/english.py), rule for rule, quirks included, so that
// "twenty five" and "25" score as the same word exactly when Whisper's own evaluation says so.
// Integers are BigInt because the multipliers go up to a decillion (10^33), as Python's ints do;
// Python's Fraction is replaced by an exact decimal-string check (the only fractions that reach it
// are digit strings with at most one point). Left out: digits other than ASCII 0-9 (Python's `\d`
// would also take e.g. Arabic-Indic digits).
import { pyRegex } from './unicode-regex.ts';

const ONES_NAMES = [
  'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve',
  'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen',
];
const ZEROS = new Set(['o', 'oh', 'zero']);
const ONES = new Map(ONES_NAMES.map((name, i) => [name, i + 1]));
const ONES_SUFFIXED = new Map<string, [number, string]>([
  ...ONES_NAMES.map((name, i): [string, [number, string]] => [name === 'six' ? 'sixes' : `${name}s`, [i + 1, 's']]),
  ['zeroth', [0, 'th']], ['first', [1, 'st']], ['second', [2, 'nd']], ['third', [3, 'rd']], ['fifth', [5, 'th']], ['twelfth', [12, 'th']],
  ...ONES_NAMES.flatMap((name, i): Array<[string, [number, string]]> => {
    const v = i + 1;
    return v > 3 && v !== 5 && v !== 12 ? [[name + (name.endsWith('t') ? 'h' : 'th'), [v, 'th']]] : [];
  }),
]);
const TENS = new Map([
  ['twenty', 20], ['thirty', 30], ['forty', 40], ['fifty', 50], ['sixty', 60], ['seventy', 70], ['eighty', 80], ['ninety', 90],
]);
const TENS_SUFFIXED = new Map<string, [number, string]>([
  ...[...TENS].map(([name, v]): [string, [number, string]] => [name.replace('y', 'ies'), [v, 's']]),
  ...[...TENS].map(([name, v]): [string, [number, string]] => [name.replace('y', 'ieth'), [v, 'th']]),
]);
const MULTIPLIERS = new Map<string, bigint>([
  ['hundred', 10n ** 2n], ['thousand', 10n ** 3n], ['million', 10n ** 6n], ['billion', 10n ** 9n],
  ['trillion', 10n ** 12n], ['quadrillion', 10n ** 15n], ['quintillion', 10n ** 18n], ['sextillion', 10n ** 21n],
  ['septillion', 10n ** 24n], ['octillion', 10n ** 27n], ['nonillion', 10n ** 30n], ['decillion', 10n ** 33n],
]);
const MULTIPLIERS_SUFFIXED = new Map<string, [bigint, string]>([
  ...[...MULTIPLIERS].map(([name, v]): [string, [bigint, string]] => [`${name}s`, [v, 's']]),
  ...[...MULTIPLIERS].map(([name, v]): [string, [bigint, string]] => [`${name}th`, [v, 'th']]),
]);
const DECIMALS = new Set([...ONES.keys(), ...TENS.keys(), ...ZEROS]);
const PRECEDING_PREFIXERS = new Map([['minus', '-'], ['negative', '-'], ['plus', '+'], ['positive', '+']]);
const FOLLOWING_PREFIXERS = new Map([
  ['pound', '£'], ['pounds', '£'], ['euro', '€'], ['euros', '€'], ['dollar', '$'], ['dollars', '$'], ['cent', '¢'], ['cents', '¢'],
]);
const PREFIXES = new Set([...PRECEDING_PREFIXERS.values(), ...FOLLOWING_PREFIXERS.values()]);
/** "per cent" needs the next word; "percent" does not. */
const SUFFIXERS = new Map<string, string | ReadonlyMap<string, string>>([['per', new Map([['cent', '%']])], ['percent', '%']]);
const SPECIALS = new Set(['and', 'double', 'triple', 'point']);
const WORDS = new Set<string>([
  ...ZEROS, ...ONES.keys(), ...ONES_SUFFIXED.keys(), ...TENS.keys(), ...TENS_SUFFIXED.keys(), ...MULTIPLIERS.keys(),
  ...MULTIPLIERS_SUFFIXED.keys(), ...PRECEDING_PREFIXERS.keys(), ...FOLLOWING_PREFIXERS.keys(), ...SUFFIXERS.keys(), ...SPECIALS,
]);

const NUMERIC = /^\d+(\.\d+)?$/;

/** A number being built: an integer, a digit string (nominal "one oh one", decimals) or nothing. */
type Value = bigint | string | null;

/** Python's `str(value or "")`. */
const orEmpty = (v: Value): string => (v === null || v === 0n || v === '' ? '' : String(v));

/** An exact decimal (Python's Fraction of a digit string), or null where Fraction would fail. */
function toFraction(v: string | bigint): { num: bigint; den: bigint } | null {
  if (typeof v === 'bigint') return { num: v, den: 1n };
  const m = /^(?=\d|\.\d)(\d*)(?:\.(\d*))?$/.exec(v);
  if (!m) return null;
  const frac = m[2] ?? '';
  const num = BigInt((m[1] ?? '') + frac || '0');
  const den = 10n ** BigInt(frac.length);
  const g = gcd(num, den);
  return { num: num / g, den: den / g }; // lowest terms, as Fraction keeps them ("12.0" is 12/1)
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** The fraction times `k`, if that is a whole number. */
function timesIfWhole(f: { num: bigint; den: bigint }, k: bigint): bigint | null {
  const p = f.num * k;
  return p % f.den === 0n ? p / f.den : null;
}

/** english.py's process_words: one pass over the words, numbers gathered into `value`. */
function* processWords(words: readonly string[]): Generator<string> {
  let prefix: string | null = null;
  let value: Value = null;
  let skip = false;

  const output = (result: bigint | string): string => {
    let r = String(result);
    if (prefix !== null) r = prefix + r;
    value = null;
    prefix = null;
    return r;
  };

  for (let i = 0; i < words.length; i++) {
    const prev = words[i - 1];
    const current = words[i]!;
    const next = words[i + 1];
    if (skip) {
      skip = false;
      continue;
    }
    const nextIsNumeric = next !== undefined && NUMERIC.test(next);
    const hasPrefix = PREFIXES.has(current[0]!);
    const currentWithoutPrefix = hasPrefix ? current.slice(1) : current;
    const prevInOnes = prev !== undefined && ONES.has(prev);
    const prevInTens = prev !== undefined && TENS.has(prev);

    if (NUMERIC.test(currentWithoutPrefix)) {
      // arabic numbers, possibly with a currency sign and a fraction
      const f = toFraction(currentWithoutPrefix)!;
      if (value !== null) {
        if (typeof value === 'string' && value.endsWith('.')) {
          value = value + current; // decimals, IP address components
          continue;
        }
        yield output(value);
      }
      prefix = hasPrefix ? current[0]! : prefix;
      value = f.den === 1n ? f.num : currentWithoutPrefix;
    } else if (!WORDS.has(current)) {
      if (value !== null) yield output(value);
      yield output(current);
    } else if (ZEROS.has(current)) {
      value = `${orEmpty(value)}0`;
    } else if (ONES.has(current)) {
      const ones = ONES.get(current)!;
      if (value === null) {
        value = BigInt(ones);
      } else if (typeof value === 'string' || prevInOnes) {
        if (prevInTens && ones < 10) value = String(value).slice(0, -1) + String(ones); // replace the tens' zero
        else value = String(value) + String(ones);
      } else if (ones < 10) {
        value = value % 10n === 0n ? value + BigInt(ones) : String(value) + String(ones);
      } else {
        value = value % 100n === 0n ? value + BigInt(ones) : String(value) + String(ones);
      }
    } else if (ONES_SUFFIXED.has(current)) {
      // ordinal or plural: the number ends here
      const [ones, suffix] = ONES_SUFFIXED.get(current)!;
      if (value === null) {
        yield output(String(ones) + suffix);
      } else if (typeof value === 'string' || prevInOnes) {
        if (prevInTens && ones < 10) yield output(String(value).slice(0, -1) + String(ones) + suffix);
        else yield output(String(value) + String(ones) + suffix);
      } else if (ones < 10) {
        yield output(value % 10n === 0n ? String(value + BigInt(ones)) + suffix : String(value) + String(ones) + suffix);
      } else {
        yield output(value % 100n === 0n ? String(value + BigInt(ones)) + suffix : String(value) + String(ones) + suffix);
      }
      value = null;
    } else if (TENS.has(current)) {
      const tens = TENS.get(current)!;
      if (value === null) value = BigInt(tens);
      else if (typeof value === 'string') value = value + String(tens);
      else value = value % 100n === 0n ? value + BigInt(tens) : String(value) + String(tens);
    } else if (TENS_SUFFIXED.has(current)) {
      const [tens, suffix] = TENS_SUFFIXED.get(current)!;
      if (value === null) yield output(String(tens) + suffix);
      else if (typeof value === 'string') yield output(value + String(tens) + suffix);
      else yield output(value % 100n === 0n ? String(value + BigInt(tens)) + suffix : String(value) + String(tens) + suffix);
    } else if (MULTIPLIERS.has(current)) {
      const multiplier = MULTIPLIERS.get(current)!;
      if (value === null) {
        value = multiplier;
      } else if (typeof value === 'string' || value === 0n) {
        const f = toFraction(value);
        const p = f !== null ? timesIfWhole(f, multiplier) : null;
        if (p !== null) {
          value = p;
        } else {
          yield output(value);
          value = multiplier;
        }
      } else {
        value = (value / 1000n) * 1000n + (value % 1000n) * multiplier;
      }
    } else if (MULTIPLIERS_SUFFIXED.has(current)) {
      const [multiplier, suffix] = MULTIPLIERS_SUFFIXED.get(current)!;
      if (value === null) {
        yield output(String(multiplier) + suffix);
      } else if (typeof value === 'string') {
        const f = toFraction(value);
        const p = f !== null ? timesIfWhole(f, multiplier) : null;
        if (p !== null) {
          yield output(String(p) + suffix);
        } else {
          yield output(value);
          yield output(String(multiplier) + suffix);
        }
      } else {
        value = (value / 1000n) * 1000n + (value % 1000n) * multiplier;
        yield output(String(value) + suffix);
      }
      value = null;
    } else if (PRECEDING_PREFIXERS.has(current)) {
      // minus, plus…: a sign only when a number follows
      if (value !== null) yield output(value);
      if ((next !== undefined && WORDS.has(next)) || nextIsNumeric) prefix = PRECEDING_PREFIXERS.get(current)!;
      else yield output(current);
    } else if (FOLLOWING_PREFIXERS.has(current)) {
      // dollars, cents…: a currency sign only after a number
      if (value !== null) {
        prefix = FOLLOWING_PREFIXERS.get(current)!;
        yield output(value);
      } else {
        yield output(current);
      }
    } else if (SUFFIXERS.has(current)) {
      if (value !== null) {
        const suffix = SUFFIXERS.get(current)!;
        if (typeof suffix !== 'string') {
          const s = next !== undefined ? suffix.get(next) : undefined;
          if (s !== undefined) {
            yield output(String(value) + s);
            skip = true;
          } else {
            yield output(value);
            yield output(current);
          }
        } else {
          yield output(String(value) + suffix);
        }
      } else {
        yield output(current);
      }
    } else {
      // and, double, triple, point
      const nextIsWord = next !== undefined && WORDS.has(next);
      if (!nextIsWord && !nextIsNumeric) {
        if (value !== null) yield output(value);
        yield output(current);
      } else if (current === 'and') {
        // "and" after hundred, thousand… is part of the number
        if (prev === undefined || !MULTIPLIERS.has(prev)) {
          if (value !== null) yield output(value);
          yield output(current);
        }
      } else if (current === 'double' || current === 'triple') {
        if (ONES.has(next!) || ZEROS.has(next!)) {
          const repeats = current === 'double' ? 2 : 3;
          value = orEmpty(value) + String(ONES.get(next!) ?? 0).repeat(repeats);
          skip = true;
        } else {
          if (value !== null) yield output(value);
          yield output(current);
        }
      } else if (DECIMALS.has(next!) || nextIsNumeric) {
        // point
        value = `${orEmpty(value)}.`;
      }
    }
  }
  if (value !== null) yield output(value);
}

const MULTIPLIER_ALTERNATION = [...MULTIPLIERS.keys()].sort((a, b) => b.length - a.length).join('|');
const AND_A_HALF = pyRegex('\\band\\s+a\\s+half\\b');
const HALF_A_MULTIPLIER = pyRegex(`\\b(?:a\\s+half\\s+|half\\s+(?:a\\s+)?)(${MULTIPLIER_ALTERNATION})\\b`);
const SUFFIX_AFTER_DIGIT = pyRegex('([0-9])\\s+(st|nd|rd|th|s)\\b');

/** "<number> and a half" → "<number> point five", "half a million" → "0.5 million", digit/letter splits. */
function preprocess(s: string): string {
  const results: string[] = [];
  const segments = s.split(AND_A_HALF);
  segments.forEach((segment, i) => {
    if (segment.trim().length === 0) return;
    results.push(segment);
    if (i === segments.length - 1) return;
    const words = segment.split(/\s+/).filter((w) => w.length > 0);
    const lastWord = words[words.length - 1]!;
    results.push(DECIMALS.has(lastWord) || MULTIPLIERS.has(lastWord) ? 'point five' : 'and a half');
  });
  let t = results.join(' ');
  t = t.replace(HALF_A_MULTIPLIER, '0.5 $1');
  t = t.replace(/([a-z])([0-9])/g, '$1 $2').replace(/([0-9])([a-z])/g, '$1 $2');
  return t.replace(SUFFIX_AFTER_DIGIT, '$1$2');
}

const CENTS_AFTER_CURRENCY = /([€£$])([0-9]+) (?:and )?¢([0-9]{1,2})(?![\p{L}\p{N}_])/gu;
const CURRENCY_ZERO_POINT = /[€£$]0.([0-9]{1,2})(?![\p{L}\p{N}_])/gu;
const LONE_ONE = pyRegex('\\b1(s?)\\b');

/** "$2 and ¢7" → "$2.07", "$0.07" → "¢7", and "1" → "one" (as openai writes it, for readability). */
function postprocess(s: string): string {
  return s
    .replace(CENTS_AFTER_CURRENCY, (_m, currency: string, integer: string, cents: string) => `${currency}${integer}.${cents.padStart(2, '0')}`)
    .replace(CURRENCY_ZERO_POINT, (_m, cents: string) => `¢${Number(cents)}`)
    .replace(LONE_ONE, 'one$1');
}

/** EnglishNumberNormalizer: expects lower-case text with symbols other than `.%$¢€£` removed. */
export function normalizeEnglishNumbers(s: string): string {
  const words = preprocess(s).split(/\s+/).filter((w) => w.length > 0);
  return postprocess([...processWords(words)].join(' '));
}
