// How many tokens a stream's decode may take: a bound that follows the audio's length, never
// above the configured budget (`sampleLen`). A partial at default settings would otherwise decode
// up to 224 tokens for half a second of audio (a random-weight or looping model does), and come
// back after its utterance has ended; a final of a 3 s utterance would hold the model for 224 steps
// while the next utterance's partials are dropped.
//
// Why 12 text tokens per second: the fastest natural speech runs at about 8 syllables a second
// (Japanese and Spanish; Pellegrino, Coupé and Marsico 2011, Language 87(3)); Whisper's byte-level
// BPE spends about one token per English syllable (1.3 tokens a word) and about one per Chinese or
// Japanese character (a syllable), rarely more; 12 leaves half as much again for punctuation and
// rarer words. A final adds its timestamps: two per segment, and segments are seldom shorter than a
// second, so 2 more per second. The base covers a short first partial's punctuation and a leading
// word split into pieces. A decode that reaches the bound is cut short there: a partial is then
// stabilised like any other (only what two partials agree on is committed), and a final keeps what
// it has (final-text.ts keeps an unfinished tail).
import { VAD_SAMPLE_RATE as SR } from '../vad/speech-segments.ts';

/** Most text tokens per second of audio (see the header). */
export const TEXT_TOKENS_PER_S = 12;
/** Most timestamp tokens per second of audio, in a final. */
export const TIMESTAMP_TOKENS_PER_S = 2;
/** Tokens allowed on top of the per-second bound. */
export const BASE_TOKENS = 8;

/** The token budget of a decode over `samples` of 16 kHz audio, at most `max`. */
export function tokenBudget(samples: number, max: number, timestamps: boolean): number {
  const perS = TEXT_TOKENS_PER_S + (timestamps ? TIMESTAMP_TOKENS_PER_S : 0);
  return Math.min(max, Math.ceil((perS * samples) / SR) + BASE_TOKENS);
}
