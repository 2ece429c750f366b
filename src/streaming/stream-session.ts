// One live audio stream's pipeline, independent of the transport (both WebSocket protocols drive
// it): 16 kHz samples come in as they arrive; Silero VAD finds where each utterance starts and
// ends; while one is open a partial hypothesis is re-decoded over it (stream-partials.ts); at its
// end the final result, with segment timestamps on the stream's time line, is decoded
// (stream-finals.ts, which also starts finals early on the VAD's tentative end). This file owns the
// audio, the turns and the session's life. Hand-written: it is the product's core.
//
// Load rules, so that latency never grows without bound:
// - all model work goes through the model's one queue (streams above files, finals above partials);
// - partials are dropped rather than queued behind each other (see stream-partials.ts);
// - the audio waiting for the VAD is bounded (`maxBacklogS`): beyond it a push is refused;
// - the ring holds one utterance (at most `maxUtteranceS`, a forced endpoint) plus its pre-roll.
import { SampleRing } from '../audio/ring-buffer.ts';
import { encodePrompt, MAX_SAMPLE_LEN, requestedLanguage } from '../decoding/sot.ts';
import { EarshotError, isEarshotError } from '../errors.ts';
import { IncrementalLogMel } from '../features/index.ts';
import { LocalAgreement } from './local-agreement.ts';
import { VAD_SAMPLE_RATE, type SpeechEvent } from '../vad/speech-segments.ts';
import { Finals } from './stream-finals.ts';
import { Partials } from './stream-partials.ts';
import type { SessionParts, StreamEvent, StreamModel, StreamObserver, StreamStats, Utterance } from './stream-types.ts';
import type { SileroVad } from '../vad/silero.ts';
import { VadEndpointer } from '../vad/endpointer.ts';

export type { FinalSegment, StreamEvent, StreamObserver, StreamStats } from './stream-types.ts';

const SR = VAD_SAMPLE_RATE;
/** Audio is fed to the VAD in slices of this many samples, so events come while the ring still holds their audio. */
const SLICE = SR / 5;

export interface StreamSessionOptions {
  /** Language code or name; undefined / `auto` detects it per utterance (multilingual models). */
  language?: string;
  /** Text that conditions every decode (previous context, vocabulary). */
  prompt?: string;
  /** Decode a partial hypothesis every this many ms of new utterance audio (default 500). */
  partialIntervalMs?: number;
  /** Turn detection by VAD (default true); off, utterances end only at `commit()` (or `maxUtteranceS`). */
  vad?: boolean;
  /** Silence that ends an utterance, ms (default 500). */
  silenceMs?: number;
  /** Audio kept before the detected start of speech (and after its end), ms (default 300). */
  prefixPaddingMs?: number;
  /** VAD speech probability threshold (default 0.5). */
  threshold?: number;
  /** Longest utterance: a forced endpoint cuts longer speech, seconds (default 30, one Whisper window). */
  maxUtteranceS?: number;
  /** Most audio waiting for the VAD, seconds; a push beyond it is refused (default 60). */
  maxBacklogS?: number;
  /** Token budget of a final's 30 s window (default MAX_SAMPLE_LEN, 224). */
  sampleLen?: number;
  /** Token budget of a partial hypothesis (default: sampleLen). */
  partialSampleLen?: number;
  /** Clock for the latency figures, ms (default performance.now). */
  now?: () => number;
  /** Load figures, for metrics. */
  observer?: StreamObserver;
  /** Called once when the session is closed (the server releases its hold on the model there). */
  onClose?: () => void;
}

function bad(code: string, message: string): EarshotError {
  return new EarshotError('invalid_argument', code, message);
}

function positive(name: string, v: number, max = Infinity): number {
  if (!(Number.isFinite(v) && v > 0 && v <= max)) throw bad('bad_stream_option', `${name} must be a number in (0, ${max}], got ${v}`);
  return v;
}

export class StreamSession {
  private readonly w: StreamModel;
  private readonly o: Required<Omit<StreamSessionOptions, 'language' | 'prompt' | 'observer' | 'onClose'>>;
  private readonly observer: StreamObserver;
  private readonly emit: (e: StreamEvent) => void;
  private readonly ring: SampleRing;
  private readonly endpointer: VadEndpointer | null;
  private readonly language: string | undefined;
  private readonly partials: Partials;
  private readonly finals: Finals;
  /** Serialises the feeding of audio (VAD order). */
  private feed: Promise<void> = Promise.resolve();
  private backlog = 0;
  private utterance: Utterance | null = null;
  /** Manual turns: where the buffered audio starts (audio since the last commit or clear). */
  private bufferStart = 0;
  private nextItem = 0;
  private ended = false;
  /** end()'s flush has begun: no more partials. */
  private flushing = false;
  private readonly aborter = new AbortController();
  private readonly counts: StreamStats = { partials: 0, droppedPartials: 0, finals: 0, speculated: 0 };

