// Shapes and limits shared by the audio stage: what a decoder hands on, and the default bounds.
import { EarshotError } from '../errors.ts';

/** Decoded audio as the rest of earshot wants it: 16 kHz mono float in [-1, 1]. */
export interface DecodedAudio {
  samples: Float32Array;
  sampleRate: 16000;
  durationS: number;
  sourceSampleRate: number;
  sourceChannels: number;
  /** Short name of the source format, e.g. 'wav/pcm_s16le', 'ffmpeg/mp3'. */
  format: string;
}

export interface DecodeOptions {
  /** Longest accepted input, in seconds of audio (default 3 h). Enforced while decoding. */
  maxDurationS?: number;
  signal?: AbortSignal;
  /**
   * The input is headerless PCM in this layout (it cannot be detected): e.g. raw s16le from a
   * pipe, or a realtime client's pcm16 at 24 kHz.
   */
  raw?: RawPcmFormat;
}

/** Headerless PCM: how to read it. */
export interface RawPcmFormat {
  sampleRate: number;
  /** Default 1. */
  channels?: number;
  sampleFormat: RawSampleFormat;
}

/** Sample layouts the in-process reader decodes (WAV data or raw PCM). */
export type RawSampleFormat =
  | 'pcm_u8'
  | 'pcm_s16le'
  | 'pcm_s24le'
  | 'pcm_s32le'
  | 'pcm_f32le'
  | 'pcm_f64le'
  | 'pcm_mulaw'
  | 'pcm_alaw';

/** What a decoder knows about its source once the header is read. */
export interface SourceInfo {
  sampleRate: number;
  /** Channel count of the source, before the downmix. */
  channels: number;
  format: string;
}

/** Mono audio at the source's own rate, as parseWav returns it. */
export interface MonoPcm extends SourceInfo {
  samples: Float32Array;
}

/**
 * How decoders hand on their output without holding it: once the source is known they call
 * `open`, then the returned writer with each chunk of mono samples at the source rate, in order.
 */
export type OpenSink = (info: SourceInfo) => (samples: Float32Array) => void;

export const TARGET_SAMPLE_RATE = 16000;
export const DEFAULT_MAX_DURATION_S = 3 * 3600;
/** Rates outside this range are treated as a lying header rather than audio. */
export const MIN_SAMPLE_RATE = 1000;
export const MAX_SAMPLE_RATE = 768000;
export const MAX_CHANNELS = 64;

export function invalidAudio(code: string, message: string, cause?: unknown): EarshotError {
  return new EarshotError('invalid_audio', code, message, cause === undefined ? undefined : { cause });
}

export function tooLong(maxDurationS: number): EarshotError {
  return new EarshotError(
    'audio_too_long',
    'too_long',
    `audio is longer than the allowed ${maxDurationS} s`,
  );
}

/** Frame budget for a stream at `sampleRate` under `maxDurationS`. */
export function maxFrames(maxDurationS: number, sampleRate: number): number {
  return Math.floor(maxDurationS * sampleRate);
}

export function checkMaxDuration(maxDurationS: unknown): number {
  if (typeof maxDurationS !== 'number' || !(maxDurationS > 0) || !Number.isFinite(maxDurationS)) {
    throw new EarshotError(
      'invalid_argument',
      'bad_max_duration',
      `maxDurationS must be a positive finite number of seconds, got ${String(maxDurationS)}`,
    );
  }
  return maxDurationS;
}
