// Builds a hub-layout model folder for the store tests: the real whisper-tiny JSON files from
// test/fixtures plus `onnx/*.onnx` files of seeded random bytes (the store never parses ONNX).
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FIXTURE = new URL('../fixtures/whisper-tiny/', import.meta.url).pathname;

/** Deterministic pseudo-random bytes: sha256 in counter mode. */
export function seededBytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0, off = 0; off < length; i++, off += 32) {
    createHash('sha256').update(`${seed}:${i}`).digest().copy(out, off);
  }
  return out;
}

export interface ModelFolderOptions {
  /** Graph files to create, relative to `onnx/`, with their sizes. */
  graphs?: Record<string, number>;
  /** Merged into config.json's `transformers.js_config`. */
  jsConfig?: Record<string, unknown>;
}

export const DEFAULT_GRAPHS: Record<string, number> = {
  'encoder_model.onnx': 300_000,
  'decoder_model_merged.onnx': 400_000,
  'encoder_model_quantized.onnx': 90_000,
  'decoder_model_merged_quantized.onnx': 120_000,
  'encoder_model_fp16.onnx': 150_000,
  'decoder_model_merged_fp16.onnx': 200_000,
};

export function makeModelFolder(opts: ModelFolderOptions = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-model-'));
  cpSync(FIXTURE, dir, { recursive: true });
  mkdirSync(join(dir, 'onnx'));
  for (const [name, size] of Object.entries(opts.graphs ?? DEFAULT_GRAPHS)) {
    writeFileSync(join(dir, 'onnx', name), seededBytes(name, size));
  }
  if (opts.jsConfig) {
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    config['transformers.js_config'] = { ...(config['transformers.js_config'] ?? {}), ...opts.jsConfig };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  }
  return dir;
}
