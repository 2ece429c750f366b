// The reference the features tests compare against: transformers.js's WhisperFeatureExtractor,
// built from the whisper-tiny preprocessor_config.json fixture.
import { readFileSync } from 'node:fs';
import { env, LogLevel, WhisperFeatureExtractor } from '@huggingface/transformers';
import { fixtures } from './inputs.ts';

export function preprocessorConfig(nMels: 80 | 128): Record<string, unknown> {
  const config = JSON.parse(
    readFileSync(new URL('whisper-tiny/preprocessor_config.json', fixtures), 'utf8'),
  ) as Record<string, unknown>;
  if (nMels === 80) return config;
  // A 128-mel config (as large-v3 ships it) has no mel_filters: transformers.js computes them.
  const { mel_filters: _, ...rest } = config;
  return { ...rest, feature_size: 128 };
}

env.logLevel = LogLevel.ERROR; // the reference warns on every > 30 s input

/** transformers.js's features for `samples`, padded or cut to `maxLength` samples (30 s by default). */
export async function referenceFeatures(
  config: Record<string, unknown>,
  samples: Float32Array,
  maxLength?: number,
): Promise<Float32Array> {
  const extractor = new WhisperFeatureExtractor(
    maxLength === undefined ? config : { ...config, nb_max_frames: Number.MAX_SAFE_INTEGER },
  );
  const { input_features } = await extractor(samples, { max_length: maxLength ?? null });
  return input_features.data as Float32Array;
}

