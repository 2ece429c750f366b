// A stream's partial hypotheses: while an utterance is open, its audio so far is re-decoded every
// `partialIntervalMs` of new audio (without timestamps, at partial priority) and stabilised with
// LocalAgreement, so the committed text only grows.
//
// Load rules, so that latency never grows without bound: a stream never has two partials queued or
// running: a partial that falls due meanwhile is dropped (and counted), as is one due while an
// earlier utterance's final is still pending, and a queued partial whose utterance has ended is
// withdrawn (its abort). Partials are not decoded while a speculative final is out (it is a better
// partial, and the stream is silent). Partials fall due by audio time, not wall time: live audio
// arrives in real time, so that is every `partialIntervalMs` of wall time, and audio pushed faster
// than real time gives the same decisions on any machine.
import { decodeWindow } from '../decoding/decode-window.ts';
import { detectLanguage } from '../decoding/detect-language.ts';
import type { ModelRunner } from '../engine/whisper-model.ts';
import { STREAM_PARTIAL } from '../engine/priority.ts';
import { isEarshotError } from '../errors.ts';
import { VAD_SAMPLE_RATE as SR } from '../vad/speech-segments.ts';
import type { SessionParts, StreamModel, Utterance } from './stream-types.ts';


export interface PartialOptions {
  intervalMs: number;
  sampleLen: number;
  promptTokens: readonly number[];
}

export class Partials {
  private readonly interval: number;

  constructor(
    private readonly w: StreamModel,
    private readonly session: SessionParts,
    private readonly o: PartialOptions,
    /** The session's open utterance: a partial for any other is stale. */
    private readonly current: () => Utterance | null,
  ) {
    this.interval = Math.round((o.intervalMs * SR) / 1000);
  }

  /** Samples of utterance audio at which an utterance's first partial falls due. */
  get firstAt(): number {
    return this.interval;
  }

  /**
   * `u` has grown to `have` samples (`read` gives them): decodes a partial if one falls due and may
   * run; `busy` (a final pending) drops it instead.
   */
  maybe(u: Utterance, have: number, read: () => Float32Array, busy: boolean): void {
    if (have < u.nextPartialAt) return;
    u.nextPartialAt = have + this.interval;
    if (u.speculation) return; // silence: the speculative final stands in for the partial
    if (u.partial || busy) {
      this.dropped();
      return;
    }
    const ac = new AbortController();
    u.partial = ac;
    const signal = AbortSignal.any([ac.signal, this.session.signal]);
    const samples = read();
    this.w.queue
      .run((runner) => this.decode(runner, u, samples, signal), { priority: STREAM_PARTIAL, signal })
      .then(
        (tokens) => this.apply(u, tokens),
        (e: unknown) => {
          if (signal.aborted) return;
          if (isEarshotError(e) && e.kind === 'overloaded') this.dropped();
          else this.session.fail(u.item, e);
        },
      )
      .finally(() => {
        if (u.partial === ac) u.partial = null;
      });
  }

  private dropped(): void {
    this.session.counts.droppedPartials++;
    this.session.observer.partialDropped?.();
  }

  /** One partial decode on `runner` (at the queue ticket's priority). */
  private async decode(runner: ModelRunner, u: Utterance, samples: Float32Array, signal: AbortSignal): Promise<number[] | null> {
    signal.throwIfAborted();
    const encoded = await runner.encode(this.w.features.window(samples), 1);
    try {
      signal.throwIfAborted();
      if (u.language === undefined) u.language = (await detectLanguage(runner, this.w.tokenizer, encoded)).language;
      signal.throwIfAborted();
      const r = await decodeWindow(runner, this.w.tokenizer, encoded, {
        withoutTimestamps: true,
        sampleLen: this.o.sampleLen,
        prompt: this.o.promptTokens,
        language: u.language,
        signal,
      });
      return signal.aborted ? null : r.tokens;
    } finally {
      runner.finish?.(encoded);
    }
  }

  private apply(u: Utterance, tokens: number[] | null): void {
    // An utterance that ended (or was cleared) meanwhile takes no more partials.
    if (tokens === null || u.end !== null || this.current() !== u || this.session.signal.aborted) return;
    const tok = this.w.tokenizer;
    const a = u.agreement.update(tokens);
    const committed = tok.decode(a.committed);
    const delta = committed.startsWith(u.committedText) ? committed.slice(u.committedText.length) : tok.decode(a.newlyCommitted);
    u.committedText = committed;
    const full = tok.decode([...a.committed, ...a.tentative]);
    const tentative = full.startsWith(committed) ? full.slice(committed.length) : tok.decode(a.tentative);
    const now = this.session.now();
    if (u.lastPartialAt !== null) this.session.observer.partialInterval?.((now - u.lastPartialAt) / 1000);
    u.lastPartialAt = now;
    this.session.counts.partials++;
    this.session.send({ type: 'partial', item: u.item, delta, committed, tentative });
  }
}
