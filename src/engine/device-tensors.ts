// Tensors that stay on the WebGPU device between session runs, and the two things earshot does to
// them there: gather rows (batching, beam reordering, splitting an encoder batch) and, rarely, copy
// one to the host. onnxruntime-node 1.30 hands a `preferredOutputLocation: 'gpu-buffer'` output to
// JavaScript as a Tensor over the provider's buffer, which any session of the process can take as
// an input (they share one WebGPU device), but it cannot read it: the binding's `download` is
// "not implemented" and throws a C string that aborts the process (js/node/src/tensor_helper.cc;
// see scripts/test-model/WEBGPU.md). So rows are moved and hosts copies made by tiny sessions on
// the device (Concat + Gather; Identity with a CPU output), and nothing here ever calls getData().
//
// The binding also gives such a tensor no finalizer: its buffer is freed only by tensor.dispose().
// `track` counts each output kept on the device with one reference, its caller's, and the last
// holder's release frees it under the device lock (the provider's buffer manager is the shared
// context's, see device-lock.ts): device-refs.ts, which also keeps the garbage collector as a
// counted safety net.
import './telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import ort from 'onnxruntime-node';
import type { DeviceLock } from './device-lock.ts';
import { DeviceRefs, type DeviceTensorStats } from './device-refs.ts';
import { GraphBuilder } from './onnx-graph.ts';

type Tensor = ort.Tensor;

/** Whether `t` lives on the device (an output kept there by preferredOutputLocation). */
export function onDevice(t: Tensor): boolean {
  return t.location === 'gpu-buffer';
}

/** Bytes of `t`'s data. */
export function tensorBytes(t: Tensor): number {
  const size = t.dims.reduce((a, b) => a * b, 1);
  return size * (t.type === 'float16' || t.type === 'uint16' || t.type === 'int16' ? 2 : t.type === 'int64' || t.type === 'float64' || t.type === 'uint64' ? 8 : t.type === 'float32' || t.type === 'int32' || t.type === 'uint32' ? 4 : 1);
}

/** Bytes that crossed one session.run's boundary between host and device. */
export interface Transfer {
  /** Host tensors fed in (copied to the device when the session runs there). */
  up: number;
  /** Host tensors fetched (copied back from the device). */
  down: number;
}

/** The host<->device bytes of a run with `feeds` and `outputs`: every tensor not on the device. */
export function transferOf(feeds: Record<string, Tensor>, outputs: Record<string, Tensor>): Transfer {
  const host = (ts: Record<string, Tensor>) => Object.values(ts).reduce((n, t) => n + (onDevice(t) ? 0 : tensorBytes(t)), 0);
  return { up: host(feeds), down: host(outputs) };
}

/** Row `row` of some [batch, ...] tensor. */
export interface RowOf {
  tensor: Tensor;
  row: number;
}

/** A host tensor whose row i is `rows[i]` (host sources only, of one type: float32, or float16 as its bits). */
export function gatherHostRows(rows: readonly RowOf[]): Tensor {
  const first = rows[0]!.tensor;
  const rowSize = first.dims.slice(1).reduce((a, b) => a * b, 1);
  const dst = first.type === 'float16' ? new Uint16Array(rows.length * rowSize) : new Float32Array(rows.length * rowSize);
  rows.forEach(({ tensor, row }, i) => {
    if (row < 0 || row >= tensor.dims[0]!) throw new RangeError(`row ${row} out of range 0..${tensor.dims[0]! - 1}`);
    if (tensor.type !== first.type) throw new TypeError(`rows of ${first.type} and ${tensor.type} tensors cannot be gathered into one`);
    dst.set((tensor.data as typeof dst).subarray(row * rowSize, (row + 1) * rowSize), i * rowSize);
  });
  return first.type === 'float16' ? new ort.Tensor('float16', dst as Uint16Array, [rows.length, ...first.dims.slice(1)]) : new ort.Tensor('float32', dst as Float32Array, [rows.length, ...first.dims.slice(1)]);
}

export class DeviceTensors {
  private readonly gathers = new Map<string, Promise<ort.InferenceSession>>();
  private readonly hosts = new Map<string, Promise<ort.InferenceSession>>();
  /** The reference counts of the tensors kept on the device, and their freeing. */
  private readonly refs: DeviceRefs;

