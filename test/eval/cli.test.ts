// `earshot eval` end to end: the real binary on a test model (random weights, so the words are
// gibberish: the checks are on structure and on the arithmetic, not on accuracy) and a temporary
// manifest with two shared clips, a generated silence that should give no text, and a line
// without a reference. Greedy with a small token budget (FAST) to stay quick.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testModelDir } from '../../scripts/test-model/index.ts';
import type { Comparison } from '../../src/eval/compare.ts';
import type { EvalReport } from '../../src/eval/report.ts';
import { writeWav } from '../audio/support.ts';

const BIN = new URL('../../bin/earshot.js', import.meta.url).pathname;
const SHARED = new URL('../../../shared/audio/', import.meta.url).pathname;
const JFK_TEXT = 'And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country.';
const FAST = ['--temperature', '0', '--threads', '1'];

let model: string;
let dir: string;
let manifest: string;

before(() => {
  model = testModelDir({ preset: 'english' });
  dir = mkdtempSync(join(tmpdir(), 'earshot-eval-'));
  mkdirSync(join(dir, 'set'));
  writeFileSync(join(dir, 'silence.wav'), writeWav({ coding: 's16', sampleRate: 16000, channels: [new Float32Array(32000)] }));
  manifest = join(dir, 'set', 'manifest.jsonl');
  const lines = [
    { path: join(SHARED, 'real-en/jfk.wav'), text: JFK_TEXT, language: 'en', duration_s: 11.0 },
    { path: join(SHARED, 'synth-en/synth_en_24.wav'), text: 'The price of the ticket is twenty five dollars.', language: 'en' },
    { path: 'silence.wav', text: '', language: 'en' }, // relative to the folder above set/
    { path: 'bad/nothing-here.wav', text: null, language: null },
  ];
  writeFileSync(manifest, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function earshot(args: string[]): Promise<Run> {
  const env = { PATH: process.env.PATH ?? '', HOME: dir, EARSHOT_HOME: dir, EARSHOT_OFFLINE: '1' };
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'eval', ...args], { env, cwd: dir }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const words = (s: string): number => s.split(' ').filter((w) => w.length > 0).length;

let first: EvalReport;

test('--json: a row per scored file, totals that add up, the null line skipped', async () => {
  const r = await earshot([manifest, '--model', model, ...FAST, '--sample-len', '8', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'no bar when stderr is not a terminal');
  first = JSON.parse(r.stdout) as EvalReport;
  assert.equal(first.report, 'earshot-eval');
  assert.deepEqual(first.files.map((f) => f.path), [join(SHARED, 'real-en/jfk.wav'), join(SHARED, 'synth-en/synth_en_24.wav'), 'silence.wav']);
  assert.equal(first.skipped, 1);
  assert.deepEqual(first.failures, []);
  const [jfk, synth, silence] = first.files as [EvalReport['files'][0], EvalReport['files'][0], EvalReport['files'][0]];
  assert.equal(jfk.normalizedReference, 'and so my fellow americans ask not what your country can do for you ask what you can do for your country');
  assert.equal(synth.normalizedReference, 'the price of the ticket is $25');
  assert.deepEqual([jfk.units, synth.units, silence.units], [22, 7, 0]);
  for (const f of first.files) {
    assert.equal(f.metric, 'wer');
    assert.equal(f.units, words(f.normalizedReference));
    assert.equal(f.hits + f.substitutions + f.deletions, f.units, `${f.path}: reference side`);
    assert.equal(f.hits + f.substitutions + f.insertions, words(f.normalizedHypothesis), `${f.path}: hypothesis side`);
    assert.equal(f.errors, f.substitutions + f.deletions + f.insertions);
    assert.equal(f.rtf, f.processingS / f.durationS);
    assert.ok(f.processingS > 0);
  }
  assert.ok(Math.abs(jfk.durationS - 11) < 0.05 && Math.abs(silence.durationS - 2) < 0.01);
  assert.equal(silence.rate, null, 'an empty reference has no rate');
  assert.equal(silence.insertions, words(silence.normalizedHypothesis), 'whatever it heard in silence is inserted');
  const t = first.totals.wer!;
  const sum = (k: 'units' | 'errors' | 'insertions') => first.files.reduce((a, f) => a + f[k], 0);
  assert.deepEqual([t.files, t.units, t.errors, t.insertions], [3, sum('units'), sum('errors'), sum('insertions')]);
  assert.equal(t.rate, t.errors / t.units);
  assert.equal(first.totals.cer, undefined);
  assert.equal(first.run.rtf, sum2(first, 'processingS') / sum2(first, 'durationS'));
});

function sum2(r: EvalReport, k: 'processingS' | 'durationS'): number {
  return r.files.reduce((a, f) => a + f[k], 0);
}

test('the table, and --compare against the first run (another token budget)', async () => {
  writeFileSync(join(dir, 'first.json'), JSON.stringify(first));
  const compareArgs = [manifest, '--model', model, ...FAST, '--sample-len', '3', '--compare', join(dir, 'first.json')];
  const [r, text] = await Promise.all([earshot([...compareArgs, '--json']), earshot(compareArgs)]);
  assert.equal(r.code, 0, r.stderr);
  const second = JSON.parse(r.stdout) as EvalReport & { compare: Comparison };
  const c = second.compare;
  assert.deepEqual(c.files.map((f) => f.path), first.files.map((f) => f.path));
  c.files.forEach((f, i) => {
    assert.equal(f.before, first.files[i]!.rate);
    assert.equal(f.after, second.files[i]!.rate);
    assert.equal(f.delta, f.before === null || f.after === null ? null : f.after - f.before);
  });
  assert.deepEqual([c.totals.wer!.before, c.totals.wer!.after], [first.totals.wer!.rate, second.totals.wer!.rate]);
  assert.deepEqual([c.onlyBefore, c.onlyAfter], [[], []]);

  assert.equal(text.code, 0, text.stderr);
  const lines = text.stdout.split('\n');
  assert.match(lines[0]!, /^FILE\s+LANG\s+METRIC\s+REF\s+SUB\s+DEL\s+INS\s+RATE\s+RTF$/);
  second.files.forEach((f, i) => {
    const cells = lines[i + 1]!.split(/\s+/);
    assert.deepEqual(cells.slice(0, 8), [f.path, 'en', 'WER', String(f.units), String(f.substitutions), String(f.deletions), String(f.insertions), f.rate === null ? '-' : `${(f.rate * 100).toFixed(1)}%`]);
  });
  assert.match(lines[4]!, new RegExp(`^WER total \\(3 files\\)\\s+${second.totals.wer!.units}\\s`));
  const start = lines.indexOf('before: ' + model + '  after: ' + model);
  assert.ok(start > 0, 'the comparison follows the report');
  assert.match(lines[start + 1]!, /^FILE\s+METRIC\s+BEFORE\s+AFTER\s+DELTA$/);
  const silenceRow = lines.slice(start).find((l) => l.startsWith('silence.wav '))!;
  const s = c.files[2]!;
  assert.match(silenceRow, new RegExp(`^silence\\.wav\\s+WER\\s+${s.insertionsBefore} ins\\s+${s.insertionsAfter} ins\\s`));
});

test('bad input stops before the model loads, with one line', async () => {
  writeFileSync(join(dir, 'bad.jsonl'), '{"path": "a.wav", "text": "hello"}\n{"text": "no path"}\n');
  const [bad, notReport] = await Promise.all([
    earshot([join(dir, 'bad.jsonl'), '--model', join(dir, 'no-such-model')]),
    earshot([manifest, '--model', model, '--compare', manifest]),
  ]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^earshot: \S*bad\.jsonl:2: path: .*\n$/);
  assert.equal(notReport.code, 1);
  assert.match(notReport.stderr, /^earshot: \S*manifest\.jsonl is not JSON: expected the output of earshot eval --json\n$/);
});
