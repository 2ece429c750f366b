// testModelDir builds once per option set and publishes complete folders only, also when two
// processes build the same model at the same time; the CLI writes a folder and refuses bad options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { BUILDER_VERSION, buildTestModel, publishBuild, testModelDir } from '../../scripts/test-model/index.ts';

const repo = new URL('../../', import.meta.url).pathname;
const tsx = ['--import', 'tsx'];

function withRoot(fn: (root: string) => void | Promise<void>) {
  return async () => {
    const root = mkdtempSync(join(tmpdir(), 'earshot-cache-test-'));
    try {
      await fn(root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
}

test(
  'the same options give the same folder, built once; other options another folder',
  withRoot((root) => {
    const a = testModelDir({ preset: 'english' }, root);
    const stamp = statSync(join(a, 'onnx/decoder_model_merged.onnx')).mtimeMs;
    assert.equal(testModelDir({ preset: 'english', dtypes: ['fp32'], dims: 'small', seed: 1 }, root), a);
    assert.equal(statSync(join(a, 'onnx/decoder_model_merged.onnx')).mtimeMs, stamp);
    const b = testModelDir({ preset: 'english', seed: 2 }, root);
    assert.notEqual(b, a);
    assert.ok(existsSync(join(b, 'onnx/encoder_model.onnx')));
    assert.deepEqual(readdirSync(dirname(a)).sort(), [basename(a), basename(b)].sort());
  }),
);

test(
  'cached folders of other builder versions are removed once they are an hour old',
  withRoot((root) => {
    const old = join(root, 'old-version');
    const recent = join(root, 'recent-version');
    mkdirSync(join(old, 'english-small-x'), { recursive: true });
    mkdirSync(recent);
    const twoHoursAgo = new Date(Date.now() - 2 * 3600 * 1000);
    utimesSync(old, twoHoursAgo, twoHoursAgo);
    testModelDir({ preset: 'english' }, root);
    assert.deepEqual(readdirSync(root).sort(), [BUILDER_VERSION, 'recent-version'].sort());
  }),
);

test(
  'publishing a build that lost the race keeps the winner and discards the loser',
  withRoot((root) => {
    const final = join(root, 'model');
    buildTestModel({ preset: 'english', outDir: join(root, 'first') });
    buildTestModel({ preset: 'english', outDir: join(root, 'second') });
    writeFileSync(join(root, 'first', 'which'), 'first');
    writeFileSync(join(root, 'second', 'which'), 'second');
    assert.equal(publishBuild(join(root, 'first'), final), final);
    assert.equal(publishBuild(join(root, 'second'), final), final);
    assert.equal(readFileSync(join(final, 'which'), 'utf8'), 'first');
    assert.deepEqual(readdirSync(root), ['model']);
  }),
);

test(
  'two processes asking for the same model at once both get the one complete folder',
  withRoot(async (root) => {
    const script = `import { testModelDir } from './scripts/test-model/index.ts';
      process.stdout.write(testModelDir({ preset: 'english' }, ${JSON.stringify(root)}));`;
    const run = () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, [...tsx, '--input-type=module', '-e', script], { cwd: repo });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}`))));
      });
    const [a, b] = await Promise.all([run(), run()]);
    assert.equal(a, b);
    assert.ok(existsSync(join(a, 'onnx/decoder_model_merged.onnx')));
    assert.deepEqual(readdirSync(dirname(a)), [basename(a)]); // no half-built leftovers
  }),
);

test(
  'the CLI writes a folder with the requested dtypes, and refuses an unknown preset',
  withRoot((root) => {
    const cli = join(repo, 'scripts/make-test-model.ts');
    const ok = spawnSync(process.execPath, [...tsx, cli, '--preset', 'english', '--dtypes', 'int8', '--out', root], {
      encoding: 'utf8',
    });
    assert.equal(ok.status, 0, ok.stderr);
    const listed = ok.stdout.trim().split('\n');
    assert.ok(listed.includes(join(root, 'onnx/decoder_model_merged_int8.onnx')));
    for (const f of listed) assert.ok(existsSync(f), f);
    assert.equal(JSON.parse(readFileSync(join(root, 'config.json'), 'utf8')).vocab_size, 51864);

    const bad = spawnSync(process.execPath, [...tsx, cli, '--preset', 'klingon', '--out', root], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown preset "klingon"/);
  }),
);
