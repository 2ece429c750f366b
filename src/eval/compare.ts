// Two eval runs side by side (`earshot eval … --compare before.json`): per file the error rate
// before → after and the change, files found in only one run, and the totals per metric and the
// real-time factor likewise. Files are matched by their manifest path (a path listed twice is
// matched by its order of appearance). A file with an empty reference has no rate, so its
// insertions are compared instead.
import { type Metric } from './metrics.ts';
import { percent, table } from './report.ts';

/** What a comparison reads of a report: a fresh one or one read back from `--json`. */
export interface ComparableReport {
  model: string;
  files: ReadonlyArray<{ path: string; metric: Metric; rate: number | null; insertions: number }>;
  totals: Partial<Record<Metric, { rate: number | null }>>;
  run: { rtf: number | null };
}

export interface FileChange {
  path: string;
  metric: Metric;
  before: number | null;
  after: number | null;
  /** after − before; null when either rate is missing or the metric changed. */
  delta: number | null;
  /** Insertions before and after, what an empty reference is judged by. */
  insertionsBefore: number;
  insertionsAfter: number;
  /** True when the two runs scored this file with different metrics (its language changed). */
  metricChanged: boolean;
}

export interface TotalChange {
  before: number | null;
  after: number | null;
  delta: number | null;
}

export interface Comparison {
  beforeModel: string;
  afterModel: string;
  files: FileChange[];
  onlyBefore: string[];
  onlyAfter: string[];
  totals: Partial<Record<Metric, TotalChange>>;
  rtf: TotalChange;
}

const change = (before: number | null, after: number | null): TotalChange => ({
  before,
  after,
  delta: before !== null && after !== null ? after - before : null,
});

/** Keys files by path, numbering repeats: a, a#2, a#3… */
function keyed<T extends { path: string }>(files: readonly T[]): Map<string, T> {
  const seen = new Map<string, number>();
  const out = new Map<string, T>();
  for (const f of files) {
    const n = (seen.get(f.path) ?? 0) + 1;
    seen.set(f.path, n);
    out.set(n === 1 ? f.path : `${f.path}#${n}`, f);
  }
  return out;
}

export function compareReports(before: ComparableReport, after: ComparableReport): Comparison {
  const b = keyed(before.files);
  const a = keyed(after.files);
  const files: FileChange[] = [];
  for (const [key, af] of a) {
    const bf = b.get(key);
    if (!bf) continue;
    const metricChanged = bf.metric !== af.metric;
    files.push({
      path: key,
      metric: af.metric,
      before: bf.rate,
      after: af.rate,
      delta: !metricChanged && bf.rate !== null && af.rate !== null ? af.rate - bf.rate : null,
      insertionsBefore: bf.insertions,
      insertionsAfter: af.insertions,
      metricChanged,
    });
  }
  const totals: Partial<Record<Metric, TotalChange>> = {};
  for (const metric of ['wer', 'cer'] as const) {
    const bt = before.totals[metric];
    const at = after.totals[metric];
    if (bt || at) totals[metric] = change(bt?.rate ?? null, at?.rate ?? null);
  }
  return {
    beforeModel: before.model,
    afterModel: after.model,
    files,
    onlyBefore: [...b.keys()].filter((k) => !a.has(k)),
    onlyAfter: [...a.keys()].filter((k) => !b.has(k)),
    totals,
    rtf: change(before.run.rtf, after.run.rtf),
  };
}

const sign = (d: number): string => (d < 0 ? '-' : '+');
const signedPoints = (d: number | null): string => (d === null ? '-' : `${sign(d)}${Math.abs(d * 100).toFixed(1)}`);
const signed = (d: number | null): string => (d === null ? '-' : `${sign(d)}${Math.abs(d).toFixed(3)}`);

/** The comparison as a table; deltas of rates are in percentage points. */
export function renderComparison(c: Comparison): string {
  const rows: string[][] = [['FILE', 'METRIC', 'BEFORE', 'AFTER', 'DELTA']];
  for (const f of c.files) {
    const metric = f.metricChanged ? `${f.metric.toUpperCase()}*` : f.metric.toUpperCase();
    if (f.before === null && f.after === null) {
      const d = f.insertionsAfter - f.insertionsBefore;
      rows.push([f.path, metric, `${f.insertionsBefore} ins`, `${f.insertionsAfter} ins`, `${sign(d)}${Math.abs(d)} ins`]);
    } else {
      rows.push([f.path, metric, percent(f.before), percent(f.after), signedPoints(f.delta)]);
    }
  }
  for (const [metric, t] of Object.entries(c.totals)) {
    rows.push([`${metric.toUpperCase()} total`, '', percent(t.before), percent(t.after), signedPoints(t.delta)]);
  }
  rows.push(['RTF', '', t3(c.rtf.before), t3(c.rtf.after), signed(c.rtf.delta)]);
  const lines = [`before: ${c.beforeModel}  after: ${c.afterModel}`, table(rows, new Set([2, 3, 4]))];
  if (c.files.some((f) => f.metricChanged)) lines.push('* scored with another metric than before (the language changed): no delta');
  if (c.onlyBefore.length > 0) lines.push(`only before: ${c.onlyBefore.join(', ')}`);
  if (c.onlyAfter.length > 0) lines.push(`only after: ${c.onlyAfter.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

function t3(r: number | null): string {
  return r === null ? '-' : r.toFixed(3);
}
