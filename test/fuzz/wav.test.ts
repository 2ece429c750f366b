// Fuzzing the WAV reader (src/audio/wav.ts) with fast-check: random bytes, random bytes behind a
// RIFF/WAVE header, and real WAV files (several codecs and layouts, plus the first 4 KB of the
// shared clips) damaged by byte flips, edge values in header fields, truncation, insertion,
// deletion and duplication. Every input must give either valid audio (finite samples in range, a
// sane rate and channel count) or a typed EarshotError, never another exception, and quickly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { isEarshotError } from '../../src/errors.ts';
import { parseWav, parseWavHeader } from '../../src/audio/wav.ts';
import { jfkClip } from '../server/helpers.ts';
import { fuzzParams, mutated, timed } from './support.ts';

/** Slowest a single input may take: a hang or a quadratic path shows up as a failure. */
const PER_INPUT_MS = 500;
const SHARED = join(new URL('../../', import.meta.url).pathname, '../shared/audio/formats');

function riff(fmt: { tag: number; channels: number; rate: number; bits: number; extensible?: boolean }, data: Uint8Array, extra?: Uint8Array): Uint8Array {
  const blockAlign = (fmt.channels * fmt.bits) / 8;
  const fmtBody = Buffer.alloc(fmt.extensible ? 40 : 16);
  fmtBody.writeUInt16LE(fmt.extensible ? 0xfffe : fmt.tag, 0);
  fmtBody.writeUInt16LE(fmt.channels, 2);
  fmtBody.writeUInt32LE(fmt.rate, 4);
  fmtBody.writeUInt32LE(fmt.rate * blockAlign, 8);
  fmtBody.writeUInt16LE(blockAlign, 12);
  fmtBody.writeUInt16LE(fmt.bits, 14);
  if (fmt.extensible) {
    fmtBody.writeUInt16LE(22, 16);
    fmtBody.writeUInt16LE(fmt.bits, 18);
    fmtBody.writeUInt32LE(3, 20);
    // KSDATAFORMAT_SUBTYPE: the format tag, then the fixed GUID tail.
    Buffer.from([fmt.tag, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71]).copy(fmtBody, 24);
  }
  const chunk = (id: string, body: Uint8Array): Buffer => {
    const h = Buffer.alloc(8);
    h.write(id, 0, 'latin1');
    h.writeUInt32LE(body.length, 4);
    return Buffer.concat([h, body, body.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
  };
  const body = Buffer.concat([Buffer.from('WAVE'), chunk('fmt ', fmtBody), ...(extra ? [chunk('LIST', extra)] : []), chunk('data', data)]);
  const h = Buffer.alloc(8);
  h.write('RIFF', 0);
  h.writeUInt32LE(body.length, 4);
  return Buffer.concat([h, body]);
}

/** The first `n` bytes of a real WAV, its sizes made to match. */
function cut(file: Buffer, n: number): Uint8Array {
  const b = Buffer.from(file.subarray(0, n));
  const data = b.indexOf('data');
  b.writeUInt32LE(b.length - data - 8, data + 4);
  b.writeUInt32LE(b.length - 8, 4);
  return b;
}

const noise = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7919 + 13) & 0xff);
const f32 = new Float32Array([0, 0.5, -0.5, 1, -1, 0.25, 0.1, -0.9]);

const BASES: Uint8Array[] = [
  jfkClip(0.05),
  riff({ tag: 1, channels: 2, rate: 48000, bits: 16 }, noise(400)),
  riff({ tag: 1, channels: 1, rate: 8000, bits: 8 }, noise(200), new TextEncoder().encode('INFOISFT\x04\x00\x00\x00test')),
  riff({ tag: 1, channels: 1, rate: 22050, bits: 24 }, noise(300)),
  riff({ tag: 1, channels: 3, rate: 16000, bits: 32 }, noise(240)),
  riff({ tag: 3, channels: 1, rate: 16000, bits: 32 }, new Uint8Array(f32.buffer)),
  riff({ tag: 3, channels: 2, rate: 44100, bits: 64 }, new Uint8Array(new Float64Array([0.1, -0.2, 0.3, 0.4]).buffer)),
  riff({ tag: 1, channels: 2, rate: 16000, bits: 16, extensible: true }, noise(256)),
  riff({ tag: 6, channels: 1, rate: 8000, bits: 8 }, noise(100)), // A-law
  riff({ tag: 7, channels: 1, rate: 8000, bits: 8 }, noise(100)), // mu-law
  ...['jfk__wav_s16_8k.wav', 'jfk__wav_s16_stereo_48k.wav'].map((f) => cut(readFileSync(join(SHARED, f)), 4096)),
];

const inputs = fc.oneof(
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.concat([Buffer.from('RIFF\x00\x01\x00\x00WAVE', 'latin1'), b])) },
  { weight: 6, arbitrary: fc.constantFrom(...BASES).chain((b) => mutated(b)) },
);

function checkResult(bytes: Uint8Array, r: { ms: number; value?: ReturnType<typeof parseWav>; error?: unknown }): void {
  assert.ok(r.ms < PER_INPUT_MS, `took ${r.ms.toFixed(0)} ms on ${bytes.length} bytes`);
  if (r.error !== undefined) {
    assert.ok(isEarshotError(r.error), `untyped ${(r.error as Error)?.stack ?? r.error}`);
    assert.ok(['invalid_audio', 'audio_too_long'].includes(r.error.kind), `kind ${r.error.kind}`);
    return;
  }
  const pcm = r.value!;
  assert.ok(Number.isInteger(pcm.sampleRate) && pcm.sampleRate > 0, `rate ${pcm.sampleRate}`);
  assert.ok(Number.isInteger(pcm.channels) && pcm.channels >= 1, `channels ${pcm.channels}`);
  assert.ok(pcm.samples.length > 0);
  for (const s of pcm.samples) assert.ok(Number.isFinite(s), `sample ${s}`);
}

test('the real WAV bases decode (so the mutations start from valid files)', () => {
  for (const b of BASES) {
    const pcm = parseWav(b);
    assert.ok(pcm.samples.length > 0);
  }
});

test('parseWav: valid audio or a typed EarshotError, never another exception, each input within the time bound', async () => {
  await fc.assert(
    fc.asyncProperty(inputs, async (bytes) => checkResult(bytes, await timed(() => parseWav(bytes, { maxDurationS: 600 })))),
    fuzzParams(),
  );
});

test('parseWavHeader fed a growing prefix: a header, a request for more bytes, or a typed error', () => {
  fc.assert(
    fc.property(inputs, fc.integer({ min: 0, max: 64 }), (bytes, cut) => {
      const head = bytes.subarray(0, Math.max(0, bytes.length - cut));
      const t0 = performance.now();
      try {
        const r = parseWavHeader(head, bytes.length, 600);
        if ('needBytes' in r) assert.ok(Number.isInteger(r.needBytes) && r.needBytes > head.length, `needBytes ${r.needBytes} with ${head.length} held`);
        else {
          assert.ok(r.header.blockAlign > 0 && r.header.channels >= 1 && r.header.sampleRate > 0);
          assert.ok(r.header.dataOffset <= bytes.length);
        }
      } catch (e) {
        assert.ok(isEarshotError(e), `untyped ${(e as Error)?.stack ?? e}`);
      }
      assert.ok(performance.now() - t0 < PER_INPUT_MS);
    }),
    fuzzParams(),
  );
});
