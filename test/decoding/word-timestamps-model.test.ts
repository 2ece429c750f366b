// Word timestamps end to end on built test models (random weights, so the words are gibberish and
// only their consistency is checked): a `timestamped` model's decoder gives softmax rows per
// alignment head; transcribe's words are in order, inside their segment and join to its text;
// verbose_json carries them per segment (CLI) or at the top in OpenAI's shape (server, through the
// `openai` client); a model without cross-attention outputs gives a clear typed error (400).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import OpenAI, { toFile } from 'openai';
import { testModelDir } from '../../scripts/test-model/index.ts';
import { decodeAudio } from '../../src/audio/index.ts';
import type { Transcription } from '../../src/decoding/transcription.ts';
import { transcribeAll, type TranscribeOptions } from '../../src/decoding/transcribe.ts';
import { loadWhisper, unloadAll } from '../../src/runtime/model-cache.ts';
import { render } from '../../src/output/formats.ts';
import type { RunningServer } from '../../src/server/app.ts';
import { isolateHome, JFK, jfkClip, startTestServer } from '../server/helpers.ts';

const timestamped = () => testModelDir({ preset: 'english', timestamped: true });
// Random weights never end a window: a short cap keeps each window cheap.
const OPTS: TranscribeOptions = {
  wordTimestamps: true,
  temperature: 0,
  sampleLen: 16,
  compressionRatioThreshold: null,
  logprobThreshold: null,
  noSpeechThreshold: null,
};

let samples: Float32Array;
let result: Transcription;
before(async () => {
  samples = (await decodeAudio(readFileSync(JFK))).samples.subarray(0, 16000 * 8);
  result = await transcribeAll(await loadWhisper(timestamped()), samples, OPTS);
});
after(() => unloadAll());

test('crossAttentions: one softmax row per position from `from`, over the 1500 encoder frames, per head', async () => {
  const w = await loadWhisper(timestamped());
  const mel = await w.mel.longForm(samples);
  const encoded = await w.runner.encode(mel.window(0, 3000, new Float32Array(mel.nMels * 3000)), 1);
  const heads = w.tokenizer.generationConfig.alignmentHeads;
  assert.ok(heads.length > 0);
  const tokens = [50257, 50362, 400, 370, 11, 50256];
  const att = await w.runner.crossAttentions!(tokens, encoded, heads, 2);
  assert.equal(att.rows, tokens.length - 2);
  assert.equal(att.frames, 1500);
  assert.equal(att.weights.length, heads.length);
  for (const wts of att.weights) {
    assert.equal(wts.length, att.rows * att.frames);
    for (let r = 0; r < att.rows; r++) {
      const sum = wts.subarray(r * 1500, (r + 1) * 1500).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-3, `row ${r} sums to ${sum}`);
    }
  }
  await assert.rejects(w.runner.crossAttentions!(tokens, encoded, [[99, 0]]), { code: 'bad_alignment_heads' });
});

test('words: in order, inside their segment, joined equal to the segment text', () => {
  const withText = result.segments.filter((s) => s.text !== '');
  assert.ok(withText.length > 0, 'the model said something');
  let previous = 0;
  for (const s of result.segments) {
    assert.ok(Array.isArray(s.words), `segment ${s.id} has words`);
    assert.equal(s.words!.map((w) => w.word).join(''), s.text, `segment ${s.id}`);
    for (const w of s.words!) {
      assert.ok(w.start <= w.end, `${w.word}: ${w.start} ≤ ${w.end}`);
      assert.ok(w.start >= s.start - 1e-9 && w.end <= s.end + 1e-9, `${w.word} [${w.start}, ${w.end}] inside [${s.start}, ${s.end}]`);
      assert.ok(w.start >= previous - 1e-9, `${w.word} starts at ${w.start}, after the previous word's end ${previous}`);
      previous = w.end;
    }
  }
  assert.ok(result.segments.flatMap((s) => s.words!).length > 1);
});

