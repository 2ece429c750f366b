// A stream's finals: each ended utterance is decoded with timestamps (at final priority, one
// temperature) and reported in item order, with segment times on the stream's time line.
//
// Finals start early: once the VAD sees silence after speech, it knows where the utterance will end
// if the silence lasts (`tentativeEnd`), well before the end is confirmed (silence plus padding
// later). A speculative final is decoded then, over the audio up to that end that has arrived (the
// rest of the padding is near-silence, which the window's zero padding stands in for), queued below
// finals and above partials, and it becomes the final when the confirmed end matches (within the
// padding, which a close next utterance may share); speech that resumes withdraws it. This hides
// the encoder run, most of a final's cost on a CPU.
import type { Transcription } from '../decoding/transcription.ts';
import { transcribeAll } from '../decoding/transcribe.ts';
import type { ModelRunner } from '../engine/whisper-model.ts';
import { STREAM_FINAL, STREAM_SPECULATION } from '../engine/priority.ts';
import { isEarshotError } from '../errors.ts';
import { VAD_SAMPLE_RATE as SR } from '../vad/speech-segments.ts';
import type { SessionParts, Speculation, StreamModel, Utterance } from './stream-types.ts';


export interface FinalOptions {
  sampleLen: number;
  prompt: string | undefined;
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
   * or withdraws its speculative final. `read(end)` gives the audio up to that end that has arrived.
   */
  speculate(u: Utterance, end: number | null, read: (end: number) => Float32Array): void {
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
    const samples = read(end);
    const result = this.w.queue.run((runner) => this.decode(runner, u, samples), { priority: STREAM_SPECULATION, signal });
    result.catch(() => undefined); // a withdrawn or refused speculation is replaced by a fresh final
    u.speculation = { end, abort, result };
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

  /** `u` ended at `end` with these `samples`: its final is decoded (or taken from its speculation) and emitted in turn. */
  queue(u: Utterance, end: number, samples: Float32Array): void {
    const endpointAt = this.session.now();
    this.pendingCount++;
    // The session has withdrawn a speculation for another end: what is left serves this one.
    const early = u.speculation?.result ?? null;
    u.speculation = null;
    const counts = this.session.counts;
    const result = early
      ? early.then(
          (t) => {
            counts.speculated++;
            return t;
          },
          () => this.decodeFinal(u, samples),
        )
      : this.decodeFinal(u, samples);
    this.chain = this.chain.then(async () => {
      try {
        const t = await result;
        const offset = u.start / SR;
        const segments = t.segments
          .filter((s) => s.text !== '')
          .map((s) => ({ start: round(s.start + offset), end: round(s.end + offset), text: s.text }));
        counts.finals++;
        this.session.observer.finalLatency?.((this.session.now() - endpointAt) / 1000);
        this.session.send({ type: 'final', item: u.item, text: t.text.trim(), start: round(offset), end: round(end / SR), language: t.language, segments });
      } catch (e) {
        this.session.fail(u.item, e);
      } finally {
        this.pendingCount--;
      }
    });
  }

  /** A final always gets its turn: a full queue is retried (streams outrank files, so it drains first). */
  private async decodeFinal(u: Utterance, samples: Float32Array): Promise<Transcription> {
    const signal = this.session.signal;
    const job = (runner: ModelRunner) => this.decode(runner, u, samples);
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

  /** The final decode of `samples` (one utterance), on `runner` (at the queue ticket's priority). */
  private decode(runner: ModelRunner, u: Utterance, samples: Float32Array): Promise<Transcription> {
    return transcribeAll({ ...this.w, runner }, samples, {
      ...(u.language !== undefined ? { language: u.language } : {}),
      // One temperature: a stream cannot wait for the fallback ladder's re-decodes.
      temperature: 0,
      sampleLen: this.o.sampleLen,
      ...(this.o.prompt !== undefined ? { initialPrompt: this.o.prompt } : {}),
    });
  }
}

const round = (s: number): number => Math.round(s * 1000) / 1000;
