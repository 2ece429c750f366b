// `earshot quantize` from the command line: one clear line on stderr and exit 1 for a missing folder,
// a model that is already quantised and an unknown --to; a summary on stdout when it works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { tempDir } from './support.ts';

const bin = new URL('../../bin/earshot.js', import.meta.url).pathname;
const earshot = (...args: string[]) => spawnSync(process.execPath, [bin, 'quantize', ...args], { encoding: 'utf8' });

function failsWithOneLine(r: ReturnType<typeof earshot>, pattern: RegExp): void {
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, pattern);
}

test('a missing folder', () => {
  const missing = join(tempDir(), 'no-such-model');
  failsWithOneLine(earshot(missing, '--to', 'int8'), new RegExp(`^earshot: model folder ${missing} does not exist$`));
});

test('an unknown --to', () => {
  failsWithOneLine(earshot(testModelDir({ preset: 'english' }), '--to', 'fp16'), /^earshot: unknown --to "fp16": expected one of int8, uint8, q8$/);
});

test('a model that is already quantised (only 8-bit graphs in the folder)', () => {
  const src = testModelDir({ preset: 'english', dtypes: ['int8'] });
  const dir = join(tempDir(), 'int8-only');
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  copyFileSync(join(src, 'config.json'), join(dir, 'config.json'));
  for (const f of ['encoder_model_int8.onnx', 'decoder_model_merged_int8.onnx']) copyFileSync(join(src, 'onnx', f), join(dir, 'onnx', f));
  failsWithOneLine(earshot(dir, '--to', 'q8'), /^earshot: .* has no fp32 onnx\/encoder_model\.onnx, only onnx\/encoder_model_int8\.onnx: quantisation starts from the fp32 export$/);
});

test('quantises into --out and prints what it wrote', () => {
  const out = join(tempDir(), 'q8');
  const r = earshot(testModelDir({ preset: 'english' }), '--to', 'q8', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /encoder_model_quantized\.onnx: [\d.]+ MB -> [\d.]+ MB \([\d.]+x smaller\)/);
  assert.match(r.stdout, /copied .*config\.json/);
  assert.ok(existsSync(join(out, 'onnx/decoder_model_merged_quantized.onnx')));
  assert.ok(existsSync(join(out, 'tokenizer.json')));
});
