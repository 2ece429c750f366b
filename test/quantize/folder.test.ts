// The files a quantisation writes: hub names per target, the JSON files of a new folder, the 3x
// size reduction on the tiny-dims model (the embedding must be 8-bit too), refusal to overwrite,
// in-place writing beside the fp32 files, and fp32 weights read from external data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { quantizeFolder } from '../../src/models/quantize/index.ts';
import { onnx, type Tensor } from '../../src/models/quantize/onnx.ts';
import { componentFiles } from '../../src/models/model-files.ts';
import { quantizedCopy, tempDir } from './support.ts';

const size = (path: string) => statSync(path).size;

test('tiny dims: encoder + decoder shrink at least 3x', () => {
  const q = quantizedCopy('english', 'int8', { dims: 'tiny' });
  const before = size(join(q.source, 'onnx/encoder_model.onnx')) + size(join(q.source, 'onnx/decoder_model_merged.onnx'));
  const after = size(join(q.outDir, 'onnx/encoder_model_int8.onnx')) + size(join(q.outDir, 'onnx/decoder_model_merged_int8.onnx'));
  assert.ok(before / after >= 3, `${before} -> ${after} bytes: ${(before / after).toFixed(2)}x`);
  assert.deepEqual(q.graphs.map((g) => g.targetBytes), [size(join(q.outDir, 'onnx/encoder_model_int8.onnx')), size(join(q.outDir, 'onnx/decoder_model_merged_int8.onnx'))]);
});

test('a new folder gets the hub file names of the target and every JSON file', () => {
  for (const [to, suffix] of [['q8', '_quantized'], ['uint8', '_uint8']] as const) {
    const q = quantizedCopy('english', to);
    assert.deepEqual(readdirSync(join(q.outDir, 'onnx')).sort(), [`decoder_model_merged${suffix}.onnx`, `encoder_model${suffix}.onnx`]);
    const json = readdirSync(q.source).filter((f) => f.endsWith('.json')).sort();
    assert.deepEqual([...q.copied].sort(), json);
    for (const f of json) assert.equal(readFileSync(join(q.outDir, f), 'utf8'), readFileSync(join(q.source, f), 'utf8'), f);
  }
});

/** A private fp32 copy of the small test model (JSON + fp32 graphs), to write into. */
function privateCopy(): string {
  const src = testModelDir({ preset: 'english' });
  const dir = join(tempDir(), 'model');
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  for (const f of readdirSync(src).filter((f) => f.endsWith('.json'))) copyFileSync(join(src, f), join(dir, f));
  for (const f of ['encoder_model.onnx', 'decoder_model_merged.onnx']) copyFileSync(join(src, 'onnx', f), join(dir, 'onnx', f));
  return dir;
}

test('without --out the files go beside the fp32 ones; existing files need force', () => {
  const dir = privateCopy();
  const r = quantizeFolder(dir, { to: 'int8' });
  assert.equal(r.outDir, dir);
  assert.deepEqual(r.copied, []);
  const target = join(dir, 'onnx/encoder_model_int8.onnx');
  const first = readFileSync(target);
  assert.throws(() => quantizeFolder(dir, { to: 'int8' }), /already exists \(pass --force/);
  quantizeFolder(dir, { to: 'int8', force: true, perChannel: true });
  assert.notDeepEqual(readFileSync(target), first, 'replaced by the per-channel version');
  assert.deepEqual(readdirSync(join(dir, 'onnx')).filter((f) => f.endsWith('.partial')), []);
});

test('a folder whose decoder is already quantised leaves no file behind', () => {
  const dir = privateCopy();
  const src = testModelDir({ preset: 'english', dtypes: ['int8'] });
  copyFileSync(join(src, 'onnx/decoder_model_merged_int8.onnx'), join(dir, 'onnx/decoder_model_merged.onnx'));
  assert.throws(() => quantizeFolder(dir, { to: 'q8' }), /decoder_model_merged\.onnx is already quantised/);
  assert.deepEqual(readdirSync(join(dir, 'onnx')).sort(), ['decoder_model_merged.onnx', 'encoder_model.onnx']);
});

/** Moves every initializer over 1 KB of `onnx/<file>` into `onnx/<file>_data`, as exporters do past 2 GB. */
function externalise(dir: string, file: string): number {
  const path = join(dir, 'onnx', file);
  const model = onnx.ModelProto.decode(readFileSync(path));
  const chunks: Uint8Array[] = [];
  let offset = 0;
  let moved = 0;
  for (const t of model.graph!.initializer! as Tensor[]) {
    if (!t.rawData || t.rawData.length < 1024) continue;
    const bytes = Uint8Array.from(t.rawData);
    t.externalData = [
      { key: 'location', value: `${file}_data` },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(bytes.length) },
    ];
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.rawData = new Uint8Array(0);
    // Exporters align each tensor to 4 KB; so do we, to exercise offsets.
    const padded = Math.ceil(bytes.length / 4096) * 4096;
    const chunk = new Uint8Array(padded);
    chunk.set(bytes);
    chunks.push(chunk);
    offset += padded;
    moved++;
  }
  writeFileSync(join(dir, 'onnx', `${file}_data`), Buffer.concat(chunks));
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
  return moved;
}

test('fp32 weights in external data are read; the result is one self-contained file per graph', () => {
  const inline = quantizedCopy('english', 'int8');
  const dir = privateCopy();
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  config['transformers.js_config'] = { ...config['transformers.js_config'], use_external_data_format: true };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  for (const f of ['encoder_model.onnx', 'decoder_model_merged.onnx']) assert.ok(externalise(dir, f) > 10);
  assert.ok(size(join(dir, 'onnx/decoder_model_merged.onnx')) < 100_000);

  const out = join(tempDir(), 'out');
  const r = quantizeFolder(dir, { to: 'int8', outDir: out });
  for (const f of ['encoder_model_int8.onnx', 'decoder_model_merged_int8.onnx']) {
    assert.deepEqual(readFileSync(join(out, 'onnx', f)), readFileSync(join(inline.outDir, 'onnx', f)), `${f} as from inline weights`);
  }
  assert.equal(existsSync(join(out, 'onnx/encoder_model_int8.onnx_data')), false);
  assert.ok(r.graphs[1]!.sourceBytes > 10 * size(join(dir, 'onnx/decoder_model_merged.onnx')), 'source size counts the data file');
  // The copied config says the new files have no external data, and the fp32 ones still do.
  const written = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  const dtypes = { encoder: 'int8', decoder: 'int8' } as const;
  assert.deepEqual(componentFiles('decoder', dtypes, written), ['onnx/decoder_model_merged_int8.onnx']);
  assert.deepEqual(componentFiles('encoder', { encoder: 'fp32', decoder: 'fp32' }, written), ['onnx/encoder_model.onnx', 'onnx/encoder_model.onnx_data']);
});

test('an external data location outside the model folder is refused', () => {
  const dir = privateCopy();
  externalise(dir, 'encoder_model.onnx');
  const path = join(dir, 'onnx/encoder_model.onnx');
  const model = onnx.ModelProto.decode(readFileSync(path));
  const t = model.graph!.initializer!.find((x) => x.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)!;
  t.externalData!.find((e) => e.key === 'location')!.value = '../../etc/passwd';
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
  assert.throws(() => quantizeFolder(dir, { to: 'int8', outDir: join(tempDir(), 'o') }), /must be a file beside the model/);
});
