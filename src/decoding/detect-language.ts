// Spoken-language detection, as openai/whisper's detect_language: one decoder step from
// <|startoftranscript|>, the logits restricted to the language tokens, softmax over those.
import { EarshotError } from '../errors.ts';
import type { EncodedAudio, ModelRunner } from '../engine/model-types.ts';
import type { WhisperTokenizer } from './tokenizer.ts';

export interface DetectedLanguage {
  /** The most likely language code. */
  language: string;
  probability: number;
  /** Every language the model knows, most likely first. */
  probabilities: { language: string; probability: number }[];
}

export async function detectLanguage(model: ModelRunner, tok: WhisperTokenizer, encoded: EncodedAudio): Promise<DetectedLanguage> {
  if (!tok.isMultilingual || tok.languageTokens.size === 0) {
    throw new EarshotError('invalid_argument', 'not_multilingual', 'this model is English-only: there is no language to detect');
  }
  const out = await model.decode(BigInt64Array.of(BigInt(tok.sot)), 1, encoded, null);
  model.finish?.(out.cache);
  const logits = out.logits;
  let max = -Infinity;
  for (const id of tok.languageTokens.values()) max = Math.max(max, logits[id]!);
  let total = 0;
  const scored = [...tok.languageTokens].map(([language, id]) => {
    const e = Math.exp(logits[id]! - max);
    total += e;
    return { language, probability: e };
  });
  for (const s of scored) s.probability /= total;
  // Stable sort: on a tie the earlier language token wins, as argmax does.
  scored.sort((a, b) => b.probability - a.probability);
  return { language: scored[0]!.language, probability: scored[0]!.probability, probabilities: scored };
}
