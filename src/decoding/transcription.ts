// The result types of transcription, shared by the decoder, the CLI and the server. Field names
// follow openai/whisper's segments (and OpenAI's verbose_json) so they serialise without renaming.
import type { Task } from './sot.ts';

/** A word of a segment with its time (seconds); `word` keeps its leading space, as in the text. */
export interface Word {
  word: string;
  start: number;
  end: number;
}

export interface Segment {
  id: number;
  /** Start of the 30 s window this segment was decoded in, in mel frames (10 ms each). */
  seek: number;
  start: number;
  end: number;
  text: string;
  tokens: number[];
  temperature: number;
  avg_logprob: number;
  compression_ratio: number;
  no_speech_prob: number;
  /** With word timestamps: the segment's words, which joined give its text. */
  words?: Word[];
}

export interface TranscriptionInfo {
  /** ISO code, e.g. `en`. */
  language: string;
  languageProbability: number;
  /** Seconds of input audio. */
  duration: number;
  task: Task;
}

export interface Transcription extends TranscriptionInfo {
  text: string;
  segments: Segment[];
}
