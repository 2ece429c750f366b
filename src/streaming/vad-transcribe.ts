// The one entry point for transcribing a whole file with the `vad_filter` option (CLI and server):
// with the filter on (the default) Silero VAD finds the speech and only that is decoded, with
// timestamps on the file's own time line; with it off this is plain `transcribe`.
import type { Transcription } from '../decoding/segment.ts';
import { type TranscribeOptions, type TranscriptionRun, transcribe } from '../decoding/transcribe.ts';
import { transcribeSpeech } from '../decoding/vad-filter.ts';
import type { Whisper } from '../decoding/whisper.ts';
import type { SpeechSegmentOptions } from './speech-segments.ts';
import { loadSileroVad } from './vad.ts';
import { detectSpeech } from './vad-endpointer.ts';

export interface VadTranscribeOptions extends TranscribeOptions {
  /** Decode only what the VAD finds to be speech (default true). */
  vadFilter?: boolean;
  /** Tuning of the speech regions (defaults: DEFAULT_SPEECH_SEGMENT_OPTIONS). */
  vad?: SpeechSegmentOptions;
  /** Stops the VAD pass between chunks. */
  signal?: AbortSignal;
}

export async function transcribeWithVad(w: Whisper, samples: Float32Array, options: VadTranscribeOptions = {}): Promise<TranscriptionRun> {
  const { vadFilter = true, vad, signal, ...rest } = options;
  if (!vadFilter) return transcribe(w, samples, rest);
  const regions = await detectSpeech(await loadSileroVad(), samples, vad, signal);
  return transcribeSpeech(w, samples, regions, rest);
}

/** `transcribeWithVad` to the end, gathered (as `transcribeAll`). */
export async function transcribeWithVadAll(w: Whisper, samples: Float32Array, options: VadTranscribeOptions = {}): Promise<Transcription> {
  const run = await transcribeWithVad(w, samples, options);
  const segments = [];
  for await (const s of run.segments) segments.push(s);
  const { language, languageProbability, duration, task } = run;
  return { language, languageProbability, duration, task, text: segments.map((s) => s.text).join(''), segments };
}
