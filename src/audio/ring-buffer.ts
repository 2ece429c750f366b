// A fixed-capacity ring of audio samples addressed by absolute position (samples since the stream
// began), so a stream can keep the current utterance plus some pre-roll without ever growing: old
// audio falls off the back as new audio arrives.

export class SampleRing {
  private readonly buf: Float32Array;
  /** Absolute index one past the newest sample. */
  private end = 0;

  constructor(readonly capacity: number) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.buf = new Float32Array(capacity);
  }

  /** Absolute index one past the newest sample: the total number of samples ever pushed. */
  get written(): number {
    return this.end;
  }

  /** Absolute index of the oldest sample still held. */
  get oldest(): number {
    return Math.max(0, this.end - this.capacity);
  }

  push(samples: Float32Array): void {
    let src = samples;
    if (src.length > this.capacity) src = src.subarray(src.length - this.capacity);
    const skipped = samples.length - src.length;
    const start = (this.end + skipped) % this.capacity;
    const first = Math.min(src.length, this.capacity - start);
    this.buf.set(src.subarray(0, first), start);
    if (first < src.length) this.buf.set(src.subarray(first), 0);
    this.end += samples.length;
  }

  /** A copy of samples [from, to) in absolute positions; throws if that range is no longer (or not yet) held. */
  read(from: number, to: number = this.end): Float32Array {
    if (from < this.oldest || to > this.end || from > to) {
      throw new RangeError(`samples [${from}, ${to}) are not held (have [${this.oldest}, ${this.end}))`);
    }
    const out = new Float32Array(to - from);
    const start = from % this.capacity;
    const first = Math.min(out.length, this.capacity - start);
    out.set(this.buf.subarray(start, start + first));
    if (first < out.length) out.set(this.buf.subarray(0, out.length - first), first);
    return out;
  }
}
