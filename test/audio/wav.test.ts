// The in-process WAV reader: every encoding and layout it claims to read decodes close to the
// original JFK clip and identically to ffmpeg's decoder (the reference) on the same bytes, and
// every kind of broken or lying file ends in its own typed error.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseWav, parseWavHeader } from '../../src/audio/index.ts';
import { JFK, ffmpeg, ffmpegDecode, jfkSamples, patch, snrDb, writeWav, type WavSpec } from './support.ts';

const dir = mkdtempSync(join(tmpdir(), 'earshot-wav-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const jfk = jfkSamples();
const maxAbsDiff = (a: Float32Array, b: Float32Array) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** ffmpeg's decode of the same bytes: the reference for what a WAV decoder should return. */
function reference(bytes: Uint8Array, name: string): Float32Array {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return ffmpegDecode(path);
}

const codings: { name: string; spec: Partial<WavSpec>; format: string; minSnr: number }[] = [
  { name: 'u8', spec: { coding: 'u8' }, format: 'wav/pcm_u8', minSnr: 25 },
  { name: 's16', spec: { coding: 's16' }, format: 'wav/pcm_s16le', minSnr: Infinity },
  { name: 's24', spec: { coding: 's24' }, format: 'wav/pcm_s24le', minSnr: Infinity },
  { name: 's32', spec: { coding: 's32' }, format: 'wav/pcm_s32le', minSnr: Infinity },
  { name: 'f32', spec: { coding: 'f32' }, format: 'wav/pcm_f32le', minSnr: Infinity },
  { name: 'f64', spec: { coding: 'f64' }, format: 'wav/pcm_f64le', minSnr: Infinity },
  { name: 'extensible s16', spec: { coding: 's16', extensible: true }, format: 'wav/pcm_s16le', minSnr: Infinity },
  { name: 'extensible s24', spec: { coding: 's24', extensible: true }, format: 'wav/pcm_s24le', minSnr: Infinity },
  { name: 'extensible f32', spec: { coding: 'f32', extensible: true }, format: 'wav/pcm_f32le', minSnr: Infinity },
];

for (const c of codings) {
  test(`WAV ${c.name}: matches the original (SNR >= ${c.minSnr} dB) and ffmpeg's decode of the same file`, () => {
    const bytes = writeWav({ sampleRate: 16000, channels: [jfk], coding: 's16', ...c.spec });
    const got = parseWav(bytes);
    assert.equal(got.format, c.format);
    assert.equal(got.sampleRate, 16000);
    assert.equal(got.channels, 1);
    assert.equal(got.samples.length, jfk.length);
    assert.ok(snrDb(jfk, got.samples) >= c.minSnr, `SNR ${snrDb(jfk, got.samples)} dB`);
    assert.ok(maxAbsDiff(reference(bytes, `${c.name}.wav`), got.samples) < 1e-6);
  });
}

for (const codec of ['pcm_mulaw', 'pcm_alaw']) {
  test(`WAV ${codec} (G.711, written by ffmpeg) decodes like ffmpeg and close to the original`, () => {
    const path = join(dir, `${codec}.wav`);
    ffmpeg(['-i', JFK, '-c:a', codec, path]);
    const got = parseWav(readFileSync(path));
    assert.equal(got.format, `wav/${codec}`);
    assert.ok(maxAbsDiff(ffmpegDecode(path), got.samples) < 1e-6);
    assert.ok(snrDb(jfk, got.samples) > 25, `SNR ${snrDb(jfk, got.samples)} dB`);
  });
}

test('extra chunks (LIST, fact, bext, JUNK) and an odd-sized chunk with its pad byte are skipped', () => {
  const odd = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const bytes = writeWav({
    coding: 's16',
    sampleRate: 16000,
    channels: [jfk],
    extraChunks: [
      { id: 'LIST', body: odd },
      { id: 'fact', body: new Uint8Array(4) },
      { id: 'bext', body: new Uint8Array(602).fill(0x41) },
      { id: 'JUNK', body: new Uint8Array(27) },
    ],
  });
  const h = parseWavHeader(bytes, bytes.length);
  assert.ok('header' in h);
  assert.equal(h.header.dataOffset, 12 + 24 + (8 + 12) + (8 + 4) + (8 + 602) + (8 + 28) + 8);
  assert.equal(maxAbsDiff(jfk, parseWav(bytes).samples), 0);
});

test('placeholder data sizes (0 and 0xFFFFFFFF, streaming writers) are read to the end of the file', () => {
  for (const size of [0, 0xffffffff]) {
    const bytes = writeWav({ coding: 's16', sampleRate: 16000, channels: [jfk], dataSizeField: size });
    const h = parseWavHeader(bytes, bytes.length);
    assert.ok('header' in h && h.header.readToEnd);
    assert.equal(maxAbsDiff(jfk, parseWav(bytes).samples), 0);
  }
});

test('RF64 (ds64 chunk carrying the data size) reads like the RIFF original', () => {
  const bytes = writeWav({ coding: 's24', sampleRate: 16000, channels: [jfk], rf64: true });
  assert.equal(String.fromCharCode(...bytes.subarray(0, 4)), 'RF64');
  assert.ok(snrDb(jfk, parseWav(bytes).samples) === Infinity);
});

test('stereo is averaged to mono', () => {
  const half = jfk.map((v) => v * 0.5);
  const got = parseWav(writeWav({ coding: 'f32', sampleRate: 16000, channels: [jfk, half] }));
  assert.equal(got.channels, 2);
  for (let i = 0; i < jfk.length; i += 97) assert.ok(Math.abs(got.samples[i]! - jfk[i]! * 0.75) < 1e-6);
});

test('ffmpeg-written variants at 8/22.05/44.1/48 kHz, mono and stereo, keep their rate and content', () => {
  for (const [rate, ch] of [[8000, 1], [22050, 1], [44100, 2], [48000, 2]] as const) {
    const path = join(dir, `jfk_${rate}_${ch}.wav`);
    ffmpeg(['-i', JFK, '-ar', String(rate), '-ac', String(ch), '-c:a', 'pcm_s16le', path]);
    const got = parseWav(readFileSync(path));
    assert.equal(got.sampleRate, rate);
    assert.equal(got.channels, ch);
    assert.ok(Math.abs(got.samples.length / rate - 11) < 0.01);
    assert.ok(maxAbsDiff(ffmpegDecode(path, ch), got.samples) < 1e-6);
  }
});

// --- hostile inputs -------------------------------------------------------------------------

const good = writeWav({ coding: 's16', sampleRate: 16000, channels: [jfk.subarray(0, 16000)] });
const floats = writeWav({ coding: 'f32', sampleRate: 16000, channels: [jfk.subarray(0, 16000)] });
// Offsets in a plain 16-byte-fmt file: fmt body at 20, data size at 40, samples from 44.
const FMT = 20;

const hostile: { name: string; bytes: Uint8Array; code: string; kind?: string }[] = [
  { name: 'file cut inside the header', bytes: good.subarray(0, 30), code: 'truncated' },
  { name: 'file cut after the fmt chunk', bytes: good.subarray(0, 36), code: 'no_audio_data' },
  { name: 'zero channels', bytes: patch(good, FMT + 2, 0, 2), code: 'bad_header' },
  { name: 'zero sample rate', bytes: patch(good, FMT + 4, 0), code: 'bad_header' },
  { name: 'absurd sample rate', bytes: patch(good, FMT + 4, 0xfffffff0), code: 'bad_header' },
  { name: 'block align mismatch', bytes: patch(good, FMT + 12, 3, 2), code: 'bad_header' },
  { name: 'fmt chunk too short', bytes: patch(good, 16, 8), code: 'bad_header' },
  { name: 'unknown codec (IMA ADPCM tag)', bytes: patch(good, FMT, 0x11, 2), code: 'unsupported_format' },
  { name: 'NaN float sample', bytes: patch(floats, 44 + 4 * 5000, 0x7fc00000), code: 'non_finite_samples' },
  { name: '+Infinity float sample', bytes: patch(floats, 44 + 4 * 15999, 0x7f800000), code: 'non_finite_samples' },
  { name: 'not RIFF at all', bytes: patch(good, 8, 0x45564157 + 1), code: 'bad_header' },
  { name: 'header-only (no samples)', bytes: good.subarray(0, 44).slice(), code: 'no_audio_data' },
];
hostile[hostile.length - 1]!.bytes = patch(hostile[hostile.length - 1]!.bytes, 40, 0);

for (const h of hostile) {
  test(`hostile WAV: ${h.name} -> invalid_audio/${h.code}`, () => {
    assert.throws(() => parseWav(h.bytes), { name: 'EarshotError', kind: h.kind ?? 'invalid_audio', code: h.code });
  });
}

test('a NaN in a 64-bit float file is found too', () => {
  const f64 = writeWav({ coding: 'f64', sampleRate: 16000, channels: [jfk.subarray(0, 100)] });
  const dv = new DataView(f64.buffer.slice(0));
  dv.setFloat64(44 + 8 * 50, Number.NEGATIVE_INFINITY, true);
  assert.throws(() => parseWav(new Uint8Array(dv.buffer)), { code: 'non_finite_samples' });
});

test('a data chunk declaring more than the file holds is decoded as far as the bytes go, as ffmpeg does', () => {
  const oneSecond = jfk.subarray(0, 16000);
  // The case: a header declaring 2 GB (~18.6 h at 16 kHz s16) over 1 s of samples, within a 3 h bound.
  const lying = patch(good, 40, 2_000_000_000);
  const got = parseWav(lying, { maxDurationS: 10800 });
  assert.equal(got.samples.length, 16000);
  assert.ok(maxAbsDiff(got.samples, oneSecond) < 1e-4);
  assert.deepEqual(parseWav(lying).samples, got.samples, 'the same without a bound');
  // A file cut inside its data: the whole frames that are there (1000 bytes - 44 of header = 478 frames).
  assert.equal(parseWav(good.subarray(0, 1000)).samples.length, 478);
  assert.deepEqual(parseWav(good.subarray(0, 1001)).samples, parseWav(good.subarray(0, 1000)).samples, 'a half frame at the cut is dropped');
  // The bound applies to what is there: the same 1 s over a 0.5 s bound is still too long.
  assert.throws(() => parseWav(lying, { maxDurationS: 0.5 }), { kind: 'audio_too_long', code: 'too_long' });
});

test('a stream (length unknown) declaring days of audio is too_long from its header alone', () => {
  // 0x7FFFFFFF bytes of 8 kHz u8 mono is ~74 hours: on a stream, the claim is all there is to go by.
  const bytes = patch(writeWav({ coding: 'u8', sampleRate: 8000, channels: [jfk.subarray(0, 100)] }), 40, 0x7fffffff);
  assert.throws(() => parseWavHeader(bytes, Infinity, 3600), { kind: 'audio_too_long', code: 'too_long' });
  const r = parseWavHeader(bytes, Infinity, 100 * 3600);
  assert.ok('header' in r && r.header.dataBytes === 0x7fffffff);
});

test('maxDurationS applies to real length as well', () => {
  assert.throws(() => parseWav(writeWav({ coding: 's16', sampleRate: 16000, channels: [jfk] }), { maxDurationS: 10 }), {
    code: 'too_long',
  });
  assert.equal(parseWav(writeWav({ coding: 's16', sampleRate: 16000, channels: [jfk] }), { maxDurationS: 11 }).samples.length, jfk.length);
});

test('random bytes behind a RIFF/WAVE signature always give a typed invalid_audio error', () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  let refused = 0;
  for (let trial = 0; trial < 300; trial++) {
    const body = Uint8Array.from({ length: 12 + (trial % 200) }, rand);
    // Keep the signature and, for half the trials, a valid fmt chunk so that parsing goes deeper.
    const prefix = trial % 2 ? good.subarray(0, 36) : good.subarray(0, 12);
    try {
      parseWav(Uint8Array.from([...prefix, ...body]));
    } catch (e) {
      assert.equal((e as { kind?: string }).kind, 'invalid_audio', `trial ${trial}: ${String(e)}`);
      refused++;
    }
  }
  // A random chunk only rarely happens to be a well-formed data chunk.
  assert.ok(refused > 250, `only ${refused} of 300 refused`);
});
