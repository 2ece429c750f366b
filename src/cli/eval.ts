// `earshot eval <manifest.jsonl...>`: word/character error rates and real-time factor of a model on
// manifests of audio with reference transcripts, as a table or as JSON (`--json`), optionally
// against an earlier JSON report (`--compare`). Options are checked, and the manifests and the
// report to compare with are read, before the model loads; the heavy modules load on use.
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { z } from 'zod';
import { EarshotError } from '../errors.ts';
import { MAX_SAMPLE_LEN } from '../decoding/sot.ts';
import { DEFAULTS, DEVICE_HELP, FLAGS, parseCliOptions, transcribeOptionsSchema } from './transcribe-options.ts';

const EXAMPLES = `
Manifests are JSON Lines, one file per line, as shared/audio/*/manifest.jsonl:
  {"path": "real-en/jfk.wav", "text": "And so, my fellow Americans…", "language": "en"}
  "path" is relative to the folder above the manifest's (or absolute); "text": "" means the audio
  should give no text (any word is an insertion); "text": null lines are skipped.
Each file is decoded in its "language" (detected when null) unless --language is given.
English is scored by words after Whisper's English normaliser; Chinese, Japanese, Korean, Thai,
Lao, Burmese, Khmer and Tibetan by characters; other languages by words after Whisper's basic one.
Totals are micro-averaged: all errors over all reference words (or characters).

Examples:
  earshot eval ../shared/audio/real-en/manifest.jsonl --model tiny.en
  earshot eval real-en/manifest.jsonl real-zh/manifest.jsonl --model small --json > small.json
  earshot eval real-en/manifest.jsonl --model small --dtype q8 --compare small.json
`;

const evalSchema = transcribeOptionsSchema
  .pick({ model: true, dtype: true, beamSize: true, sampleLen: true, temperature: true, conditionOnPreviousText: true, vadFilter: true, threads: true, device: true, maxDuration: true })
  .extend({
    language: transcribeOptionsSchema.shape.language.optional(),
    json: z.boolean().optional(),
    compare: z.string().trim().min(1, { error: 'expected a file name' }).optional(),
  });
type EvalCliOptions = z.output<typeof evalSchema>;

const EVAL_FLAGS = { ...FLAGS, json: '--json', compare: '--compare' };

/** One bar for the whole run: files done, the current one advancing with its audio. */
function runBar(count: number): { file(i: number, name: string): void; progress(done: number, total: number): void; stop(): void } {
  if (!process.stderr.isTTY) return { file: () => {}, progress: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: 'eval [{bar}] {percentage}% | file {n}/{count} {name}', stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let index = 0;
  bar.start(count, 0, { n: 0, count, name: '' });
  return {
    file(i, name) {
      index = i;
      bar.update(i, { n: i + 1, name });
    },
    progress(done, total) {
      if (total > 0) bar.update(index + Math.min(1, done / total));
    },
    stop() {
      bar.update(count);
      bar.stop();
    },
  };
}

async function runEval(manifests: string[], o: EvalCliOptions): Promise<void> {
  const { parseStoredReport, buildReport, renderReport } = await import('../eval/report.ts');
  const { compareReports, renderComparison } = await import('../eval/compare.ts');
  const { readManifests } = await import('../eval/manifest.ts');
  let before;
  if (o.compare !== undefined) {
    let body: string;
    try {
      body = await readFile(o.compare, 'utf8');
    } catch (e) {
      throw new EarshotError('invalid_argument', 'bad_option', `invalid --compare "${o.compare}": ${(e as Error).message}`);
    }
    before = parseStoredReport(body, o.compare);
  }
  const { entries, skipped } = await readManifests(manifests);
  if (entries.length === 0) {
    throw new EarshotError('invalid_argument', 'bad_manifest', 'nothing to evaluate: no manifest line has a reference text');
  }

  const { loadModel, decodingOptions } = await import('./transcribe-run.ts');
  const { evaluate } = await import('../eval/evaluate.ts');
  const { formatDtypeSpec } = await import('../models/dtype.ts');
  const loadStarted = performance.now();
  const w = await loadModel(o);
  const loadS = (performance.now() - loadStarted) / 1000;

  const { language: _language, ...decode } = decodingOptions(o);
  const bar = runBar(entries.length);
  let result;
  try {
    result = await evaluate(w, entries, {
      decode,
      maxDurationS: o.maxDuration,
      ...(o.language !== undefined ? { language: o.language } : {}),
      onFile: (i, e) => bar.file(i, basename(e.path)),
      onProgress: (done, total) => bar.progress(done, total),
    });
  } finally {
    bar.stop();
  }
  const options = {
    language: o.language ?? 'manifest',
    beamSize: o.beamSize ?? null,
    temperature: o.temperature ?? null,
    sampleLen: o.sampleLen ?? MAX_SAMPLE_LEN,
    conditionOnPreviousText: o.conditionOnPreviousText,
    // The device it ran on (auto resolved): real-time factors are the device's.
    device: w.model.device.device,
  };
  const report = buildReport({ model: o.model, dtype: formatDtypeSpec(w.resolved.dtype), options, skipped, loadS }, result.files, result.failures);
  for (const f of result.failures) process.stderr.write(`earshot: ${f.path}: ${f.error}\n`);
  const comparison = before ? compareReports(before, report) : undefined;
  if (o.json) {
    process.stdout.write(`${JSON.stringify(comparison ? { ...report, compare: comparison } : report, null, 2)}\n`);
  } else {
    process.stdout.write(renderReport(report));
    if (comparison) process.stdout.write(`\n${renderComparison(comparison)}`);
  }
  if (result.failures.length > 0) process.exitCode = 1;
}

export function evalCommand(): Command {
  return new Command('eval')
    .description('word/character error rate and real-time factor of a model on manifests of audio with reference text')
    .argument('<manifests...>', 'JSON Lines manifests (path, text, language per line), as shared/audio/*/manifest.jsonl')
    .option('--model <model>', 'catalogue name, hub repository "owner/name", or a local model folder', DEFAULTS.model)
    .option('--dtype <spec>', 'weights precision, as for transcribe (default: the model\'s; on a GPU, fp16 where the model has it)')
    .option('--language <lang>', "decode every file in this language, or auto to detect it (default: each manifest line's language)")
    .option('--beam-size <n>', 'beam search with n beams at temperature 0 (default: greedy)')
    .option('--temperature <t>', 'one sampling temperature from 0 to 1, with no fallback (default: 0, then 0.2 … 1.0 on a repetitive or unsure window)')
    .option('--sample-len <n>', `most tokens decoded per 30 s window, 1 to ${MAX_SAMPLE_LEN}`)
    .option('--no-condition-on-previous-text', 'do not feed each window the text of the previous ones')
    .option('--no-vad-filter', 'decode whole files, silence included (default: only the speech Silero VAD finds)')
    .option('--threads <n>', 'threads inside one operator (default: 0, one per core)')
    .option('--device <device>', DEVICE_HELP, DEFAULTS.device)
    .option('--max-duration <seconds>', 'longest audio accepted per file', DEFAULTS.maxDuration)
    .option('--json', 'print the report as JSON (what --compare reads)')
    .option('--compare <report.json>', 'also show the change from an earlier --json report, file by file and in total')
    .addHelpText('after', EXAMPLES)
    .action(async (manifests: string[], raw: Record<string, unknown>) => {
      await runEval(manifests, parseCliOptions(evalSchema, raw, EVAL_FLAGS));
    });
}
