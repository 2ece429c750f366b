// LocalAgreement-2 (Macháček et al., "Turning Whisper into Real-Time Transcription System"): a
// streaming hypothesis is re-decoded as audio grows, and only the prefix that two consecutive
// hypotheses agree on is committed. Committed text never changes; the rest is shown as tentative.
// It works on token ids, so it needs no word splitting (Chinese and Japanese have no spaces); a
// commit point that would cut a multi-byte character in half is moved back to a whole character.

export interface Agreement {
  /** Tokens committed by this update (possibly none). */
  newlyCommitted: number[];
  /** Every committed token so far. */
  committed: readonly number[];
  /** The latest hypothesis past the committed prefix: may still change. */
  tentative: number[];
}

export class LocalAgreement {
  private readonly decode: (tokens: readonly number[]) => string;
  private committedTokens: number[] = [];
  private previous: number[] | null = null;

  constructor(decode: (tokens: readonly number[]) => string) {
    this.decode = decode;
  }

  get committed(): readonly number[] {
    return this.committedTokens;
  }

  /** Takes the latest full hypothesis for the current utterance (its tokens from the start). */
  update(hypothesis: readonly number[]): Agreement {
    const c = this.committedTokens.length;
    const agreesWithCommitted = this.committedTokens.every((t, i) => hypothesis[i] === t);
    let newlyCommitted: number[] = [];
    if (agreesWithCommitted && this.previous) {
      let n = c;
      while (n < hypothesis.length && n < this.previous.length && hypothesis[n] === this.previous[n]) n++;
      // Back off while the text of the new part ends inside a multi-byte character.
      while (n > c && this.decode(hypothesis.slice(c, n)).endsWith('\uFFFD')) n--;
      newlyCommitted = hypothesis.slice(c, n);
      this.committedTokens = this.committedTokens.concat(newlyCommitted);
    }
    // A hypothesis that contradicts committed text is no evidence for the next one to agree with.
    this.previous = agreesWithCommitted ? [...hypothesis] : null;
    // A hypothesis that contradicts committed text keeps the committed text and offers its own tail.
    const tail = agreesWithCommitted ? hypothesis.slice(this.committedTokens.length) : [];
    return { newlyCommitted, committed: this.committedTokens, tentative: tail };
  }

  /** Starts a new utterance. */
  reset(): void {
    this.committedTokens = [];
    this.previous = null;
  }
}
