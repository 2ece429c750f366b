// Subtitle and JSON renderings against hand-written expected files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Segment, Transcription } from '../../src/decoding/transcription.ts';
import { render } from '../../src/output/formats.ts';
import { timecode } from '../../src/output/subtitles.js';

const expected = (name: string) => readFileSync(new URL(`expected/${name}`, import.meta.url), 'utf8');

function seg(id: number, start: number, end: number, text: string): Segment {
  return {
    id, seek: 0, start, end, text, tokens: [50364 + id], temperature: 0,
    avg_logprob: -0.25, compression_ratio: 1.1, no_speech_prob: 0.01,
  };
}

const sample: Transcription = {
  task: 'transcribe',
  language: 'en',
  languageProbability: 0.98,
  duration: 3603,
  text: ' And so, my fellow Americans, ask not what your country can do for you.',
  segments: [
    seg(0, 0, 2.5, ' And so, my fellow Americans,'),
    seg(1, 2.5, 65.0416, ' ask not what your country can do for you.'),
    seg(2, 3590, 3595, '   '), // empty after trimming: no cue, no number
    seg(3, 3600.1, 3603, ' first line\n second --> line '),
  ],
};

test('timecodes round to the millisecond and carry hours', () => {
  assert.equal(timecode(0, ','), '00:00:00,000');
  assert.equal(timecode(1, '.'), '00:00:01.000');
  assert.equal(timecode(59.9996, ','), '00:01:00,000');
  assert.equal(timecode(3723.0456, '.'), '01:02:03.046');
  assert.equal(timecode(-0.2, ','), '00:00:00,000');
});

test('SRT: numbered cues, comma decimal marker, blank line between cues', () => {
  assert.equal(render(sample, 'srt'), expected('sample.srt'));
});

test('WebVTT: header, dot decimal marker, no numbers', () => {
  assert.equal(render(sample, 'vtt'), expected('sample.vtt'));
});

test('text and json carry the trimmed full text', () => {
  assert.equal(render(sample, 'text'), 'And so, my fellow Americans, ask not what your country can do for you.\n');
  assert.deepEqual(JSON.parse(render(sample, 'json')), {
    text: 'And so, my fellow Americans, ask not what your country can do for you.',
  });
});

test('verbose_json has the shape of OpenAI\'s, with the language as a name', () => {
  const v = JSON.parse(render(sample, 'verbose_json'));
  assert.deepEqual(Object.keys(v), ['task', 'language', 'duration', 'text', 'segments']);
  assert.equal(v.language, 'english');
  assert.equal(v.duration, 3603);
  assert.equal(v.segments.length, 4);
  assert.deepEqual(Object.keys(v.segments[0]), [
    'id', 'seek', 'start', 'end', 'text', 'tokens', 'temperature', 'avg_logprob', 'compression_ratio', 'no_speech_prob',
  ]);
});
