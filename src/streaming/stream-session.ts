// One live audio stream's pipeline, independent of the transport (both WebSocket protocols drive
// it): 16 kHz samples come in as they arrive; Silero VAD finds where each utterance starts and
// ends; while one is open a partial hypothesis is re-decoded over it every `partialIntervalMs` of
// new audio and stabilised with LocalAgreement; at its end the final result (with segment
// timestamps on the stream's time line) is decoded. Hand-written: it is the product's core.
//
// Load rules, so that latency never grows without bound:
// - all model work goes through the model's one queue (streams above files, finals above partials);
// - a stream never has two partials queued or running: a partial that falls due meanwhile is dropped
//   (and counted), as is one due while an earlier utterance's final is still pending, and a queued
//   partial whose utterance has ended is withdrawn;
// - the audio waiting for the VAD is bounded (`maxBacklogS`): beyond it a push is refused;
// - the ring holds one utterance (at most `maxUtteranceS`, a forced endpoint) plus its pre-roll.
//
// Finals start early: once the VAD sees silence after speech, it knows where the utterance will end
// if the silence lasts (`tentativeEnd`), well before the end is confirmed (silence plus padding
// later). A speculative final is decoded then, over the audio up to that end that has arrived (the
// rest of the padding is near-silence, which the window's zero padding stands in for), queued below
// finals and above partials, and it becomes the final when the confirmed end matches (within the
// padding, which a close next utterance may share); speech that resumes withdraws it. This hides
// the encoder run, most of a final's cost on a CPU. Partials are not decoded while a speculation is
// out (it is a better partial, and the stream is silent).
//
// Partials fall due by audio time, not wall time: live audio arrives in real time, so that is every
// `partialIntervalMs` of wall time, and audio pushed faster than real time gives the same decisions
// on any machine.
import { SampleRing } from '../audio/ring-buffer.ts';
import { decodeWindow } from '../decoding/decode-window.ts';
import { detectLanguage } from '../decoding/language.ts';
import { resolveLanguage } from '../decoding/languages.ts';
import { encodePrompt } from '../decoding/sot.ts';
import type { Transcription } from '../decoding/segment.ts';
import { transcribeAll } from '../decoding/transcribe.ts';
import type { Whisper } from '../decoding/whisper.ts';
import type { ModelRunner } from '../engine/whisper-model.ts';
import { EarshotError, isEarshotError } from '../errors.ts';
import { LocalAgreement } from './local-agreement.ts';
import { VAD_SAMPLE_RATE, type SpeechEvent } from './speech-segments.ts';
import type { SileroVad } from './vad.ts';
import { VadEndpointer } from './vad-endpointer.ts';

const SR = VAD_SAMPLE_RATE;
/** Queue priorities: above file transcription (0); a final before any stream's partial. */
export const FINAL_PRIORITY = 20;
export const SPECULATIVE_PRIORITY = 15;
export const PARTIAL_PRIORITY = 10;
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
  /** Token budget of a final's 30 s window (default 224). */
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

export interface StreamObserver {
  /** Seconds from a detected endpoint to its final. */
  finalLatency?(seconds: number): void;
  /** Seconds between two partial updates of one utterance. */
  partialInterval?(seconds: number): void;
  partialDropped?(): void;
}

export interface FinalSegment {
  start: number;
  end: number;
  text: string;
}

/** What a session reports. Positions are seconds on the stream's time line (from its first sample). */
export type StreamEvent =
  | { type: 'speech_started'; item: number; start: number }
  | { type: 'partial'; item: number; delta: string; committed: string; tentative: string }
  | { type: 'speech_stopped'; item: number; end: number; forced: boolean }
  | { type: 'final'; item: number; text: string; start: number; end: number; language: string; segments: FinalSegment[] }
  | { type: 'error'; item: number | null; error: EarshotError };

interface Utterance {
  item: number;
  /** Absolute sample where it starts. */
  start: number;
  /** Set once it has ended. */
  end: number | null;
  agreement: LocalAgreement;
  committedText: string;
  /** Utterance samples at which the next partial falls due. */
  nextPartialAt: number;
  lastPartialAt: number | null;
  language: string | undefined;
  /** Aborts its queued or running partial. */
  partial: AbortController | null;
  /** The final decoded early for a tentative end (see the header). */
  speculation: Speculation | null;
}

interface Speculation {
  end: number;
  abort: AbortController;
  result: Promise<Transcription>;
}

export interface StreamStats {
  partials: number;
  droppedPartials: number;
  finals: number;
  /** Finals that came from a speculative decode (see the header). */
  speculated: number;
}

function bad(code: string, message: string): EarshotError {
  return new EarshotError('invalid_argument', code, message);
}

