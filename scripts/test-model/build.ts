// buildTestModel: writes one complete model folder in the layout of the hub's onnx-community/whisper-*
// repositories (JSON files at the top, ONNX files under onnx/), one encoder and one merged decoder per
// requested weight format.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDecoder } from './decoder.ts';
import { buildEncoder } from './encoder.ts';
import { configFiles } from './configs.ts';
import { DIMS, DTYPE_SUFFIX, PRESET_SPECS, resolveOptions, type Dtype, type TestModelOptions } from './options.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** Set to BUILDER_VERSION when bundled (the device kit's bundle, scripts/device-kit/), where the sources are not. */
declare const __EARSHOT_BUILDER_VERSION__: string | undefined;

/**
 * The builder's version: a digest of its own sources, so any change to how models are built
 * invalidates cached builds without anyone having to remember to bump a number.
 */
export const BUILDER_VERSION: string = typeof __EARSHOT_BUILDER_VERSION__ === 'string' ? __EARSHOT_BUILDER_VERSION__ : (() => {
  const hash = createHash('sha256');
  for (const file of readdirSync(HERE).filter((f) => f.endsWith('.ts')).sort()) {
    hash.update(file).update(readFileSync(join(HERE, file)));
  }
  // The 8-bit arithmetic the builder uses lives in src/ (precision.ts re-exports it).
  hash.update(readFileSync(new URL('../../src/models/quantize/weights.ts', import.meta.url)));
  return hash.digest('hex').slice(0, 16);
})();

const PRODUCER = 'earshot-test-model';

/** Hub file names for one weight format, e.g. onnx/encoder_model_int8.onnx. */
export function onnxFileNames(dtype: Dtype): { encoder: string; decoder: string } {
  const suffix = DTYPE_SUFFIX[dtype];
  return { encoder: `onnx/encoder_model${suffix}.onnx`, decoder: `onnx/decoder_model_merged${suffix}.onnx` };
}

export interface BuildOptions extends TestModelOptions {
  /** Folder to write; created if missing, existing files of the same names are overwritten. */
  outDir: string;
}

/** Builds the model folder and returns the list of files written (relative paths). */
export function buildTestModel(options: BuildOptions): string[] {
  const o = resolveOptions(options);
  const dims = DIMS[o.dims];
  const spec = PRESET_SPECS[o.preset];
  mkdirSync(join(options.outDir, 'onnx'), { recursive: true });
  const written: string[] = [];
  const write = (name: string, data: string | Uint8Array) => {
    writeFileSync(join(options.outDir, name), data);
    written.push(name);
  };
  for (const [name, text] of configFiles(o, BUILDER_VERSION)) write(name, text);
  for (const dtype of o.dtypes) {
    const files = onnxFileNames(dtype);
    const halfIo = o.halfIo && dtype === 'fp16';
    write(files.encoder, buildEncoder(dims, spec.nMels, dtype, o.seed, halfIo).toBytes(PRODUCER));
    write(files.decoder, buildDecoder(dims, spec.vocabSize, dtype, o.seed, { crossAttentions: o.timestamped, merged: o.merged, halfIo }).toBytes(PRODUCER));
  }
  return written;
}
