// The result of an `earshot eval` run: one row per file (texts as given and as scored, edit counts,
// error rate, real-time factor), micro-averaged totals per metric, and the run's real-time factor.
// The same object is the `--json` output and what `--compare` reads back; `renderReport` is the
// table a person reads.
import { z } from 'zod';
import { EarshotError } from '../errors.ts';
import { type Metric, type Score, type Totals, totals } from './metrics.ts';

export interface FileResult extends Score {
  path: string;
  /** The language the file was scored in. */
  language: string;
  reference: string;
  hypothesis: string;
  normalizedReference: string;
  normalizedHypothesis: string;
  /** Seconds of audio. */
  durationS: number;
  /** Seconds from reading the file to the last segment (model loading not included). */
  processingS: number;
  /** processingS / durationS; null for a file with no audio. */
  rtf: number | null;
}

export interface FileFailure {
  path: string;
  error: string;
}

export interface RunTotals {
  audioS: number;
  processingS: number;
  /** Total processing over total audio. */
  rtf: number | null;
  /** Seconds spent loading the model (once per run). */
  loadS: number;
}

export interface EvalReport {
  report: 'earshot-eval';
  version: 1;
  model: string;
  dtype: string | null;
  /** The decoding options the run used, for the record. */
  options: Record<string, unknown>;
  files: FileResult[];
  failures: FileFailure[];
  /** Manifest lines with no reference (`text: null`). */
  skipped: number;
  totals: Partial<Record<Metric, Totals>>;
  run: RunTotals;
}

export function buildReport(
  meta: Pick<EvalReport, 'model' | 'dtype' | 'options' | 'skipped'> & { loadS: number },
  files: FileResult[],
  failures: FileFailure[],
): EvalReport {
  const byMetric: Partial<Record<Metric, Totals>> = {};
  for (const metric of ['wer', 'cer'] as const) {
    const scored = files.filter((f) => f.metric === metric);
    if (scored.length > 0) byMetric[metric] = totals(metric, scored);
  }
  const audioS = files.reduce((a, f) => a + f.durationS, 0);
  const processingS = files.reduce((a, f) => a + f.processingS, 0);
  return {
    report: 'earshot-eval',
    version: 1,
    model: meta.model,
    dtype: meta.dtype,
    options: meta.options,
    files,
    failures,
    skipped: meta.skipped,
    totals: byMetric,
    run: { audioS, processingS, rtf: audioS > 0 ? processingS / audioS : null, loadS: meta.loadS },
  };
}

export const percent = (r: number | null): string => (r === null ? '-' : `${(r * 100).toFixed(1)}%`);
const fixed = (r: number | null, digits = 3): string => (r === null ? '-' : r.toFixed(digits));

/** Left-aligned text columns, right-aligned numbers. */
export function table(rows: string[][], rightAligned: ReadonlySet<number>): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => r.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

/**
 * The report as a table: a row per file, then a total row per metric. A file with an empty
 * reference has no rate ("-"): its INS column is the hallucinated words or characters.
 */
export function renderReport(r: EvalReport): string {
  const rows: string[][] = [['FILE', 'LANG', 'METRIC', 'REF', 'SUB', 'DEL', 'INS', 'RATE', 'RTF']];
  for (const f of r.files) {
    rows.push([f.path, f.language, f.metric.toUpperCase(), String(f.units), String(f.substitutions), String(f.deletions), String(f.insertions), percent(f.rate), fixed(f.rtf)]);
  }
  for (const metric of ['wer', 'cer'] as const) {
    const t = r.totals[metric];
    if (!t) continue;
    const name = `${metric.toUpperCase()} total (${t.files} file${t.files === 1 ? '' : 's'})`;
    rows.push([name, '', '', String(t.units), String(t.substitutions), String(t.deletions), String(t.insertions), percent(t.rate), '']);
  }
  const lines = [table(rows, new Set([3, 4, 5, 6, 7, 8]))];
  for (const metric of ['wer', 'cer'] as const) {
    const t = r.totals[metric];
    if (t) lines.push(`${metric.toUpperCase()}: ${percent(t.rate)} micro-averaged (${t.errors} errors / ${t.units} reference units), ${percent(t.macroRate)} macro-averaged`);
  }
  lines.push(
    `RTF: ${fixed(r.run.rtf)} (${r.run.processingS.toFixed(1)} s of processing for ${r.run.audioS.toFixed(1)} s of audio; model loaded in ${r.run.loadS.toFixed(1)} s)`,
  );
  if (r.skipped > 0) lines.push(`skipped: ${r.skipped} line${r.skipped === 1 ? '' : 's'} with no reference`);
  if (r.failures.length > 0) lines.push(`failed: ${r.failures.length} file${r.failures.length === 1 ? '' : 's'} (${r.failures.map((f) => f.path).join(', ')})`);
  return `${lines.join('\n')}\n`;
}

const rate = z.number().nullable();
const countsSchema = {
  metric: z.enum(['wer', 'cer']),
  units: z.number(),
  substitutions: z.number(),
  deletions: z.number(),
  insertions: z.number(),
  errors: z.number(),
  rate,
};
/** What `--compare` needs of an earlier report (older fields beyond these are ignored). */
const storedReportSchema = z.object({
  report: z.literal('earshot-eval'),
  version: z.literal(1),
  model: z.string(),
  files: z.array(z.object({ path: z.string(), language: z.string(), ...countsSchema, rtf: rate }).loose()),
  totals: z.object({ wer: z.object(countsSchema).loose().optional(), cer: z.object(countsSchema).loose().optional() }),
  run: z.object({ rtf: rate }).loose(),
});
export type StoredReport = z.output<typeof storedReportSchema>;

/** Reads back an `earshot eval --json` report; throws `invalid_argument/bad_report` otherwise. */
export function parseStoredReport(json: string, name: string): StoredReport {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    throw new EarshotError('invalid_argument', 'bad_report', `${name} is not JSON: expected the output of earshot eval --json`);
  }
  const r = storedReportSchema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new EarshotError('invalid_argument', 'bad_report', `${name} is not an earshot eval --json report (${issue.path.join('.') || 'top level'}: ${issue.message})`);
  }
  return r.data;
}
