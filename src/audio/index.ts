// Public face of the audio stage: decode any supported input to 16 kHz mono float, plus the
// resampler and the WAV reader for direct use.
export { decodeAudio } from './decode.ts';
export { resample } from './resample.ts';
export { parseWav, parseWavHeader, type WavHeader, type WavSampleFormat } from './wav.ts';
export { ffmpegPath } from './ffmpeg.ts';
export {
  DEFAULT_MAX_DURATION_S,
  TARGET_SAMPLE_RATE,
  type DecodedAudio,
  type DecodeOptions,
  type MonoPcm,
} from './types.ts';
