// Voice activity detection over audio: Silero frame probabilities fed into the speech segmenter.
// `VadEndpointer` takes 16 kHz samples in chunks of any size as they arrive (a live stream) and
// returns speech-start / speech-end events; `detectSpeech` runs the same endpointer over a whole
// signal, so a file and a stream of the same audio give the same regions.
import { EarshotError } from '../errors.ts';
import {
  FRAME_SAMPLES,
  regionsFromEvents,
  type SpeechEvent,
  type SpeechRegion,
  SpeechSegmenter,
  type SpeechSegmentOptions,
} from './speech-segments.ts';
import type { SileroVad, VadStream } from './silero.ts';

export class VadEndpointer {
  private readonly stream: VadStream;
  private readonly segmenter: SpeechSegmenter;
  private readonly pending = new Float32Array(FRAME_SAMPLES);
  private pendingLength = 0;
  /** Calls run one after another, in the order they were made. */
  private tail: Promise<unknown> = Promise.resolve();
  private finished = false;

  constructor(vad: SileroVad, options: SpeechSegmentOptions = {}) {
    this.stream = vad.createStream();
    this.segmenter = new SpeechSegmenter(options);
  }

  /** Samples pushed so far. */
  get samplesSeen(): number {
    return this.segmenter.samplesSeen + this.pendingLength;
  }

  /** See SpeechSegmenter.tentativeEnd (as of the samples pushed whose events have resolved). */
  get tentativeEnd(): number | null {
    return this.segmenter.tentativeEnd;
  }

  /** Feeds the next samples (any length); resolves to the events they complete. */
  push(samples: Float32Array): Promise<SpeechEvent[]> {
    if (this.finished) return Promise.reject(new EarshotError('invalid_argument', 'vad_ended', 'this VAD stream has ended'));
    const copy = samples.slice();
    return this.serial(async () => {
      const events: SpeechEvent[] = [];
      let offset = 0;
      while (offset < copy.length) {
        const take = Math.min(FRAME_SAMPLES - this.pendingLength, copy.length - offset);
        this.pending.set(copy.subarray(offset, offset + take), this.pendingLength);
        this.pendingLength += take;
        offset += take;
        if (this.pendingLength === FRAME_SAMPLES) {
          const prob = await this.stream.process(this.pending);
          this.pendingLength = 0;
          events.push(...this.segmenter.push(prob));
        }
      }
      return events;
    });
  }

  /** Ends the stream: the last partial frame is zero-padded, open speech is closed. */
  finish(): Promise<SpeechEvent[]> {
    if (this.finished) return Promise.resolve([]);
    this.finished = true;
    return this.serial(async () => {
      const events: SpeechEvent[] = [];
      if (this.pendingLength > 0) {
        const n = this.pendingLength;
        this.pending.fill(0, n);
        const prob = await this.stream.process(this.pending);
        this.pendingLength = 0;
        events.push(...this.segmenter.push(prob, n));
      }
      events.push(...this.segmenter.finish());
      return events;
    });
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

/** Speech regions (in samples) of a whole 16 kHz signal. Rejects with `signal.reason` once aborted. */
export async function detectSpeech(
  vad: SileroVad,
  samples: Float32Array,
  options: SpeechSegmentOptions = {},
  signal?: AbortSignal,
): Promise<SpeechRegion[]> {
  const ep = new VadEndpointer(vad, options);
  const events: SpeechEvent[] = [];
  const CHUNK = FRAME_SAMPLES * 64;
  for (let i = 0; i < samples.length; i += CHUNK) {
    signal?.throwIfAborted();
    events.push(...(await ep.push(samples.subarray(i, i + CHUNK))));
  }
  events.push(...(await ep.finish()));
  return regionsFromEvents(events);
}
