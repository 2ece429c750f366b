// Speech regions from per-frame speech probabilities (one probability per 512-sample frame at
// 16 kHz, as Silero VAD gives them). One incremental core serves both uses: streaming endpointing
// pushes a probability per frame and gets speech-start / speech-end events with bounded delay, and
// the file filter runs the same core over a whole file (`speechRegions`), so both agree exactly.
//
// Rules (learnt from Silero's / faster-whisper's get_speech_timestamps, written here because this
// is the product's core and the streaming form has no library equivalent):
// - hysteresis: speech starts on a frame at or above `threshold`; a silence run starts on a frame
//   below `negThreshold`, and only a frame back at `threshold` breaks it;
// - a region ends where a silence run began once that run has lasted `minSilenceMs`;
// - regions shorter than `minSpeechMs` are dropped;
// - a region about to exceed `maxSpeechS` (padding included) is cut: at the start of its current
//   silence run if it is in one, else at its quietest frame (lowest probability, latest on ties),
//   and speech goes on from there as a new region;
// - each region is padded by `speechPadMs` on both sides; where two regions are closer than two
//   pads, the gap between them is shared half and half.
//
// Delays: a start is reported once the region is sure to last `minSpeechMs`; an end once the
// silence has lasted `minSilenceMs` and no region that will be kept starts within two pads of it.
import { EarshotError } from '../errors.ts';

export const VAD_SAMPLE_RATE = 16000;
/** Samples per Silero v5 frame at 16 kHz (32 ms). */
export const FRAME_SAMPLES = 512;

export interface SpeechSegmentOptions {
  /** Onset: a frame at or above this probability is speech (default 0.5). */
  threshold?: number;
  /** Offset: a frame below this is silence (default max(threshold - 0.15, 0.01)). */
  negThreshold?: number;
  /** Shorter regions are dropped (default 250 ms). */
  minSpeechMs?: number;
  /** Silence that ends a region (default 2000 ms, faster-whisper's file default). */
  minSilenceMs?: number;
  /** Audio kept on each side of a region (default 400 ms). */
  speechPadMs?: number;
  /** Longest region, padding included (default Infinity: never cut). */
  maxSpeechS?: number;
}

export const DEFAULT_SPEECH_SEGMENT_OPTIONS: Required<Omit<SpeechSegmentOptions, 'negThreshold'>> = {
  threshold: 0.5,
  minSpeechMs: 250,
  minSilenceMs: 2000,
  speechPadMs: 400,
  maxSpeechS: Infinity,
};

/** Sample positions count from the first sample pushed. */
export interface SpeechEvent {
  type: 'speech-start' | 'speech-end';
  sample: number;
}

/** A speech region in samples: [start, end). */
export interface SpeechRegion {
  start: number;
  end: number;
}

interface Resolved {
  threshold: number;
  negThreshold: number;
  minSpeech: number;
  minSilence: number;
  pad: number;
  /** Longest raw (unpadded) region, in samples. */
  maxRaw: number;
}

function bad(message: string): EarshotError {
  return new EarshotError('invalid_argument', 'bad_vad_option', message);
}

export function resolveSpeechSegmentOptions(o: SpeechSegmentOptions = {}): Resolved {
  const d = DEFAULT_SPEECH_SEGMENT_OPTIONS;
  const threshold = o.threshold ?? d.threshold;
  if (!(threshold > 0 && threshold <= 1)) throw bad(`VAD threshold must be in (0, 1], got ${threshold}`);
  const negThreshold = o.negThreshold ?? Math.max(threshold - 0.15, 0.01);
  if (!(negThreshold >= 0 && negThreshold <= threshold)) {
    throw bad(`VAD negThreshold must be in [0, threshold], got ${negThreshold}`);
  }
  const ms = (name: string, v: number): number => {
    if (!(v >= 0 && Number.isFinite(v))) throw bad(`VAD ${name} must be a finite number ≥ 0, got ${v}`);
    return Math.round((v * VAD_SAMPLE_RATE) / 1000);
  };
  const minSpeech = ms('minSpeechMs', o.minSpeechMs ?? d.minSpeechMs);
  const minSilence = ms('minSilenceMs', o.minSilenceMs ?? d.minSilenceMs);
  const pad = ms('speechPadMs', o.speechPadMs ?? d.speechPadMs);
  const maxS = o.maxSpeechS ?? d.maxSpeechS;
  if (!(maxS > 0)) throw bad(`VAD maxSpeechS must be > 0, got ${maxS}`);
  const maxRaw = maxS === Infinity ? Infinity : Math.floor(maxS * VAD_SAMPLE_RATE) - 2 * pad;
  if (maxRaw < minSpeech + FRAME_SAMPLES) {
    throw bad(`VAD maxSpeechS (${maxS} s) leaves no room for minSpeechMs and two pads of speechPadMs`);
  }
  return { threshold, negThreshold, minSpeech, minSilence, pad, maxRaw };
}

