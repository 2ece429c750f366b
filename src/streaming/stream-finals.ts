// A stream's finals: each ended utterance is decoded with timestamps (at final priority, one
// temperature) and reported in item order, with segment times on the stream's time line.
//
// A final is one window, decoded here rather than by decoding/transcribe.ts, because it must begin
// with the utterance's committed text (the invariant: stream-partials.ts's header): the committed
// tokens are forced after the first timestamp, the text keeps every token (final-text.ts), and a
// final with committed text is never discarded as silence. It is the window the partials decoded
// (the utterance's incremental mel, read at its end), so an utterance is at most 30 s (the session's maxUtteranceS);
// audio past 30 s, at most the VAD's end padding, is cut. Its token budget follows its audio
// (token-budget.ts).
//
// Finals start early: once the VAD sees silence after speech, it knows where the utterance will end
// if the silence lasts (`tentativeEnd`), well before the end is confirmed (silence plus padding
// later). A speculative final is decoded then, over the audio up to that end that has arrived (the
// rest of the padding is near-silence, which the window's zero padding stands in for), queued below
// finals and above partials, and it becomes the final when the confirmed end matches (within the
// padding, which a close next utterance may share); speech that resumes withdraws it. This hides
// the encoder run, most of a final's cost on a CPU.
import { decodeWindow } from '../decoding/decode-window.ts';
import { detectLanguage } from '../decoding/detect-language.ts';
import type { ModelRunner } from '../engine/model-types.ts';
import { STREAM_FINAL, STREAM_SPECULATION } from '../engine/priority.ts';
import { isEarshotError } from '../errors.ts';
import { VAD_SAMPLE_RATE as SR } from '../vad/speech-segments.ts';
import { finalText } from './final-text.ts';
import { tokenBudget } from './token-budget.ts';
import type { FinalResult, SessionParts, Speculation, StreamModel, Utterance } from './stream-types.ts';

/** openai/whisper's defaults: a window more likely silence than speech, decoded unsurely, is dropped. */
const NO_SPEECH_THRESHOLD = 0.6;
const LOGPROB_THRESHOLD = -1;

export interface FinalOptions {
  sampleLen: number;
  promptTokens: readonly number[];
  /** The VAD's padding, ms: how far a speculation's end may be from the confirmed one. */
  paddingMs: number;
}

export class Finals {
  /** Finals are emitted in item order. */
  private chain: Promise<void> = Promise.resolve();
  private pendingCount = 0;

  constructor(
    private readonly w: StreamModel,
    private readonly session: SessionParts,
    private readonly o: FinalOptions,
  ) {}

  /** Finals queued and not yet emitted. */
  get pending(): number {
    return this.pendingCount;
  }

  /** Settles once every final queued so far has been emitted. */
  get settled(): Promise<void> {
    return this.chain;
  }

  /**
   * The open utterance `u` may end at `end` (the VAD's tentative end; null: not now): starts, keeps
   * or withdraws its speculative final. `arrived(end)` says how many of the utterance's samples up
   * to that end have arrived.
   */
  speculate(u: Utterance, end: number | null, arrived: (end: number) => number): void {
    if (end === null || end - u.start < SR / 10) {
      this.withdraw(u);
      return;
    }
    if (u.speculation?.end === end) return;
    this.withdraw(u);
    // A partial now would only delay the speculation (and the stream is silent): stop it.
    u.partial?.abort();
    const abort = new AbortController();
    const signal = AbortSignal.any([abort.signal, this.session.signal]);
    const length = arrived(end);
    // The partials stop while it is out (stream-partials.ts), so these stay the committed tokens.
    const prefix = [...u.agreement.committed];
    const result = this.w.queue.run((runner) => this.decode(runner, u, length, prefix, signal), { priority: STREAM_SPECULATION, signal });
    result.catch(() => undefined); // a withdrawn or refused speculation is replaced by a fresh final
    u.speculation = { end, abort, result, prefix: prefix.length };
  }

