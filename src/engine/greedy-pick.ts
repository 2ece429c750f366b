// Greedy decoding's choice of the next token, made in the model's thread instead of by the caller:
// the caller describes which logits its filters mask (a LogitMask), this file masks the output rows
// in place and reduces every row of the batch in one small onnxruntime run (max, argmax and sum of
// exp over the whole row and over the timestamp tokens, which is what Whisper's timestamp rule
// compares), and only a token and its log-probability go back per row.
// Why: with a batch of 16, filtering 16 rows of 51,865 logits one after another in JavaScript on the
// main thread, plus sending them there, left the model idle about a third of every decoder step.
// onnxruntime's vectorised Exp does in 0.7 ms what took ~15 ms in JavaScript, and the rows never
// leave the model's thread.
// Sampling and beam search still take whole rows of logits: they need more than the best token.
import './telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import ort from 'onnxruntime-node';
import { GraphBuilder } from './onnx-graph.ts';

/** The logits a row's filters mask before its token is chosen (decoding/logit-filters.ts builds it). */
export interface LogitMask {
  /** Token ids set to -Infinity. */
  readonly ids: readonly number[];
  /** Id ranges [from, to) set to -Infinity; `to` may be Infinity (the rest of the row). */
  readonly ranges: readonly (readonly [number, number])[];
  /**
   * Whisper's timestamp rule, applied after the masks when set: if the timestamp tokens (ids from
   * this one on) together outweigh the best text token, logsumexp over them above the largest text
   * logit, every text token is masked too.
   */
  readonly timestampBegin?: number;
}

/** A row's greedy choice: the best token under its mask, and its log-probability (log_softmax). */
export interface Pick {
  token: number;
  logprob: number;
}

/** Sets the masked ids and ranges of `row` to -Infinity (not the data-dependent timestamp rule). */
export function maskRow(row: Float32Array, mask: LogitMask): void {
  for (const id of mask.ids) row[id] = -Infinity;
  for (const [from, to] of mask.ranges) row.fill(-Infinity, from, to);
}

/** Per row: the max, its index and sum(exp(logit - max)), over the whole row and over ids [split, vocab). */
interface RowStats {
  max: Float32Array;
  arg: BigInt64Array;
  sum: Float32Array;
  maxTs: Float32Array;
  argTs: BigInt64Array;
  sumTs: Float32Array;
}

const OUTPUTS = ['max', 'arg', 'sum', 'maxTs', 'argTs', 'sumTs'] as const;

/**
 * The reduction graph for timestamp tokens from `split`: rows [batch, vocab] in, six [batch]
 * vectors out. The sums are Exp then ReduceSum because onnxruntime vectorises Exp and not
 * ReduceLogSumExp (0.7 ms against 5.6 ms for 16 rows on one core).
 */
function statsGraph(vocab: number, split: number): Uint8Array {
  const g = new GraphBuilder('earshot_greedy_pick');
  addStats(g, g.input('logits', 'float', ['batch', vocab]), vocab, split);
  return g.toBytes('earshot');
}

/** The six row statistics of `rows` ([batch, vocab]) as outputs of `g` (device-pick.ts reuses it). */
export function addStats(g: GraphBuilder, rows: string, vocab: number, split: number): void {
  const ts = g.op1('Slice', [rows, g.int64([split]), g.int64([vocab]), g.int64([1])]);
  const reduce = (part: string, [max, arg, sum]: readonly string[]) => {
    const m = g.op1('ReduceMax', [part], { axes: { ints: [1] }, keepdims: { i: 1 } });
    g.output(g.op1('Squeeze', [m, g.int64([1])]), max!, 'float', ['batch']);
    g.output(g.op1('ArgMax', [part], { axis: { i: 1 }, keepdims: { i: 0 } }), arg!, 'int64', ['batch']);
    const exp = g.op1('Exp', [g.op1('Sub', [part, m])]);
    g.output(g.op1('ReduceSum', [exp, g.int64([1])], { keepdims: { i: 0 } }), sum!, 'float', ['batch']);
  };
  reduce(rows, OUTPUTS.slice(0, 3));
  reduce(ts, OUTPUTS.slice(3));
}

