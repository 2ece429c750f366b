// Greedy picks on the WebGPU device, where the decoder's logits stay (device-tensors.ts): the
// rows are masked and reduced there, and only the six [batch] statistics of greedy-pick.ts come
// back, not batch × vocab logits. The masks go up compactly: each row's masked ids as indices
// (padded with `vocab`, a column cut off after the scatter) and its masked ranges as [from, to)
// pairs (padded with empty ranges); the graph scatters the ids, compares the ranges against the
// token ids, and sets what they cover to -Infinity before greedy-pick.ts's reductions. float16
// logits (some fp16 files give them, see io-types.ts) are cast to float32 there first.
import './telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import ort from 'onnxruntime-node';
import { addStats, type LogitMask, type Pick, picksFrom, splitOf } from './greedy-pick.ts';
import type { FloatType } from './io-types.ts';
import { GraphBuilder } from './onnx-graph.ts';

type Tensor = ort.Tensor;

/** Masking and statistics of [batch, 1, vocab] logits (a cached step's) on the device. */
function devicePickGraph(vocab: number, split: number, type: FloatType): Uint8Array {
  const g = new GraphBuilder('earshot_device_pick');
  const logits = g.input('logits', type === 'float16' ? 'float16' : 'float', ['batch', 1, vocab]);
  const ids = g.input('ids', 'int64', ['batch', 'nIds']);
  const ranges = g.input('ranges', 'int64', ['batch', 'nRanges', 2]);
  const wide = type === 'float16' ? g.op1('Cast', [logits], { to: { i: 1 } }) : logits;
  const rows = g.op1('Squeeze', [wide, g.int64([1])]);
  // Ids: ones scattered into zeros of [batch, vocab + 1]; the padding lands in the last column.
  const zeros = g.op1('Expand', [g.float([0]), g.op1('Concat', [g.op1('Slice', [g.op1('Shape', [ids]), g.int64([0]), g.int64([1])]), g.int64([vocab + 1])], { axis: { i: 0 } })]);
  const ones = g.op1('Expand', [g.float([1]), g.op1('Shape', [ids])]);
  const scattered = g.op1('ScatterElements', [zeros, ids, ones], { axis: { i: 1 } });
  const byId = g.op1('Greater', [g.op1('Slice', [scattered, g.int64([0]), g.int64([vocab]), g.int64([1])]), g.float([0.5])]);
  // Ranges: token t is masked when from <= t < to for one of the row's ranges.
  const token = g.initializer('token_ids', 'int64', [vocab], BigInt64Array.from({ length: vocab }, (_, i) => BigInt(i)));
  const bound = (at: number) => g.op1('Slice', [ranges, g.int64([at]), g.int64([at + 1]), g.int64([2])]); // [batch, nRanges, 1]
  const inRange = g.op1('And', [g.op1('GreaterOrEqual', [token, bound(0)]), g.op1('Less', [token, bound(1)])]);
  const byRange = g.op1('Greater', [g.op1('ReduceMax', [g.op1('Cast', [inRange], { to: { i: 1 } })], { axes: { ints: [1] }, keepdims: { i: 0 } }), g.float([0.5])]);
  const masked = g.op1('Where', [g.op1('Or', [byId, byRange]), g.float([-Infinity]), rows]);
  addStats(g, masked, vocab, split);
  return g.toBytes('earshot');
}

/** The compact mask feeds of `masks` (every row has one). */
export function maskFeeds(masks: readonly LogitMask[], vocab: number): { ids: Tensor; ranges: Tensor } {
  const batch = masks.length;
  const nIds = Math.max(1, ...masks.map((m) => m.ids.length));
  const nRanges = Math.max(1, ...masks.map((m) => m.ranges.length));
  const ids = new BigInt64Array(batch * nIds).fill(BigInt(vocab));
  const ranges = new BigInt64Array(batch * nRanges * 2);
  masks.forEach((m, r) => {
    m.ids.forEach((id, i) => (ids[r * nIds + i] = BigInt(id)));
    m.ranges.forEach(([from, to], i) => {
      ranges[(r * nRanges + i) * 2] = BigInt(Math.max(0, Math.min(from, vocab)));
      ranges[(r * nRanges + i) * 2 + 1] = BigInt(Math.max(0, Math.min(to, vocab)));
    });
  });
  return { ids: new ort.Tensor('int64', ids, [batch, nIds]), ranges: new ort.Tensor('int64', ranges, [batch, nRanges, 2]) };
}

export type SessionRun = (session: ort.InferenceSession, feeds: Record<string, Tensor>) => Promise<Record<string, Tensor>>;

/** Greedy picks from a cached step's logits left on the device. One session per split point. */
export class DevicePicker {
  private readonly sessions = new Map<number, Promise<ort.InferenceSession>>();

  constructor(
    private readonly vocab: number,
    /** The type of the decoder's logits. */
    private readonly logitsType: FloatType,
    /** The model's session options (the WebGPU provider). */
    private readonly options: ort.InferenceSession.SessionOptions,
    /** How the model runs a session (under its device lock, counting the bytes). */
    private readonly run: SessionRun,
  ) {}

  /** The picks of every row of `logits` ([batch, 1, vocab] on the device); every row has a mask. */
  async pick(logits: Tensor, masks: readonly LogitMask[]): Promise<Pick[]> {
    const split = splitOf(masks, this.vocab);
    let session = this.sessions.get(split);
    if (!session) {
      session = ort.InferenceSession.create(devicePickGraph(this.vocab, split, this.logitsType), this.options);
      this.sessions.set(split, session);
    }
    const out = await this.run(await session, { logits, ...maskFeeds(masks, this.vocab) });
    return picksFrom(out, masks, split) as Pick[];
  }

  async release(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(sessions.map(async (s) => (await s).release()));
  }
}
