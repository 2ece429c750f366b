// `earshot transcribe` end to end: the real binary on built test models (random weights, so the
// words are gibberish and only structure is checked), EARSHOT_HOME in a temp folder and HF_ENDPOINT
// pointing at the fake hub, so nothing can reach the real one. Every run decodes greedily with a
// small token budget (FAST) to stay quick. The child runs asynchronously so that this process's
// fake hub can answer it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { LANGUAGES } from '../../src/decoding/languages.ts';
import { startFakeHub, type FakeHub } from '../helpers/fake-hub.ts';
import { writeWav } from '../audio/support.ts';

const BIN = new URL('../../bin/earshot.js', import.meta.url).pathname;
const ROOT = new URL('../../', import.meta.url).pathname;
const JFK = join(ROOT, 'samples/jfk.wav');
const SYNTH = join(ROOT, '../shared/audio/synth-en/synth_en_01.wav');
const BAD = join(ROOT, '../shared/audio/bad/random_bytes.wav');
const REPO = 'test-org/whisper-multi';
/** Greedy, and a short token budget: random weights never emit end-of-text, so every window would
 *  otherwise run to the full 224 tokens. */
const FAST = ['--temperature', '0', '--sample-len', '16'];
const SRT_TIME = /^(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)$/;
const VTT_TIME = /^\d\d:\d\d:\d\d\.\d\d\d --> \d\d:\d\d:\d\d\.\d\d\d$/;

let english: string;
let hub: FakeHub;
let home: string;