/** The rows' first timestamp token (the stats' split), checked. */
export function splitOf(masks: readonly (LogitMask | null)[], vocab: number): number {
  // Any split gives the whole row's figures once the two parts are combined; the timestamp rule
  // needs it at the first timestamp token.
  const split = masks.find((m) => m?.timestampBegin !== undefined)?.timestampBegin ?? vocab >> 1;
  for (const m of masks) {
    const ts = m?.timestampBegin;
    if (ts !== undefined && ts !== split) throw new RangeError(`rows of one batch disagree on the first timestamp token (${ts}, ${split})`);
  }
  if (!(split > 0 && split < vocab)) throw new RangeError(`timestamp tokens from ${split} are outside the vocabulary 0..${vocab - 1}`);
  return split;
}

/** Each masked row's pick from the stats graph's outputs (null for rows without a mask). */
export function picksFrom(out: Record<string, ort.Tensor>, masks: readonly (LogitMask | null)[], split: number): (Pick | null)[] {
  const s = Object.fromEntries(OUTPUTS.map((k) => [k, out[k]!.data])) as unknown as RowStats;
  // A part whose logits are all masked has no logsumexp (onnxruntime gives NaN: -inf minus -inf).
  const lse = (max: number, sum: number) => (max === -Infinity ? -Infinity : max + Math.log(sum));
  return masks.map((m, r) => {
    if (!m) return null;
    const max = s.max[r]!;
    const token = Number(s.arg[r]!);
    if (m.timestampBegin !== undefined) {
      // The rule compares the timestamps' logsumexp with the best text logit, which is the row's
      // max unless a timestamp holds it (then the timestamps win anyway: their logsumexp is at
      // least their max, which beats every text logit, ties going to the lower, text, id).
      const lseTs = lse(s.maxTs[r]!, s.sumTs[r]!);
      if (token >= split || lseTs > max) return { token: split + Number(s.argTs[r]!), logprob: s.maxTs[r]! - lseTs };
    }
    return { token, logprob: max - lse(max, s.sum[r]!) };
  });
}

/**
 * Chooses greedily for rows of logits laid out [batch, vocab]. One session per split point (the
 * model's first timestamp token; in practice one per model), made on first use.
 */
export class GreedyPicker {
  private readonly sessions = new Map<number, Promise<ort.InferenceSession>>();

  constructor(
    private readonly vocab: number,
    private readonly options: ort.InferenceSession.SessionOptions,
  ) {}

  /**
   * Masks the rows that have a mask (in place) and picks their tokens; rows whose mask is null are
   * left alone and get null.
   */
  async pick(logits: Float32Array, masks: readonly (LogitMask | null)[]): Promise<(Pick | null)[]> {
    const vocab = this.vocab;
    const batch = masks.length;
    if (logits.length !== batch * vocab) throw new RangeError(`${logits.length} logits are not ${batch} row(s) of ${vocab}`);
    masks.forEach((m, r) => m && maskRow(logits.subarray(r * vocab, (r + 1) * vocab), m));
    const split = splitOf(masks, vocab);
    const session = await this.session(split);
    const out = await session.run({ logits: new ort.Tensor('float32', logits, [batch, vocab]) });
    return picksFrom(out, masks, split);
  }

  async release(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(sessions.map(async (s) => (await s).release()));
  }

  private session(split: number): Promise<ort.InferenceSession> {
    let s = this.sessions.get(split);
    if (!s) {
      s = ort.InferenceSession.create(statsGraph(this.vocab, split), this.options);
      this.sessions.set(split, s);
    }
    return s;
  }
}
