// `npm run make-test-model -- --preset multilingual [--dims tiny] [--dtypes fp32,int8] [--timestamped] [--merged if] [--half-io] --out DIR`:
// writes a Whisper model with deterministic random weights in the hub's onnx-community layout.
import '../src/engine/telemetry-off.ts'; // first, as in every entry point: onnxruntime's telemetry off
import { Command, InvalidArgumentError } from 'commander';
import { isEarshotError } from '../src/errors.ts';
import { buildTestModel, DIMS_NAMES, DTYPES, MERGED_FORMS, PRESETS, type DimsName, type Dtype, type MergedForm, type Preset } from './test-model/index.ts';

function seedArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

const program = new Command('make-test-model')
  .description('write a Whisper test model (random weights) in the onnx-community/whisper-* layout')
  .requiredOption('--preset <name>', `tokenizer and mel bands: ${PRESETS.join(', ')}`)
  .option('--dims <name>', `dimension set: ${DIMS_NAMES.join(', ')}`, 'small')
  .option('--dtypes <list>', `weight formats, comma separated (fp32 is always written): ${DTYPES.join(', ')}`, 'fp32')
  .option('--seed <n>', 'seed of the random weights', seedArg, 1)
  .option('--timestamped', 'decoders also output cross_attentions.N (as the hub\'s *_timestamped repositories)', false)
  .option('--merged <form>', `merged decoder form: ${MERGED_FORMS.join(', ')} (if: an If node on use_cache_branch, as optimum exports the hub's)`, 'single')
  .option('--half-io', 'the fp16 files take and give float16 tensors (features, states, caches, logits), as an fp16 conversion without keep_io_types', false)
  .requiredOption('--out <dir>', 'folder to write')
  .showHelpAfterError();

program.parse();
const opts = program.opts<{ preset: string; dims: string; dtypes: string; seed: number; timestamped: boolean; merged: string; halfIo: boolean; out: string }>();

try {
  const started = performance.now();
  const files = buildTestModel({
    // Checked against the allowed names by the builder, which throws a clear error otherwise.
    preset: opts.preset as Preset,
    dims: opts.dims as DimsName,
    dtypes: opts.dtypes.split(',').map((d) => d.trim()).filter(Boolean) as Dtype[],
    seed: opts.seed,
    timestamped: opts.timestamped,
    merged: opts.merged as MergedForm,
    halfIo: opts.halfIo,
    outDir: opts.out,
  });
  process.stdout.write(`${files.map((f) => `${opts.out}/${f}`).join('\n')}\n`);
  process.stderr.write(`built ${files.length} files in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
} catch (e) {
  if (!isEarshotError(e)) throw e;
  process.stderr.write(`make-test-model: ${e.message}\n`);
  process.exitCode = 2;
}
