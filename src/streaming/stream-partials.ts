// A stream's partial hypotheses: while an utterance is open, its audio so far is re-decoded every
// `partialIntervalMs` of new audio (without timestamps, at partial priority) and stabilised with
// LocalAgreement, so the committed text only grows.
//
// The text invariant: for every turn, the concatenation of its deltas, and every committed text, is
// a prefix of its final's text. By construction: each partial is decoded with the committed tokens
// forced as its prefix, and so is the final (stream-finals.ts), so the final's tokens begin with the
// committed ones; the texts are trimmed (trim keeps prefixes: if a is a prefix of b, trim(a) is a
// prefix of trim(b)) and the committed tokens end on a whole character (local-agreement.ts), so
// the decoded text of a longer token list begins with that of a shorter one. A partial that comes
// back after a speculative final has started is not applied: the speculation was decoded with the
// committed tokens as they were when it began. Forcing the prefix also makes a partial cheaper: the
// committed tokens go through the decoder in one call instead of one step each.
//
// A partial's token budget follows its audio (token-budget.ts), so partials keep to their
// interval at default settings.
//
// Load rules, so that latency never grows without bound: a stream never has two partials queued or
// running: a partial that falls due meanwhile is dropped (and counted), as is one due while an
// earlier utterance's final is still pending, and a queued partial whose utterance has ended is
// withdrawn (its abort), and so is a running one when a final waits for the model (the work
// queue's `preempt`, engine/priority.ts). Partials are not decoded while a speculative final is out (it is a better
// partial, and the stream is silent). Partials fall due by audio time, not wall time: live audio
// arrives in real time, so that is every `partialIntervalMs` of wall time, and audio pushed faster
// than real time gives the same decisions on any machine.
import { decodeWindow } from '../decoding/decode-window.ts';
import { detectLanguage } from '../decoding/detect-language.ts';
import type { ModelRunner } from '../engine/model-types.ts';
import { STREAM_PARTIAL } from '../engine/priority.ts';
import { isEarshotError } from '../errors.ts';
import { VAD_SAMPLE_RATE as SR } from '../vad/speech-segments.ts';
import type { SessionParts, StreamModel, Utterance } from './stream-types.ts';
import { tokenBudget } from './token-budget.ts';

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
   * `u` has grown to `have` samples (its mel has them): decodes a partial of them if one falls due
   * and may run; `busy` (a final pending) drops it instead.
   */
  maybe(u: Utterance, have: number, busy: boolean): void {
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
    let preempted = false;
    // A final or speculation (any stream's) waiting for the model withdraws a running partial: late, it is worthless.
    const preempt = () => {
      preempted = true;
      ac.abort();
    };
    this.w.queue
      .run((runner) => this.decode(runner, u, have, signal), { priority: STREAM_PARTIAL, signal, preempt })
      .then(
        (tokens) => this.apply(u, tokens),
        (e: unknown) => {
          if (preempted) this.dropped();
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

  /** One partial decode of the utterance's first `length` samples on `runner` (at the queue ticket's priority). */
  private async decode(runner: ModelRunner, u: Utterance, length: number, signal: AbortSignal): Promise<number[] | null> {
    signal.throwIfAborted();
    const encoded = await runner.encode(u.mel.window(length), 1);
    try {
      signal.throwIfAborted();
      if (u.language === undefined) u.language = (await detectLanguage(runner, this.w.tokenizer, encoded)).language;
      signal.throwIfAborted();
      // They cannot change before this partial's own apply: a stream runs one partial at a time.
      const prefix = [...u.agreement.committed];
      const r = await decodeWindow(runner, this.w.tokenizer, encoded, {
        withoutTimestamps: true,
        sampleLen: Math.max(1, tokenBudget(length, this.o.sampleLen, false) - prefix.length),
        prompt: this.o.promptTokens,
        language: u.language,
        prefix,
        signal,
      });
      return signal.aborted ? null : r.tokens;
    } finally {
      runner.finish?.(encoded);
    }
  }

  private apply(u: Utterance, tokens: number[] | null): void {
    // An utterance that ended (or was cleared) meanwhile takes no more partials, nor one whose
    // speculative final has started (it holds the committed tokens as they were: see the header).
    if (tokens === null || u.end !== null || u.speculation !== null || this.current() !== u || this.session.signal.aborted) return;
    const tok = this.w.tokenizer;
    const a = u.agreement.update(tokens);
    const committed = tok.decode(a.committed).trim();
    if (!committed.startsWith(u.committedText)) {
      // Cannot happen (see the header); were it to, committed text must still never change.
      this.session.fail(u.item, new Error(`committed text changed: ${JSON.stringify(u.committedText)} became ${JSON.stringify(committed)}`));
      return;
    }
    const delta = committed.slice(u.committedText.length);
    u.committedText = committed;
    const full = tok.decode([...a.committed, ...a.tentative]).trim();
    const tentative = full.startsWith(committed) ? full.slice(committed.length) : '';
    const now = this.session.now();
    if (u.lastPartialAt !== null) this.session.observer.partialInterval?.((now - u.lastPartialAt) / 1000);
    u.lastPartialAt = now;
    this.session.counts.partials++;
    this.session.send({ type: 'partial', item: u.item, delta, committed, tentative });
  }
}