function positive(name: string, v: number, max = Infinity): number {
  if (!(Number.isFinite(v) && v > 0 && v <= max)) throw bad('bad_stream_option', `${name} must be a number in (0, ${max}], got ${v}`);
  return v;
}

export class StreamSession {
  private readonly w: Whisper;
  private readonly o: Required<Omit<StreamSessionOptions, 'language' | 'prompt' | 'observer' | 'onClose'>>;
  private readonly observer: StreamObserver;
  private readonly emit: (e: StreamEvent) => void;
  private readonly ring: SampleRing;
  private readonly endpointer: VadEndpointer | null;
  private readonly promptTokens: number[];
  private readonly prompt: string | undefined;
  private readonly language: string | undefined;
  private readonly partialRunner: ModelRunner;
  /** Serialises the feeding of audio (VAD order). */
  private feed: Promise<void> = Promise.resolve();
  /** Finals are emitted in item order. */
  private finals: Promise<void> = Promise.resolve();
  private pendingFinals = 0;
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

  constructor(w: Whisper, vad: SileroVad, emit: (e: StreamEvent) => void, options: StreamSessionOptions = {}) {
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
      sampleLen: options.sampleLen ?? 224,
      partialSampleLen: options.partialSampleLen ?? options.sampleLen ?? 224,
      now: options.now ?? (() => performance.now()),
    };
    if (!(o.prefixPaddingMs >= 0 && o.prefixPaddingMs <= 2000)) {
      throw bad('bad_stream_option', `prefix padding must be 0 to 2000 ms, got ${o.prefixPaddingMs}`);
    }
    this.o = o;
    const requested = options.language?.trim().toLowerCase();
    if (requested && requested !== 'auto') {
      const code = resolveLanguage(requested);
      if (!w.tokenizer.isMultilingual && code !== 'en') {
        throw bad('unsupported_language', `this model is English-only; it cannot transcribe "${options.language}"`);
      }
      this.language = code;
    } else if (!w.tokenizer.isMultilingual) {
      this.language = 'en';
    }
    this.prompt = options.prompt || undefined;
    this.promptTokens = this.prompt ? encodePrompt(w.tokenizer, this.prompt) : [];
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
    this.partialRunner = w.runner.withPriority?.(PARTIAL_PRIORITY) ?? w.runner;
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
        this.withdraw(u);
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
    if (this.ended) return this.finals;
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
    await this.finals;
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
    if (u.speculation && !this.fits(u.speculation, end)) this.withdraw(u);
    this.bufferStart = end;
    this.send({ type: 'speech_stopped', item: u.item, end: end / SR, forced });
    this.queueFinal(u, end);
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
    const u: Utterance = {
      item: this.nextItem++,
      start: Math.max(start, this.ring.oldest),
      end: null,
      agreement: new LocalAgreement((t) => this.w.tokenizer.decode(t)),
      committedText: '',
      nextPartialAt: Math.round((this.o.partialIntervalMs * SR) / 1000),
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
    const have = this.ring.written - u.start;
    if (have < u.nextPartialAt) return;
    const interval = Math.round((this.o.partialIntervalMs * SR) / 1000);
    u.nextPartialAt = have + interval;
    if (u.speculation) return; // silence: the speculative final stands in for the partial
    if (u.partial || this.pendingFinals > 0) {
      this.counts.droppedPartials++;
      this.observer.partialDropped?.();
      return;
    }
    const ac = new AbortController();
    u.partial = ac;
    const signal = AbortSignal.any([ac.signal, this.aborter.signal]);
    const samples = this.ring.read(u.start, this.ring.written);
    this.w.queue
      .run(() => this.decodePartial(u, samples, signal), { priority: PARTIAL_PRIORITY, signal })
      .then(
        (tokens) => this.applyPartial(u, tokens),
        (e: unknown) => {
          if (signal.aborted) return;
          if (isEarshotError(e) && e.kind === 'overloaded') {
            this.counts.droppedPartials++;
            this.observer.partialDropped?.();
          } else this.fail(u.item, e);
        },
      )
      .finally(() => {
        if (u.partial === ac) u.partial = null;
      });
  }

  private async decodePartial(u: Utterance, samples: Float32Array, signal: AbortSignal): Promise<number[] | null> {
    signal.throwIfAborted();
    const runner = this.partialRunner;
    const encoded = await runner.encode(this.w.features.window(samples), 1);
    try {
      signal.throwIfAborted();
      if (u.language === undefined) u.language = (await detectLanguage(runner, this.w.tokenizer, encoded)).language;
      signal.throwIfAborted();
      const r = await decodeWindow(runner, this.w.tokenizer, encoded, {
        withoutTimestamps: true,
        sampleLen: this.o.partialSampleLen,
        prompt: this.promptTokens,
        language: u.language,
        signal,
      });
      return signal.aborted ? null : r.tokens;
    } finally {
      runner.finish?.(encoded);
    }
  }