before(async () => {
  english = testModelDir({ preset: 'english' });
  hub = await startFakeHub({ repos: { [REPO]: testModelDir({ preset: 'multilingual' }) } });
  home = mkdtempSync(join(tmpdir(), 'earshot-transcribe-'));
});
after(async () => {
  await hub.close();
  rmSync(home, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function earshot(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<Run> {
  const env = { PATH: process.env.PATH ?? '', HOME: home, EARSHOT_HOME: home, HF_ENDPOINT: hub.url, ...opts.env };
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'transcribe', ...args], { env, cwd: opts.cwd ?? home }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l.length > 0);
const squash = (s: string): string => s.replace(/\s+/g, '');

/** Checks SRT numbering and timecodes; returns the cues' text. */
function srtCues(srt: string): string[] {
  const blocks = srt.trim().split(/\n\n/);
  return blocks.map((block, i) => {
    const [n, time, ...text] = block.split('\n');
    assert.equal(n, String(i + 1), `cue ${i + 1} is numbered in order`);
    const m = SRT_TIME.exec(time ?? '');
    assert.ok(m, `cue ${i + 1} has an SRT time line: ${time}`);
    const secs = (h: string, mi: string, s: string, ms: string): number => +h * 3600 + +mi * 60 + +s + +ms / 1000;
    assert.ok(secs(m[1]!, m[2]!, m[3]!, m[4]!) <= secs(m[5]!, m[6]!, m[7]!, m[8]!), `cue ${i + 1} starts before it ends`);
    assert.ok(text.join('').trim().length > 0, `cue ${i + 1} has text`);
    return text.join('\n');
  });
}

test('a local model folder: txt to stdout, nothing else on either stream', async () => {
  const r = await earshot([JFK, '--model', english, ...FAST, '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'no progress bar or log when stderr is not a terminal');
  assert.match(r.stdout, /^[^\n]*\S[^\n]*\n$/, 'one non-empty line of text');
});

test('silence: no text with the default VAD filter, invented text with --no-vad-filter', async () => {
  const silence = join(home, 'silence.wav');
  writeFileSync(silence, writeWav({ coding: 's16', sampleRate: 16000, channels: [new Float32Array(16000 * 6)] }));
  const filtered = await earshot([silence, '--model', english, ...FAST, '--threads', '1']);
  assert.equal(filtered.code, 0, filtered.stderr);
  assert.equal(filtered.stdout.trim(), '');
  const unfiltered = await earshot([silence, '--model', english, ...FAST, '--threads', '1', '--no-vad-filter']);
  assert.equal(unfiltered.code, 0, unfiltered.stderr);
  assert.ok(unfiltered.stdout.trim().length > 0, 'random weights invent text on silence when nothing filters it');
});

test('--output-dir with two files writes two numbered SRT files and prints their paths', async () => {
  const out = join(home, 'subs');
  const r = await earshot([JFK, SYNTH, '--model', english, ...FAST, '--format', 'srt', '--output-dir', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(out).sort(), ['jfk.srt', 'synth_en_01.srt']);
  assert.deepEqual(lines(r.stdout), [join(out, 'jfk.srt'), join(out, 'synth_en_01.srt')]);
  for (const f of ['jfk.srt', 'synth_en_01.srt']) {
    const srt = readFileSync(join(out, f), 'utf8');
    assert.ok(srt.endsWith('\n'));
    assert.ok(srtCues(srt).length >= 1, `${f} has cues`);
  }
});

test('a bad file among good ones: exit 1, one stderr line naming it, the good file still written', async () => {
  const cwd = join(home, 'cwd');
  mkdirSync(cwd);
  const r = await earshot([SYNTH, BAD, '--model', english, ...FAST, '--format', 'vtt'], { cwd });
  assert.equal(r.code, 1);
  const errors = lines(r.stderr);
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, /^earshot: \S*random_bytes\.wav: /);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  // Several files and no --output-dir: <name>.<ext> in the current directory.
  assert.deepEqual(readdirSync(cwd), ['synth_en_01.vtt']);
  const vtt = readFileSync(join(cwd, 'synth_en_01.vtt'), 'utf8');
  const [header, ...cues] = vtt.trim().split(/\n\n/);
  assert.equal(header, 'WEBVTT');
  assert.ok(cues.length >= 1);
  for (const cue of cues) assert.match(cue.split('\n')[0]!, VTT_TIME);
});

test('first use pulls the model from the hub, then transcribes (verbose_json as OpenAI shapes it)', async () => {
  const r = await earshot([SYNTH, '--model', REPO, ...FAST, '--format', 'verbose_json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /fetched onnx\/encoder_model\.onnx/);
  assert.ok(existsSync(join(home, 'models', 'test-org', 'whisper-multi', 'onnx', 'decoder_model_merged.onnx')));
  const v = JSON.parse(r.stdout) as Record<string, any>;
  assert.deepEqual(Object.keys(v), ['task', 'language', 'duration', 'text', 'segments']);
  assert.equal(v.task, 'transcribe');
  assert.ok([...LANGUAGES.values()].includes(v.language), `language is a detected language name: ${v.language}`);
  assert.ok(Math.abs(v.duration - 3.628) < 0.01, `duration ${v.duration}`);
  assert.ok(v.segments.length >= 1);
  const keys = ['id', 'seek', 'start', 'end', 'text', 'tokens', 'temperature', 'avg_logprob', 'compression_ratio', 'no_speech_prob'];
  v.segments.forEach((s: Record<string, any>, i: number) => {
    assert.deepEqual(Object.keys(s), keys);
    assert.equal(s.id, i);
    assert.equal(s.temperature, 0, '--temperature 0 means no fallback');
    assert.ok(s.start <= s.end);
  });
  assert.equal(squash(v.text), squash(v.segments.map((s: { text: string }) => s.text).join('')));

  // Now cached: offline works and asks the hub nothing.
  const requests = hub.requests.length;
  const again = await earshot([SYNTH, '--model', REPO, ...FAST, '--format', 'json'], { env: { EARSHOT_OFFLINE: '1' } });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(hub.requests.length, requests);
  assert.deepEqual(JSON.parse(again.stdout), { text: v.text.trim() }, 'the same model and audio give the same text');
});

test('offline with nothing cached: one line naming the missing file and the pull command', async () => {
  const r = await earshot([SYNTH], { env: { EARSHOT_OFFLINE: '1' } });
  assert.notEqual(r.code, 0);
  const errors = lines(r.stderr);
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, /^earshot: model "base" is not fully cached .*missing config\.json.*earshot models pull base --dtype fp32$/);
  assert.equal(r.stdout, '');
});

test('a bad option value: one line naming the option, non-zero exit, no work done', async () => {
  const requests = hub.requests.length;
  const [format, beam, temp] = await Promise.all([
    earshot([SYNTH, '--format', 'docx']),
    earshot([SYNTH, '--beam-size', '0']),
    earshot([SYNTH, '--temperature', 'hot']),
  ]);
  for (const [r, re] of [
    [format, /^earshot: invalid --format "docx": expected one of txt, srt, vtt, json, verbose_json$/],
    [beam, /^earshot: invalid --beam-size "0": expected a whole number from 1 to 64$/],
    [temp, /^earshot: invalid --temperature "hot": expected a number from 0 to 1$/],
  ] as const) {
    assert.notEqual(r.code, 0);
    assert.equal(lines(r.stderr).length, 1, r.stderr);
    assert.match(lines(r.stderr)[0]!, re);
    assert.equal(r.stdout, '');
  }
  assert.equal(hub.requests.length, requests, 'no model was fetched');
});
