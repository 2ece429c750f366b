// quantizeFolder: quantises both graphs of a model folder in the hub's layout and writes them under
// the hub's names for the target dtype (onnx/encoder_model_int8.onnx, ..._quantized.onnx for q8),
// into the same folder (beside the fp32 files, as a hub repository holds every dtype) or into a new
// folder that also gets the JSON files, so either is a model folder earshot and transformers.js load.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { EarshotError } from '../../errors.ts';
import { checkModelFolder } from '../model-ref.ts';
import { COMPONENT_BASENAME, COMPONENTS, onnxFile, type Component } from '../dtype.ts';
import { externalDataSetting } from '../model-files.ts';
import { onnx } from './onnx.ts';
import { quantizeModel, type QuantizeOptions } from './quantize-model.ts';
import type { RewriteStats } from './rewrite.ts';

/** protobuf cannot encode a message of 2 GB or more. */
const MAX_PROTO_BYTES = 2 ** 31 - 1;

export interface QuantizeFolderOptions extends QuantizeOptions {
  /** Where to write; default: the source folder. */
  outDir?: string;
  /** Replace target files that already exist. */
  force?: boolean;
  /** Called before each graph is read, for progress lines. */
  onGraph?: (component: Component, source: string) => void;
}

export interface QuantizedGraph {
  component: Component;
  source: string;
  target: string;
  /** Bytes of the fp32 graph, its external data included. */
  sourceBytes: number;
  targetBytes: number;
  stats: RewriteStats;
}

export interface QuantizeFolderResult {
  outDir: string;
  graphs: QuantizedGraph[];
  /** JSON files copied into a new folder (none when writing beside the source). */
  copied: string[];
}

/** The .onnx file plus every `<file>_data*` beside it. */
function graphBytes(path: string): number {
  const dir = dirname(path);
  const base = path.slice(dir.length + 1);
  return readdirSync(dir)
    .filter((f) => f === base || f.startsWith(`${base}_data`))
    .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

function sourceGraph(dir: string, component: Component): string {
  const path = join(dir, onnxFile(component, 'fp32'));
  if (existsSync(path)) return path;
  const base = COMPONENT_BASENAME[component];
  const others = existsSync(join(dir, 'onnx')) ? readdirSync(join(dir, 'onnx')).filter((f) => f.startsWith(`${base}_`) && f.endsWith('.onnx')) : [];
  if (others.length > 0) {
    throw new EarshotError(
      'invalid_argument',
      'already_quantized',
      `${dir} has no fp32 ${onnxFile(component, 'fp32')}, only ${others.map((f) => `onnx/${f}`).join(', ')}: quantisation starts from the fp32 export`,
    );
  }
  throw new EarshotError('model_not_found', 'missing_file', `model folder ${dir} lacks ${onnxFile(component, 'fp32')}`);
}

/**
 * The config.json to write: when it declares external data for the whole folder (`true` or a chunk
 * count), the new single-file graphs get an explicit `false` so that clients do not look for
 * `_int8.onnx_data` files; other files keep what they had.
 */
function configForOutput(config: Record<string, unknown>, dir: string, written: string[]): Record<string, unknown> | undefined {
  const setting = externalDataSetting(config);
  if (setting === undefined || setting === false || setting === null) return undefined;
  const record: Record<string, boolean | number> = {};
  if (typeof setting === 'object') Object.assign(record, setting);
  else {
    for (const f of existsSync(join(dir, 'onnx')) ? readdirSync(join(dir, 'onnx')) : []) {
      if (f.endsWith('.onnx')) record[f] = setting;
    }
  }
  for (const f of written) record[f.replace(/^onnx\//, '')] = false;
  const js = config['transformers.js_config'] as Record<string, unknown>;
  return { ...config, 'transformers.js_config': { ...js, use_external_data_format: record } };
}

function writeAtomically(path: string, data: Uint8Array | string): void {
  const partial = `${path}.partial`;
  writeFileSync(partial, data);
  renameSync(partial, path);
}

export function quantizeFolder(srcDir: string, opts: QuantizeFolderOptions): QuantizeFolderResult {
  const src = resolve(srcDir);
  checkModelFolder(src);
  const out = resolve(opts.outDir ?? src);
  const sources = COMPONENTS.map((c) => ({ component: c, source: sourceGraph(src, c), target: join(out, onnxFile(c, opts.to)) }));
  if (!opts.force) {
    const existing = sources.filter((s) => existsSync(s.target)).map((s) => s.target);
    if (existing.length > 0) {
      throw new EarshotError('invalid_argument', 'exists', `${existing.join(', ')} already exists (pass --force to replace it)`);
    }
  }
  // Both graphs are written as .partial files and renamed only when both worked, so a failure
  // (say, a decoder that is already quantised) leaves no half-done model behind.
  const graphs: QuantizedGraph[] = [];
  mkdirSync(join(out, 'onnx'), { recursive: true });
  try {
    for (const { component, source, target } of sources) {
      opts.onGraph?.(component, source);
      const model = onnx.ModelProto.decode(readFileSync(source));
      const stats = quantizeModel(model, dirname(source), source, opts);
      const bytes = onnx.ModelProto.encode(model).finish();
      if (bytes.length > MAX_PROTO_BYTES) {
        throw new EarshotError('invalid_argument', 'too_large', `${source} is still over 2 GB once quantised; earshot writes no external data`);
      }
      writeFileSync(`${target}.partial`, bytes);
      graphs.push({ component, source, target, sourceBytes: graphBytes(source), targetBytes: bytes.length, stats });
    }
  } catch (e) {
    for (const s of sources) rmSync(`${s.target}.partial`, { force: true });
    throw e;
  }
  for (const g of graphs) renameSync(`${g.target}.partial`, g.target);

  const written = sources.map((s) => onnxFile(s.component, opts.to));
  const copied: string[] = [];
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  const newConfig = configForOutput(config, src, written);
  if (out !== src) {
    for (const f of readdirSync(src).filter((f) => f.endsWith('.json') && statSync(join(src, f)).isFile())) {
      if (f === 'config.json' && newConfig) continue;
      copyFileSync(join(src, f), join(out, f));
      copied.push(f);
    }
  }
  if (newConfig) {
    writeAtomically(join(out, 'config.json'), `${JSON.stringify(newConfig, null, 2)}\n`);
    if (out !== src) copied.push('config.json');
  }
  return { outDir: out, graphs, copied };
}
