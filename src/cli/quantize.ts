// `earshot quantize <model> --to int8 [--out DIR]`: compresses a model's fp32 weights to 8 bits on
// this machine (see src/models/quantize/). Works on a local model folder, or on a hub model's
// cached fp32 files, which are then written to --out (the cache mirrors the hub and gets no files
// the hub does not have). Progress lines go to stderr; stdout says what was written.
import { Command } from 'commander';
import { EarshotError } from '../errors.ts';
import { parseModelRef } from '../models/model-ref.ts';
import { resolveModel } from '../models/store.ts';
import { isQuantTarget, quantizeFolder, QUANT_TARGETS, type QuantizeFolderResult } from '../models/quantize/index.ts';

interface QuantizeOpts {
  to: string;
  out?: string;
  perChannel?: boolean;
  force?: boolean;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function summary(r: QuantizeFolderResult): string {
  const lines = r.graphs.map(
    (g) => `${g.target}: ${mb(g.sourceBytes)} -> ${mb(g.targetBytes)} (${(g.sourceBytes / g.targetBytes).toFixed(1)}x smaller)`,
  );
  if (r.copied.length > 0) lines.push(`copied ${r.copied.join(', ')} to ${r.outDir}`);
  return lines.join('\n') + '\n';
}

export function quantizeCommand(): Command {
  return new Command('quantize')
    .description('quantise a model\'s fp32 weights to 8 bits (dynamic quantisation, as onnxruntime\'s quantize_dynamic)')
    .argument('<model>', 'model folder (./my-model) or a cached catalogue/hub model (then --out is required)')
    .requiredOption('--to <dtype>', `target precision: ${QUANT_TARGETS.join(', ')} (int8: signed weights, files *_int8.onnx; q8: unsigned, *_quantized.onnx; uint8: unsigned, *_uint8.onnx)`)
    .option('--out <dir>', 'write a new model folder here (with the JSON files); default: beside the fp32 files')
    .option('--per-channel', 'one scale per output channel of each weight matrix instead of one per matrix')
    .option('--force', 'replace quantised files that already exist')
    .action(async (model: string, opts: QuantizeOpts) => {
      if (!isQuantTarget(opts.to)) {
        throw new EarshotError('invalid_argument', 'bad_target', `unknown --to "${opts.to}": expected one of ${QUANT_TARGETS.join(', ')}`);
      }
      const ref = parseModelRef(model);
      let dir: string;
      if (ref.kind === 'local') dir = ref.dir;
      else {
        if (opts.out === undefined) {
          throw new EarshotError('invalid_argument', 'out_required', `${ref.label} is a hub model: give --out <dir> for the quantised copy (the cache only holds the hub's files)`);
        }
        dir = (await resolveModel(model, { dtype: 'fp32' })).dir;
      }
      const result = quantizeFolder(dir, {
        to: opts.to,
        ...(opts.out !== undefined ? { outDir: opts.out } : {}),
        perChannel: opts.perChannel ?? false,
        force: opts.force ?? false,
        onGraph: (_c, source) => process.stderr.write(`quantising ${source}\n`),
      });
      process.stdout.write(summary(result));
    });
}
