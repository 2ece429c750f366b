// The GPU bench's results file and its time limit. The JSON is rewritten (to a temporary name, then
// renamed) after every figure, so a run stopped at any point, by its own limit or by the machine's,
// leaves a valid file with everything measured so far; `complete` turns true only at the end.
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One measure for one model size, on every device it ran on. */
export interface Figure {
  dims: string;
  measure: string;
  /** `ms` (lower is better), `ms/step`, `audio s/s`, `streams` (higher is better). */
  unit: string;
  /** Value per device (`cpu`, `webgpu`, `cuda`); a device whose run failed or was skipped is absent. */
  values: Record<string, number>;
  /**
   * The dtype each device's value was measured at (`fp16`, `fp32`, or `encoder=…,decoder=…`): by
   * default the GPU's is fp16 and the CPU's fp32, so vsCpu compares what a user gets on each.
   */
  dtypes: Record<string, string>;
  /** Per GPU device: how many times better than the CPU (CPU time / GPU time, or GPU rate / CPU rate). */
  vsCpu: Record<string, number>;
  /** Anything the figure needs to be read right (batch size, requests, token budget, p95s...). */
  detail?: Record<string, unknown>;
}

const HIGHER_IS_BETTER = new Set(['audio s/s', 'streams']);

export class Results {
  readonly doc: {
    bench: 'gpu';
    complete: boolean;
    startedAt: string;
    updatedAt: string;
    timeLimitS: number;
    ratio: string;
    machine: Record<string, unknown>;
    devices: Record<string, unknown>;
    settings: Record<string, unknown>;
    figures: Figure[];
    targets: Record<string, unknown>;
    notes: string[];
  };
  private readonly file: string;
  private readonly deadline: number;

  constructor(outDir: string, timeLimitS: number, settings: Record<string, unknown>) {
    this.file = join(outDir, 'gpu-bench.json');
    this.deadline = performance.now() + timeLimitS * 1000;
    const now = new Date().toISOString();
    this.doc = {
      bench: 'gpu',
      complete: false,
      startedAt: now,
      updatedAt: now,
      timeLimitS,
      ratio: 'vsCpu: CPU time / GPU time for times, GPU value / CPU value for rates and stream counts; above 1 the GPU is better',
      machine: {},
      devices: {},
      settings,
      figures: [],
      targets: {},
      notes: [],
    };
    this.save();
  }

  /** Seconds left before the time limit. */
  get leftS(): number {
    return (this.deadline - performance.now()) / 1000;
  }

  /** Records `value` of `device`, measured at `dtype`, for a figure (created on first use) and saves. */
  put(dims: string, measure: string, unit: string, device: string, dtype: string, value: number, detail?: Record<string, unknown>): void {
    let f = this.doc.figures.find((x) => x.dims === dims && x.measure === measure);
    if (!f) {
      f = { dims, measure, unit, values: {}, dtypes: {}, vsCpu: {} };
      this.doc.figures.push(f);
    }
    f.values[device] = round(value);
    f.dtypes[device] = dtype;
    if (detail) f.detail = { ...f.detail, [device]: detail };
    const cpu = f.values.cpu;
    for (const [d, v] of Object.entries(f.values)) {
      if (d === 'cpu' || cpu === undefined || !(v > 0) || !(cpu > 0)) continue;
      f.vsCpu[d] = round(HIGHER_IS_BETTER.has(unit) ? v / cpu : cpu / v);
    }
    this.save();
  }

  /** Takes in the figures and notes of another run's document (a child's, bench/gpu.ts). */
  merge(part: Results['doc']): void {
    for (const f of part.figures) {
      for (const [device, value] of Object.entries(f.values)) this.put(f.dims, f.measure, f.unit, device, f.dtypes[device] ?? 'unknown', value, f.detail?.[device] as Record<string, unknown> | undefined);
    }
    this.doc.notes.push(...part.notes); // the child printed them already
    this.save();
  }

  note(text: string): void {
    console.log(`note: ${text}`);
    this.doc.notes.push(text);
    this.save();
  }

  finish(): void {
    this.doc.complete = true;
    this.save();
  }

  save(): void {
    this.doc.updatedAt = new Date().toISOString();
    writeFileSync(`${this.file}.tmp`, `${JSON.stringify(this.doc, null, 2)}\n`);
    renameSync(`${this.file}.tmp`, this.file);
  }
}

/** One printed line per figure: `tiny encoder ms per run, batch 1: webgpu fp16 3.2 ms, cpu fp32 41 ms; webgpu 12.8x cpu`. */
export function figureLine(f: Figure): string {
  const values = Object.entries(f.values).map(([d, v]) => `${d} ${f.dtypes[d] ?? '?'} ${v} ${f.unit}`);
  const ratios = Object.entries(f.vsCpu).map(([d, v]) => `${d} ${v}x cpu`);
  return `${f.dims} ${f.measure}: ${values.join(', ')}${ratios.length ? `; ${ratios.join(', ')}` : ''}`;
}

const round = (v: number): number => (Number.isFinite(v) ? Math.round(v * 1000) / 1000 : v);
