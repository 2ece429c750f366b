// Names that become paths: repository ids, revisions and file paths are validated, and a --model
// argument resolves to a catalogue entry, a hub repository or a local folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEarshotError } from '../../src/errors.ts';
import { CATALOGUE, availableDtypes, checkDtypesAvailable } from '../../src/models/catalogue.ts';
import { isRepoId, validateRepoFilePath, validateRevision } from '../../src/models/ids.ts';
import { cacheDir, checkModelFolder, parseModelRef } from '../../src/models/model-ref.ts';

const code = (c: string) => (e: unknown) => isEarshotError(e) && e.code === c;

test('repository ids follow the hub rules', () => {
  for (const ok of ['onnx-community/whisper-tiny.en', 'Xenova/whisper-large-v3', 'a/b', 'a_b/c.d-e']) assert.ok(isRepoId(ok), ok);
  for (const bad of ['tiny', 'a/b/c', '../x', 'a/..', 'a/.b', 'a/b.', '/a/b', 'a//b', 'a/b--c', 'a/b c', 'a\\b/c', '']) {
    assert.ok(!isRepoId(bad), bad);
  }
});

test('file paths cannot leave the model folder', () => {
  for (const ok of ['config.json', 'onnx/encoder_model.onnx_data_1']) assert.equal(validateRepoFilePath(ok), ok);
  for (const bad of ['../x', 'onnx/../../x', '/etc/passwd', 'C:/x', 'a\\b', 'a//b', './a', 'a/', '', 'a\0b']) {
    assert.throws(() => validateRepoFilePath(bad), code('bad_file_path'), JSON.stringify(bad));
  }
  for (const bad of ['..', 'a/b', 'x y', '']) assert.throws(() => validateRevision(bad), code('bad_revision'), bad);
});

test('catalogue names, whisper- names and repo ids resolve to the catalogue', () => {
  for (const spec of ['tiny', 'whisper-tiny', 'onnx-community/whisper-tiny', 'TINY']) {
    const ref = parseModelRef(spec);
    assert.equal(ref.kind, 'hub');
    assert.equal(ref.kind === 'hub' && ref.repo, 'onnx-community/whisper-tiny', spec);
    assert.equal(ref.label, 'tiny');
  }
  const en = parseModelRef('tiny.en');
  assert.ok(en.kind === 'hub' && en.entry?.englishOnly && en.repo === 'onnx-community/whisper-tiny.en');
  const other = parseModelRef('someone/whisper-custom');
  assert.ok(other.kind === 'hub' && other.entry === undefined && other.repo === 'someone/whisper-custom');
});

test('paths resolve to local folders; unknown names are a clear error', () => {
  const ref = parseModelRef('./some/where');
  assert.ok(ref.kind === 'local' && ref.dir === join(process.cwd(), 'some/where'));
  assert.equal(parseModelRef('/abs/model').kind, 'local');
  assert.throws(() => parseModelRef('no-such-model'), (e: unknown) => isEarshotError(e) && e.code === 'unknown_model' && /tiny/.test(e.message));
});

test('a local folder must look like a model folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-notmodel-'));
  assert.throws(() => checkModelFolder(dir), code('not_a_model_folder'));
  assert.throws(() => checkModelFolder(join(dir, 'absent')), code('no_such_folder'));
  writeFileSync(join(dir, 'config.json'), '{}');
  checkModelFolder(dir);
});

test('cache folders sit under <home>/models/<owner>/<name>', () => {
  const s = { home: '/h', endpoint: 'http://x', offline: false };
  assert.equal(cacheDir(s, 'onnx-community/whisper-tiny'), '/h/models/onnx-community/whisper-tiny');
  assert.equal(cacheDir(s, 'a/b', 'v1.0'), '/h/models/a/b@v1.0');
});

test('the catalogue covers every size, its .en variants, and checks dtypes', () => {
  const names = CATALOGUE.map((e) => e.name);
  for (const n of ['tiny', 'tiny.en', 'base', 'base.en', 'small', 'small.en', 'medium', 'medium.en', 'large-v3', 'large-v3-turbo']) {
    assert.ok(names.includes(n), n);
  }
  for (const e of CATALOGUE) {
    assert.ok(availableDtypes(e, 'encoder').includes(e.defaultDtype), e.name);
    assert.ok(availableDtypes(e, 'decoder').includes(e.defaultDtype), e.name);
  }
  const turbo = CATALOGUE.find((e) => e.name === 'large-v3-turbo')!;
  assert.throws(() => checkDtypesAvailable(turbo, { encoder: 'fp32', decoder: 'fp32' }), (e: unknown) =>
    isEarshotError(e) && e.code === 'dtype_unavailable' && /no fp32 decoder/.test(e.message));
});