  private readonly onClose: (() => void) | undefined;

  constructor(w: StreamModel, vad: SileroVad, emit: (e: StreamEvent) => void, options: StreamSessionOptions = {}) {
    this.w = w;
    this.emit = emit;
    this.observer = options.observer ?? {};
    this.onClose = options.onClose;
    const o = {
      partialIntervalMs: positive('partialIntervalMs', options.partialIntervalMs ?? 500, 60000),
      vad: options.vad ?? true,
      silenceMs: positive('silenceMs', options.silenceMs ?? 500, 10000),
      prefixPaddingMs: options.prefixPaddingMs ?? 300,
      threshold: options.threshold ?? 0.5,
      maxUtteranceS: positive('maxUtteranceS', options.maxUtteranceS ?? 30, 30),
      maxBacklogS: positive('maxBacklogS', options.maxBacklogS ?? 60, 3600),
      sampleLen: options.sampleLen ?? MAX_SAMPLE_LEN,
      partialSampleLen: options.partialSampleLen ?? options.sampleLen ?? MAX_SAMPLE_LEN,
      now: options.now ?? (() => performance.now()),
    };
    if (!(o.prefixPaddingMs >= 0 && o.prefixPaddingMs <= 2000)) {
      throw bad('bad_stream_option', `prefix padding must be 0 to 2000 ms, got ${o.prefixPaddingMs}`);
    }
    this.o = o;
    this.language = requestedLanguage(w.tokenizer, options.language);
    const prompt = options.prompt || undefined;
    // Room for the longest utterance, its padding on both sides and the VAD's reporting delay.
    const slack = (2 * o.prefixPaddingMs + o.silenceMs) / 1000 + 2;
    this.ring = new SampleRing(Math.ceil((o.maxUtteranceS + slack) * SR));
    this.endpointer = o.vad
      ? new VadEndpointer(vad, {
          threshold: o.threshold,
          minSilenceMs: o.silenceMs,
          speechPadMs: o.prefixPaddingMs,
          maxSpeechS: o.maxUtteranceS,
        })
      : null;
    const parts: SessionParts = {
      send: (e) => this.send(e),
      fail: (item, e) => this.fail(item, e),
      counts: this.counts,
      observer: this.observer,
      signal: this.aborter.signal,
      now: o.now,
    };
    const promptTokens = prompt ? encodePrompt(w.tokenizer, prompt) : [];
    this.partials = new Partials(w, parts, { intervalMs: o.partialIntervalMs, sampleLen: o.partialSampleLen, promptTokens }, () => this.utterance);
    this.finals = new Finals(w, parts, { sampleLen: o.sampleLen, promptTokens, paddingMs: o.prefixPaddingMs });
  }

  get stats(): StreamStats {
    return { ...this.counts };
  }

  /** Samples received so far (the stream's time line, at 16 kHz). */
  get samplesReceived(): number {
    return this.ring.written + this.backlog;
  }

  /**
   * Takes the next 16 kHz samples. Throws `overloaded` (the samples are not taken) when more than
   * `maxBacklogS` of audio would be waiting for the VAD, and `invalid_audio` for non-finite samples.
   */
  push(samples: Float32Array): void {
    if (this.ended) throw bad('stream_ended', 'the stream has ended');
    if (samples.length === 0) return;
    for (let i = 0; i < samples.length; i++) {
      if (!Number.isFinite(samples[i]!)) throw new EarshotError('invalid_audio', 'non_finite_samples', 'audio holds NaN or infinite samples');
    }
    if (this.backlog + samples.length > this.o.maxBacklogS * SR) {
      throw new EarshotError('overloaded', 'audio_backlog', `more than ${this.o.maxBacklogS} s of audio is waiting to be processed: send audio at real-time pace`);
    }
    const copy = samples.slice();
    this.backlog += copy.length;
    this.serial(async () => {
      for (let at = 0; at < copy.length && !this.aborter.signal.aborted; at += SLICE) {
        const slice = copy.subarray(at, at + SLICE);
        this.ring.push(slice);
        this.utterance?.mel.push(slice);
        this.backlog -= slice.length;
        if (this.endpointer) {
          this.handle(await this.endpointer.push(slice));
          this.speculate();
        } else this.manualGrowth();
        this.maybePartial();
      }
    });
  }

  /**
   * Ends the current turn now: the audio of the open utterance (with VAD) or everything since the
   * last commit (without) becomes an item and is finalised. Resolves to its item number; rejects
   * `input_audio_buffer_commit_empty` when there is under 100 ms of audio to commit.
   */
  commit(): Promise<number> {
    return this.serialValue(() => {
      const end = this.ring.written;
      const start = this.utterance?.start ?? (this.o.vad ? end : this.bufferStart);
      if (end - start < SR / 10) {
        throw bad('input_audio_buffer_commit_empty', 'the input audio buffer holds less than 100 ms of audio: nothing to commit');
      }
      const u = this.utterance ?? this.open(start);
      this.endUtterance(end, false);
      return u.item;
    });
  }