interface OpenRegion {
  start: number;
  /** Where the current silence run began; null while speech goes on. */
  silenceStart: number | null;
  /** Its start event has been sent (it is sure to be kept). */
  confirmed: boolean;
  /** Probabilities of its frames, oldest first (kept only when regions can be cut). */
  probs: number[];
}

/** The incremental core: push one probability per frame, get events back. */
export class SpeechSegmenter {
  private readonly o: Resolved;
  private samples = 0;
  private ended = false;
  private region: OpenRegion | null = null;
  /** Raw end of the last kept region whose end event is not sent yet. */
  private pendingEnd: number | null = null;
  /** Raw end of the last kept region (to share a short gap with the next one). */
  private lastRawEnd: number | null = null;

  constructor(options: SpeechSegmentOptions = {}) {
    this.o = resolveSpeechSegmentOptions(options);
  }

  /** Samples covered by the frames pushed so far. */
  get samplesSeen(): number {
    return this.samples;
  }

  /**
   * Where the current speech will end if the silence now under way lasts (the sample its end event
   * will most likely carry), or null while speech goes on or nothing is open. Once the silence is
   * long enough the end is certain, though not its padding: a next region starting close by takes
   * part of it, so the end event may come up to one pad earlier. Streams start their final early on
   * it, so the result is ready about when the end is confirmed.
   */
  get tentativeEnd(): number | null {
    if (this.pendingEnd !== null) return this.pendingEnd + this.o.pad;
    const r = this.region;
    return r !== null && r.confirmed && r.silenceStart !== null ? r.silenceStart + this.o.pad : null;
  }

  /**
   * The probability of the next frame. `frameSamples` is less than FRAME_SAMPLES only for the last,
   * zero-padded frame of a stream; nothing can be pushed after it but `finish`.
   */
  push(prob: number, frameSamples: number = FRAME_SAMPLES): SpeechEvent[] {
    if (this.ended) throw new EarshotError('invalid_argument', 'vad_ended', 'this VAD stream has ended');
    if (!(prob >= 0 && prob <= 1)) throw bad(`speech probability must be in [0, 1], got ${prob}`);
    if (!(Number.isInteger(frameSamples) && frameSamples > 0 && frameSamples <= FRAME_SAMPLES)) {
      throw bad(`frame length must be 1..${FRAME_SAMPLES} samples, got ${frameSamples}`);
    }
    if (this.samples % FRAME_SAMPLES !== 0) {
      throw new EarshotError('invalid_argument', 'vad_partial_frame', 'only the last frame of a stream may be partial');
    }
    const { threshold, negThreshold, minSilence, maxRaw } = this.o;
    const frameStart = this.samples;
    const frameEnd = frameStart + frameSamples;
    this.samples = frameEnd;
    const events: SpeechEvent[] = [];
    let r = this.region;

    if (r === null) {
      if (prob >= threshold) {
        r = this.region = { start: frameStart, silenceStart: null, confirmed: false, probs: [] };
      }
    } else if (prob >= threshold) {
      r.silenceStart = null;
    } else if (prob < negThreshold && r.silenceStart === null) {
      r.silenceStart = frameStart;
    }
    if (r !== null && maxRaw !== Infinity) r.probs.push(prob);

    if (r !== null && r.silenceStart !== null && frameEnd - r.silenceStart >= minSilence) {
      this.closeRegion(r.silenceStart, events);
    } else if (r !== null && frameEnd - r.start > maxRaw) {
      if (r.silenceStart !== null) {
        this.closeRegion(r.silenceStart, events);
      } else {
        const cut = this.quietestFrame(r);
        this.closeRegion(r.start + cut * FRAME_SAMPLES, events);
        this.region = { start: r.start + cut * FRAME_SAMPLES, silenceStart: null, confirmed: false, probs: r.probs.slice(cut) };
      }
    }

    this.confirmIfSure(frameEnd, events);
    this.flushPendingEnd(frameEnd, events);
    return events;
  }