  constructor(
    private readonly lock: DeviceLock,
    /** The model's session options (its providers, threads). */
    private readonly options: ort.InferenceSession.SessionOptions,
  ) {
    this.refs = new DeviceRefs(lock);
  }

  /** Counts `t` with one reference, the caller's (device-refs.ts); returns `t`. Host tensors pass through. */
  track<T extends Tensor>(t: T): T {
    const dispose = (t as unknown as { disposer?: () => void }).disposer;
    if (onDevice(t) && dispose) this.refs.own(t, tensorBytes(t), dispose);
    return t;
  }

  /** The tensors kept on the device and not yet freed. */
  stats(): DeviceTensorStats {
    return this.refs.stats();
  }

  /** Frees every tracked tensor still alive, and waits for it (before the sessions go: see device-refs.ts). */
  async disposeAll(): Promise<void> {
    await this.refs.disposeAll();
  }

  /**
   * A device tensor whose row i is `rows[i]` (the sources share type, rank and every dim but the
   * first). One Concat of the distinct sources and one Gather, both on the device.
   */
  async gather(rows: readonly RowOf[]): Promise<Tensor> {
    const sources = [...new Set(rows.map((r) => r.tensor))];
    const first = sources[0]!;
    const offsets = new Map<Tensor, number>();
    let at = 0;
    for (const s of sources) {
      offsets.set(s, at);
      at += s.dims[0]!;
    }
    const index = BigInt64Array.from(rows, ({ tensor, row }) => {
      if (row < 0 || row >= tensor.dims[0]!) throw new RangeError(`row ${row} out of range 0..${tensor.dims[0]! - 1}`);
      return BigInt(offsets.get(tensor)! + row);
    });
    const key = `${first.type}:${first.dims.length}:${sources.length}`;
    let session = this.gathers.get(key);
    if (!session) {
      session = ort.InferenceSession.create(gatherGraph(first.type, first.dims.length, sources.length), {
        ...this.options,
        preferredOutputLocation: 'gpu-buffer',
      });
      this.gathers.set(key, session);
    }
    const s = await session;
    const feeds: Record<string, Tensor> = { index: new ort.Tensor('int64', index, [index.length]) };
    sources.forEach((t, i) => (feeds[`s${i}`] = t));
    const out = await this.lock.run(() => s.run(feeds));
    return this.track(out.rows!);
  }

  /** `t` on the host (a copy when it is on the device; `t` itself otherwise). */
  async toHost(t: Tensor): Promise<Tensor> {
    if (!onDevice(t)) return t;
    const key = `${t.type}:${t.dims.length}`;
    let session = this.hosts.get(key);
    if (!session) {
      const g = new GraphBuilder('earshot_to_host');
      const type = elemType(t.type);
      const shape = t.dims.map((_, i) => `d${i}`);
      g.output(g.input('x', type, shape), 'y', type, shape);
      session = ort.InferenceSession.create(g.toBytes('earshot'), this.options);
      this.hosts.set(key, session);
    }
    const s = await session;
    return (await this.lock.run(() => s.run({ x: t }))).y!;
  }

  /** Frees the tracked tensors, then the small sessions. */
  async release(): Promise<void> {
    await this.disposeAll();
    const all = [...this.gathers.values(), ...this.hosts.values()];
    this.gathers.clear();
    this.hosts.clear();
    await this.lock.run(() => Promise.all(all.map(async (s) => (await s).release())));
  }
}

function elemType(type: Tensor['type']): 'float' | 'float16' {
  if (type === 'float32') return 'float';
  if (type === 'float16') return 'float16';
  throw new TypeError(`device tensors of type ${type} are not supported`);
}

/** Concat of `n` sources along the first axis, then Gather of the rows `index`. */
function gatherGraph(type: Tensor['type'], rank: number, n: number): Uint8Array {
  const g = new GraphBuilder('earshot_gather_rows');
  const t = elemType(type);
  const tail = Array.from({ length: rank - 1 }, (_, i) => `d${i + 1}`);
  const inputs = Array.from({ length: n }, (_, i) => g.input(`s${i}`, t, [`b${i}`, ...tail]));
  const index = g.input('index', 'int64', ['rows']);
  const all = n === 1 ? inputs[0]! : g.op1('Concat', inputs, { axis: { i: 0 } });
  g.output(g.op1('Gather', [all, index], { axis: { i: 0 } }), 'rows', t, ['rows', ...tail]);
  return g.toBytes('earshot');
}