  /** Drops the audio of the open turn without transcribing it. */
  clear(): Promise<void> {
    return this.serialValue(() => {
      const u = this.utterance;
      if (u) {
        u.partial?.abort();
        this.finals.withdraw(u);
        this.utterance = null;
      }
      this.bufferStart = this.ring.written;
    });
  }

  /**
   * The end of the audio: open speech is closed and finalised. Resolves once every final has been
   * emitted; nothing is emitted after that.
   */
  async end(): Promise<void> {
    if (this.ended) return this.finals.settled;
    this.ended = true;
    this.serial(async () => {
      this.flushing = true;
      if (this.endpointer) this.handle(await this.endpointer.finish());
      else if (this.ring.written - this.bufferStart >= SR / 10) {
        if (!this.utterance) this.open(this.bufferStart);
        this.endUtterance(this.ring.written, false);
      }
      if (this.utterance) this.endUtterance(this.ring.written, false);
    });
    await this.feed;
    await this.finals.settled;
  }

  /** The client is gone: withdraws queued work, stops running work between model calls, emits nothing more. */
  close(): void {
    if (!this.closed) this.onClose?.();
    this.ended = true;
    this.aborter.abort(new EarshotError('internal', 'stream_closed', 'the stream was closed'));
    this.utterance?.partial?.abort();
  }

  get closed(): boolean {
    return this.aborter.signal.aborted;
  }

  /** Ends the open utterance at absolute sample `end` and queues its final. */
  private endUtterance(end: number, forced: boolean): void {
    const u = this.utterance;
    if (!u) return;
    this.utterance = null;
    u.end = end;
    u.partial?.abort();
    u.partial = null;
    if (u.speculation && !this.finals.fits(u.speculation, end)) this.finals.withdraw(u);
    this.bufferStart = end;
    this.send({ type: 'speech_stopped', item: u.item, end: end / SR, forced });
    this.finals.queue(u, end, end - u.start);
  }

  private send(e: StreamEvent): void {
    if (!this.aborter.signal.aborted) this.emit(e);
  }

  private serial(work: () => Promise<void>): void {
    this.feed = this.feed.then(work).catch((e: unknown) => this.fail(null, e));
  }

  private serialValue<T>(work: () => T): Promise<T> {
    const run = this.feed.then(work);
    this.feed = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private fail(item: number | null, e: unknown): void {
    if (this.aborter.signal.aborted) return;
    const error = isEarshotError(e) ? e : new EarshotError('internal', 'stream_failed', `stream processing failed: ${(e as Error)?.message ?? e}`, { cause: e });
    this.send({ type: 'error', item, error });
  }

  private open(start: number): Utterance {
    const from = Math.max(start, this.ring.oldest);
    const mel = new IncrementalLogMel(this.w.features);
    mel.push(this.ring.read(from, this.ring.written));
    const u: Utterance = {
      item: this.nextItem++,
      start: from,
      end: null,
      mel,
      agreement: new LocalAgreement((t) => this.w.tokenizer.decode(t)),
      committedText: '',
      nextPartialAt: this.partials.firstAt,
      lastPartialAt: null,
      language: this.language,
      partial: null,
      speculation: null,
    };
    this.utterance = u;
    this.send({ type: 'speech_started', item: u.item, start: u.start / SR });
    return u;
  }

  private handle(events: SpeechEvent[]): void {
    for (const e of events) {
      if (e.type === 'speech-start') {
        if (!this.utterance) this.open(Math.max(e.sample, this.bufferStart));
      } else if (this.utterance) {
        // Speech that reached maxUtteranceS is cut by the VAD itself: an end followed at once by a start.
        const forced = (e.sample - this.utterance.start) / SR >= this.o.maxUtteranceS - 0.1;
        this.endUtterance(Math.max(e.sample, this.utterance.start), forced);
      }
    }
  }

  /** Without VAD: a turn opens with the first audio after a commit, and is forced closed at maxUtteranceS. */
  private manualGrowth(): void {
    if (!this.utterance && this.ring.written > this.bufferStart) this.open(this.bufferStart);
    const u = this.utterance;
    if (u && this.ring.written - u.start >= this.o.maxUtteranceS * SR) this.endUtterance(u.start + this.o.maxUtteranceS * SR, true);
  }

  private maybePartial(): void {
    const u = this.utterance;
    if (!u || this.flushing || this.aborter.signal.aborted) return;
    this.partials.maybe(u, this.ring.written - u.start, this.finals.pending > 0);
  }

  /** Starts, keeps or withdraws the open utterance's speculative final as the VAD's tentative end moves. */
  private speculate(): void {
    const u = this.utterance;
    if (!u || this.flushing) return;
    this.finals.speculate(u, this.endpointer?.tentativeEnd ?? null, (end) => Math.min(end, this.ring.written) - u.start);
  }
}