  /**
   * Whether a speculation serves as the final of an utterance ending at `end`: the same silence, give
   * or take the padding a close next utterance took (the speculation then holds a little more of it).
   */
  fits(s: Speculation, end: number): boolean {
    return Math.abs(s.end - end) <= (this.o.paddingMs * SR) / 1000;
  }

  withdraw(u: Utterance): void {
    u.speculation?.abort.abort();
    u.speculation = null;
  }

  /** `u` ended at `end`, `length` samples after its start: its final is decoded (or taken from its speculation) and emitted in turn. */
  queue(u: Utterance, end: number, length: number): void {
    const endpointAt = this.session.now();
    this.pendingCount++;
    // The session has withdrawn a speculation for another end: what is left serves this one, if it
    // began with today's committed tokens.
    const prefix = [...u.agreement.committed];
    const early = u.speculation?.prefix === prefix.length ? u.speculation.result : null;
    u.speculation = null;
    const counts = this.session.counts;
    const result = early
      ? early.then(
          (t) => {
            counts.speculated++;
            return t;
          },
          () => this.decodeFinal(u, length, prefix),
        )
      : this.decodeFinal(u, length, prefix);
    this.chain = this.chain.then(async () => {
      try {
        const t = await result;
        const offset = u.start / SR;
        const segments = t.segments.map((s) => ({ start: round(s.start + offset), end: round(s.end + offset), text: s.text }));
        counts.finals++;
        this.session.observer.finalLatency?.((this.session.now() - endpointAt) / 1000);
        this.session.send({ type: 'final', item: u.item, text: t.text, start: round(offset), end: round(end / SR), language: t.language, segments });
      } catch (e) {
        this.session.fail(u.item, e);
      } finally {
        this.pendingCount--;
      }
    });
  }

  /** A final always gets its turn: a full queue is retried (streams outrank files, so it drains first). */
  private async decodeFinal(u: Utterance, length: number, prefix: readonly number[]): Promise<FinalResult> {
    const signal = this.session.signal;
    const job = (runner: ModelRunner) => this.decode(runner, u, length, prefix, signal);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.w.queue.run(job, { priority: STREAM_FINAL, signal });
      } catch (e) {
        if (!(isEarshotError(e) && e.kind === 'overloaded') || attempt >= 50) throw e;
        await new Promise((r) => setTimeout(r, 100));
        signal.throwIfAborted();
      }
    }
  }

  /**
   * The final decode of the utterance's first `length` samples, on `runner` (at the queue ticket's priority), its
   * text beginning with the committed tokens `prefix`; `signal` stops it between steps. One temperature: a stream cannot wait for the
   * fallback ladder's re-decodes.
   */
  private async decode(runner: ModelRunner, u: Utterance, length: number, prefix: readonly number[], signal: AbortSignal): Promise<FinalResult> {
    const tok = this.w.tokenizer;
    const encoded = await runner.encode(u.mel.window(length), 1);
    try {
      const language = u.language ?? (await detectLanguage(runner, tok, encoded)).language;
      const r = await decodeWindow(runner, tok, encoded, {
        language,
        temperature: 0,
        // The budget follows the audio (token-budget.ts) and holds the prefix and the first timestamp too.
        sampleLen: Math.max(1, tokenBudget(length, this.o.sampleLen, true) - prefix.length - 1),
        prompt: this.o.promptTokens,
        prefix,
        signal,
      });
      if (prefix.length === 0 && r.noSpeechProb > NO_SPEECH_THRESHOLD && r.avgLogprob < LOGPROB_THRESHOLD) return { text: '', segments: [], language };
      return { ...finalText(tok, r.tokens, Math.min(length / SR, 30)), language };
    } finally {
      runner.finish?.(encoded);
    }
  }
}

const round = (s: number): number => Math.round(s * 1000) / 1000;