  /** Ends the stream: closes an open region at the last sample and sends what is still owed. */
  finish(): SpeechEvent[] {
    if (this.ended) return [];
    this.ended = true;
    const events: SpeechEvent[] = [];
    const r = this.region;
    if (r !== null) this.closeRegion(r.silenceStart ?? this.samples, events);
    if (this.pendingEnd !== null) {
      events.push({ type: 'speech-end', sample: Math.min(this.samples, this.pendingEnd + this.o.pad) });
      this.pendingEnd = null;
    }
    return events;
  }

  /** Index (in the region's frames) of the cut: the lowest probability, at least minSpeech in. */
  private quietestFrame(r: OpenRegion): number {
    const first = Math.max(1, Math.ceil(this.o.minSpeech / FRAME_SAMPLES));
    let best = first;
    for (let i = first; i < r.probs.length; i++) if (r.probs[i]! <= r.probs[best]!) best = i;
    return best;
  }

  /** Sends the start of the open region once no outcome can make it shorter than minSpeech. */
  private confirmIfSure(frameEnd: number, events: SpeechEvent[]): void {
    const r = this.region;
    if (r === null || r.confirmed) return;
    if ((r.silenceStart ?? frameEnd) - r.start >= this.o.minSpeech) this.confirm(r, events);
  }

  private confirm(r: OpenRegion, events: SpeechEvent[]): void {
    const { pad } = this.o;
    let before = pad;
    if (this.lastRawEnd !== null) {
      const gap = r.start - this.lastRawEnd;
      if (gap < 2 * pad) before = Math.floor(gap / 2);
      if (this.pendingEnd !== null) {
        events.push({ type: 'speech-end', sample: this.pendingEnd + (gap < 2 * pad ? gap - before : pad) });
        this.pendingEnd = null;
      }
    }
    events.push({ type: 'speech-start', sample: Math.max(0, r.start - before) });
    r.confirmed = true;
  }

  private closeRegion(end: number, events: SpeechEvent[]): void {
    const r = this.region!;
    this.region = null;
    if (end - r.start < this.o.minSpeech) return;
    if (!r.confirmed) this.confirm(r, events);
    this.pendingEnd = end;
    this.lastRawEnd = end;
  }

  /** Sends a pending end once no kept region can start close enough to share its pad. */
  private flushPendingEnd(frameEnd: number, events: SpeechEvent[]): void {
    const p = this.pendingEnd;
    if (p === null) return;
    const horizon = p + 2 * this.o.pad;
    if (frameEnd < horizon) return;
    if (this.region !== null && this.region.start < horizon) return;
    events.push({ type: 'speech-end', sample: p + this.o.pad });
    this.pendingEnd = null;
  }
}

/** Pairs a complete event list into regions. */
export function regionsFromEvents(events: readonly SpeechEvent[]): SpeechRegion[] {
  const out: SpeechRegion[] = [];
  let start: number | null = null;
  for (const e of events) {
    if (e.type === 'speech-start') {
      if (start !== null) throw new EarshotError('internal', 'vad_events', 'two speech starts in a row');
      start = e.sample;
    } else {
      if (start === null) throw new EarshotError('internal', 'vad_events', 'speech end without a start');
      out.push({ start, end: e.sample });
      start = null;
    }
  }
  if (start !== null) throw new EarshotError('internal', 'vad_events', 'speech start without an end');
  return out;
}

/**
 * Speech regions of a whole signal of `totalSamples` samples from its frame probabilities (one per
 * FRAME_SAMPLES, the last frame possibly partial): the streaming core run to the end.
 */
export function speechRegions(
  probs: ArrayLike<number>,
  totalSamples: number,
  options: SpeechSegmentOptions = {},
): SpeechRegion[] {
  if (probs.length !== Math.ceil(totalSamples / FRAME_SAMPLES)) {
    throw bad(`${totalSamples} samples need ${Math.ceil(totalSamples / FRAME_SAMPLES)} frame probabilities, got ${probs.length}`);
  }
  const seg = new SpeechSegmenter(options);
  const events: SpeechEvent[] = [];
  for (let i = 0; i < probs.length; i++) {
    events.push(...seg.push(probs[i]!, Math.min(FRAME_SAMPLES, totalSamples - i * FRAME_SAMPLES)));
  }
  events.push(...seg.finish());
  return regionsFromEvents(events);
}
