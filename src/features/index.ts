// Public face of the features stage: Whisper's log-mel input for the encoder.
export { HOP_LENGTH, parsePreprocessorConfig, whisperFeatureConfig, type FeatureConfig } from './config.ts';
export { IncrementalLogMel } from './incremental-log-mel.ts';
export { LogMelExtractor, LongFormMel } from './log-mel.ts';