  private applyPartial(u: Utterance, tokens: number[] | null): void {
    if (tokens === null || u.end !== null || this.utterance !== u || this.aborter.signal.aborted) return;
    const tok = this.w.tokenizer;
    const a = u.agreement.update(tokens);
    const committed = tok.decode(a.committed);
    const delta = committed.startsWith(u.committedText) ? committed.slice(u.committedText.length) : tok.decode(a.newlyCommitted);
    u.committedText = committed;
    const full = tok.decode([...a.committed, ...a.tentative]);
    const tentative = full.startsWith(committed) ? full.slice(committed.length) : tok.decode(a.tentative);
    const now = this.o.now();
    if (u.lastPartialAt !== null) this.observer.partialInterval?.((now - u.lastPartialAt) / 1000);
    u.lastPartialAt = now;
    this.counts.partials++;
    this.send({ type: 'partial', item: u.item, delta, committed, tentative });
  }

  /** Starts, keeps or withdraws the open utterance's speculative final as the VAD's tentative end moves. */
  private speculate(): void {
    const u = this.utterance;
    const end = this.endpointer?.tentativeEnd ?? null;
    if (!u || this.flushing) return;
    if (end === null || end - u.start < SR / 10) {
      this.withdraw(u);
      return;
    }
    if (u.speculation?.end === end) return;
    this.withdraw(u);
    // A partial now would only delay the speculation (and the stream is silent): stop it.
    u.partial?.abort();
    const abort = new AbortController();
    const signal = AbortSignal.any([abort.signal, this.aborter.signal]);
    const samples = this.ring.read(u.start, Math.min(end, this.ring.written));
    const result = this.w.queue.run(() => this.finalJob(u, samples, SPECULATIVE_PRIORITY), { priority: SPECULATIVE_PRIORITY, signal });
    result.catch(() => undefined); // a withdrawn or refused speculation is replaced by a fresh final
    u.speculation = { end, abort, result };
  }

  /**
   * Whether a speculation serves as the final of an utterance ending at `end`: the same silence, give
   * or take the padding a close next utterance took (the speculation then holds a little more of it).
   */
  private fits(s: Speculation, end: number): boolean {
    return Math.abs(s.end - end) <= (this.o.prefixPaddingMs * SR) / 1000;
  }

  private withdraw(u: Utterance): void {
    u.speculation?.abort.abort();
    u.speculation = null;
  }

  private queueFinal(u: Utterance, end: number): void {
    const endpointAt = this.o.now();
    const samples = this.ring.read(u.start, end);
    this.pendingFinals++;
    // endUtterance has withdrawn a speculation for another end: what is left serves this one.
    const early = u.speculation?.result ?? null;
    u.speculation = null;
    const result = early
      ? early.then(
          (t) => {
            this.counts.speculated++;
            return t;
          },
          () => this.decodeFinal(u, samples),
        )
      : this.decodeFinal(u, samples);
    this.finals = this.finals.then(async () => {
      try {
        const t = await result;
        const offset = u.start / SR;
        const segments = t.segments
          .filter((s) => s.text !== '')
          .map((s) => ({ start: round(s.start + offset), end: round(s.end + offset), text: s.text }));
        this.counts.finals++;
        this.observer.finalLatency?.((this.o.now() - endpointAt) / 1000);
        this.send({ type: 'final', item: u.item, text: t.text.trim(), start: round(offset), end: round(end / SR), language: t.language, segments });
      } catch (e) {
        this.fail(u.item, e);
      } finally {
        this.pendingFinals--;
      }
    });
  }

  /** A final always gets its turn: a full queue is retried (streams outrank files, so it drains first). */
  private async decodeFinal(u: Utterance, samples: Float32Array) {
    const signal = this.aborter.signal;
    const job = () => this.finalJob(u, samples, FINAL_PRIORITY);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.w.queue.run(job, { priority: FINAL_PRIORITY, signal });
      } catch (e) {
        if (!(isEarshotError(e) && e.kind === 'overloaded') || attempt >= 50) throw e;
        await new Promise((r) => setTimeout(r, 100));
        signal.throwIfAborted();
      }
    }
  }

  /** The final decode of `samples` (one utterance). */
  private finalJob(u: Utterance, samples: Float32Array, priority: number): Promise<Transcription> {
    return transcribeAll(this.w, samples, {
      priority,
      ...(u.language !== undefined ? { language: u.language } : {}),
      // One temperature: a stream cannot wait for the fallback ladder's re-decodes.
      temperature: 0,
      sampleLen: this.o.sampleLen,
      ...(this.prompt !== undefined ? { initialPrompt: this.prompt } : {}),
    });
  }
}

const round = (s: number): number => Math.round(s * 1000) / 1000;