test('verbose_json: words per segment (the CLI), or one top-level list in OpenAI\'s shape', () => {
  const cli = JSON.parse(render(result, 'verbose_json')) as { words?: unknown; segments: { text: string; words: { word: string }[] }[] };
  assert.equal(cli.words, undefined);
  for (const s of cli.segments) assert.equal(s.words.map((w) => w.word).join(''), s.text);
  const api = JSON.parse(render(result, 'verbose_json', { topLevelWords: true })) as {
    words: { word: string; start: number; end: number }[];
    segments: Record<string, unknown>[];
  };
  const all = result.segments.flatMap((s) => s.words!);
  assert.equal(api.words.length, all.length);
  api.words.forEach((w, i) => {
    assert.deepEqual(Object.keys(w).sort(), ['end', 'start', 'word']);
    assert.equal(w.word, all[i]!.word.trim());
    assert.equal(w.start, all[i]!.start);
  });
  for (const s of api.segments) assert.equal(s.words, undefined);
});

test('without word timestamps, segments have no words', async () => {
  const plain = await transcribeAll(await loadWhisper(timestamped()), samples.subarray(0, 16000 * 3), { ...OPTS, wordTimestamps: false });
  for (const s of plain.segments) assert.equal(s.words, undefined);
});

test('a model without cross-attention outputs: a typed error that says what is missing', async () => {
  const w = await loadWhisper(testModelDir({ preset: 'english' }));
  await assert.rejects(transcribeAll(w, samples.subarray(0, 16000 * 3), OPTS), (e: Error & { code?: string; kind?: string }) => {
    assert.equal(e.code, 'no_cross_attentions');
    assert.equal(e.kind, 'invalid_argument');
    assert.match(e.message, /cross-attention outputs.*_timestamped/);
    return true;
  });
});

let server: RunningServer;
let home: string;

test('server: timestamp_granularities[]=word through the openai client', async (t) => {
  home = isolateHome();
  server = await startTestServer({ model: timestamped() });
  t.after(async () => {
    await server.app.close();
    rmSync(home, { recursive: true, force: true });
  });
  const client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });
  const r = await client.audio.transcriptions.create({
    file: await toFile(jfkClip(4), 'clip.wav', { type: 'audio/wav' }),
    model: 'whisper-1',
    response_format: 'verbose_json',
    timestamp_granularities: ['word', 'segment'],
    temperature: 0.3,
  });
  assert.ok(Array.isArray(r.words) && r.words.length > 0, 'top-level words');
  let previous = 0;
  for (const w of r.words) {
    assert.deepEqual(Object.keys(w).sort(), ['end', 'start', 'word']);
    assert.equal(w.word, w.word.trim());
    assert.ok(w.start <= w.end && w.start >= previous - 1e-9 && w.end <= r.duration + 1e-9);
    previous = w.end;
  }
  assert.equal(r.words.map((w) => w.word).join(''), r.text.replace(/\s+/g, ''), 'the words are the text, spaces aside');
  const plain = await client.audio.transcriptions.create({
    file: await toFile(jfkClip(2), 'clip.wav', { type: 'audio/wav' }),
    model: 'whisper-1',
    response_format: 'verbose_json',
    timestamp_granularities: ['segment'],
  });
  assert.equal(plain.words, undefined);
  await assert.rejects(
    client.audio.transcriptions.create({ file: await toFile(jfkClip(2), 'clip.wav'), model: 'whisper-1', timestamp_granularities: ['word'] }),
    (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && /verbose_json/.test(e.message),
  );
});

test('test-model builder: `timestamped` adds cross_attentions.N [batch, heads, seq, frames] after the usual outputs', async () => {
  const plain = await ort.InferenceSession.create(join(testModelDir({ preset: 'english' }), 'onnx/decoder_model_merged.onnx'));
  const ts = await ort.InferenceSession.create(join(timestamped(), 'onnx/decoder_model_merged.onnx'));
  const layers = JSON.parse(readFileSync(join(timestamped(), 'config.json'), 'utf8')).decoder_layers as number;
  const extra = Array.from({ length: layers }, (_, l) => `cross_attentions.${l}`);
  assert.deepEqual(ts.outputNames, [...plain.outputNames, ...extra]);
  assert.ok(!plain.outputNames.some((n) => n.startsWith('cross_attentions')));
  const meta = ts.outputMetadata.find((m) => m.name === 'cross_attentions.0');
  assert.ok(meta && meta.isTensor);
  assert.deepEqual(meta.shape, ['batch_size', 4, 'decoder_sequence_length', 'encoder_sequence_length_out']);
  await Promise.all([plain.release(), ts.release()]);
});
