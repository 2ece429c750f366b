// Front-end settings of a Whisper model, read from its preprocessor_config.json (the hub file that
// transformers' WhisperFeatureExtractor is built from). Only the fields the log-mel needs are read;
// `mel_filters`, when present, is ignored because the bank is computed (see mel-filters.ts).
import { z } from 'zod';
import { TARGET_SAMPLE_RATE } from '../audio/types.ts';
import { EarshotError } from '../errors.ts';

/** Samples between two mel frames (10 ms at 16 kHz), as every Whisper model has it. */
export const HOP_LENGTH = 160;

export interface FeatureConfig {
  /** Mel bands: 80 (most models) or 128 (large-v3 and its turbo). */
  nMels: number;
  nFft: number;
  hopLength: number;
  sampleRate: number;
  /** Samples in one window fed to the encoder (30 s). */
  chunkSamples: number;
  /** Frames in one window (3000). */
  chunkFrames: number;
}

const positiveInt = z.number().int().positive();

const preprocessorSchema = z.object({
  feature_size: positiveInt,
  sampling_rate: positiveInt.default(TARGET_SAMPLE_RATE),
  hop_length: positiveInt.default(HOP_LENGTH),
  n_fft: positiveInt.default(400),
  chunk_length: positiveInt.default(30),
  n_samples: positiveInt.optional(),
  nb_max_frames: positiveInt.optional(),
});

/** Whisper's settings for `nMels` bands. */
export function whisperFeatureConfig(nMels: 80 | 128 = 80): FeatureConfig {
  return parsePreprocessorConfig({ feature_size: nMels });
}

/** Validates a parsed preprocessor_config.json; throws EarshotError('invalid_argument') if unusable. */
export function parsePreprocessorConfig(json: unknown): FeatureConfig {
  const parsed = preprocessorSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new EarshotError(
      'invalid_argument',
      'bad_preprocessor_config',
      `preprocessor_config.json is not usable: ${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
  }
  const c = parsed.data;
  const chunkSamples = c.n_samples ?? c.chunk_length * c.sampling_rate;
  const chunkFrames = c.nb_max_frames ?? Math.floor(chunkSamples / c.hop_length);
  // Centre padding reflects n_fft/2 samples at each end, so a window must be longer than that.
  if (chunkSamples <= c.n_fft || chunkFrames !== Math.floor(chunkSamples / c.hop_length)) {
    throw new EarshotError(
      'invalid_argument',
      'bad_preprocessor_config',
      `preprocessor_config.json is inconsistent: n_samples ${chunkSamples}, hop_length ${c.hop_length}, ` +
        `n_fft ${c.n_fft}, nb_max_frames ${chunkFrames}`,
    );
  }
  return {
    nMels: c.feature_size,
    nFft: c.n_fft,
    hopLength: c.hop_length,
    sampleRate: c.sampling_rate,
    chunkSamples,
    chunkFrames,
  };
}
