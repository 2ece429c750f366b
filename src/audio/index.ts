// Public face of the audio stage: decode any supported input to 16 kHz mono float, plus the
// resampler and the WAV reader for direct use.
export { decodeAudio } from './decode.ts';
export { resample, StreamResampler } from './resample.ts';
export { decodeWavBytes, parseWav, parseWavHeader, type WavHeader, type WavSampleFormat } from './wav.ts';
export { ffmpegPath } from './ffmpeg.ts';
export {
  DEFAULT_MAX_DURATION_S,
  TARGET_SAMPLE_RATE,
  type DecodedAudio,
  type DecodeOptions,
  type MonoPcm,
  type OpenSink,
  type RawPcmFormat,
  type RawSampleFormat,
  type SourceInfo,
} from './types.ts';
