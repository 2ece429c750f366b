// decodeAudio end to end: every clip of the shared set (by path and by bytes), more containers
// and codecs generated with ffmpeg, the manifest's expectations for broken inputs, the duration
// bound against decompression bombs, abort, and clean-up (no child process, no temporary file).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeAudio, type DecodedAudio } from '../../src/audio/index.ts';
import {
  JFK,
  SHARED_AUDIO,
  bestLag,
  correlation,
  ffmpeg,
  ffmpegDecode,
  flacSilence,
  jfkSamples,
  manifest,
  patch,
  snrDb,
  writeWav,
} from './support.ts';

const dir = mkdtempSync(join(tmpdir(), 'earshot-decode-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const jfk = jfkSamples();

/** Both ways in: a path, and the bytes of an upload. */
async function both(path: string, opts?: Parameters<typeof decodeAudio>[1]): Promise<DecodedAudio[]> {
  return [await decodeAudio(path, opts), await decodeAudio(readFileSync(path), opts)];
}

/** Child processes of this test process that are ffmpeg (Linux /proc). */
function ffmpegChildren(): string[] {
  const pids = readdirSync(`/proc/${process.pid}/task`).flatMap((t) =>
    readFileSync(`/proc/${process.pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean),
  );
  return pids.filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').includes('ffmpeg');
    } catch {
      return false;
    }
  });
}

const ourTempDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('earshot-audio-'));

for (const folder of ['real-en', 'real-zh', 'synth-en', 'synth-zh']) {
  test(`every ${folder} clip decodes to the manifest's duration (within 1 ms), rate and channels`, async () => {
    for (const e of manifest(folder)) {
      for (const d of await both(`${SHARED_AUDIO}${e.path}`)) {
        assert.equal(d.sampleRate, 16000);
        assert.equal(d.sourceSampleRate, e.sample_rate, e.path);
        assert.equal(d.sourceChannels, e.channels, e.path);
        assert.ok(Math.abs(d.durationS - e.duration_s!) <= 0.001, `${e.path}: ${d.durationS} vs ${e.duration_s}`);
        assert.equal(d.samples.length, Math.round(d.durationS * 16000));
      }
    }
  });
}

// How close each variant must come to the 16 kHz original, after alignment (+-75 ms: fragmented
// MP4 keeps AAC's 64 ms of priming). Lossless WAV is compared by SNR (the 8 kHz one has lost
// everything above 4 kHz); lossy codecs change the waveform, so their normalised correlation is
// compared instead.
const FORMAT_BOUNDS: Record<string, { minSnrDb?: number; minCorrelation: number; durationTolS: number }> = {
  'formats/jfk__wav_s16_8k.wav': { minSnrDb: 30, minCorrelation: 0.999, durationTolS: 0.001 },
  'formats/jfk__wav_s16_stereo_48k.wav': { minSnrDb: 60, minCorrelation: 0.9999, durationTolS: 0.001 },
  'formats/jfk__mp3_cbr128_44k.mp3': { minSnrDb: 20, minCorrelation: 0.99, durationTolS: 0.06 },
  'formats/jfk__opus_webm_mediarecorder_style.webm': { minCorrelation: 0.99, durationTolS: 0.05 },
  'formats/jfk__m4a_aac.m4a': { minCorrelation: 0.99, durationTolS: 0.05 },
};

function assertCloseToJfk(d: DecodedAudio, what: string, b: { minSnrDb?: number; minCorrelation: number }): void {
  const lag = bestLag(jfk, d.samples, 1200);
  const corr = correlation(jfk, d.samples, lag);
  assert.ok(corr >= b.minCorrelation, `${what}: correlation ${corr.toFixed(5)} at lag ${lag}`);
  if (b.minSnrDb !== undefined) {
    const snr = snrDb(jfk, d.samples, lag);
    assert.ok(snr >= b.minSnrDb, `${what}: SNR ${snr.toFixed(1)} dB`);
  }
}

test('every shared format variant decodes close to the 16 kHz original, by path and by bytes', async () => {
  const entries = manifest('formats');
  assert.deepEqual(entries.map((e) => e.path).sort(), Object.keys(FORMAT_BOUNDS).sort());
  for (const e of entries) {
    const b = FORMAT_BOUNDS[e.path]!;
    for (const d of await both(`${SHARED_AUDIO}${e.path}`)) {
      assert.equal(d.sourceSampleRate, e.sample_rate, e.path);
      assert.equal(d.sourceChannels, e.channels, e.path);
      assert.ok(Math.abs(d.durationS - e.duration_s!) <= b.durationTolS, `${e.path}: ${d.durationS}s`);
      assertCloseToJfk(d, e.path, b);
    }
  }
});

// What each shared broken input must give (the manifest's `expect`, made precise).
const BAD: Record<string, { code: string } | { durationS: number }> = {
  'bad/empty.wav': { code: 'empty_file' },
  'bad/header_only_44_bytes.wav': { code: 'no_audio_data' },
  'bad/random_bytes.wav': { code: 'unsupported_format' },
  'bad/image_png_named.mp3': { code: 'not_audio' },
  'bad/ten_ms.wav': { durationS: 0.01 },
};

test('every shared bad input gets the outcome its manifest expects, never a crash', async () => {
  const entries = manifest('bad');
  assert.deepEqual(entries.map((e) => e.path).sort(), Object.keys(BAD).sort());
  for (const e of entries) {
    const want = BAD[e.path]!;
    const path = `${SHARED_AUDIO}${e.path}`;
    for (const input of [path, readFileSync(path)]) {
      if ('code' in want) {
        await assert.rejects(decodeAudio(input), { name: 'EarshotError', kind: 'invalid_audio', code: want.code }, e.path);
      } else {
        const d = await decodeAudio(input);
        assert.equal(d.durationS, want.durationS);
        assert.equal(d.samples.length, 160);
      }
    }
  }
});

// Containers and codecs beyond the shared set, all made from jfk.wav by ffmpeg.
const GENERATED: { name: string; args: string[]; ch?: number }[] = [
  { name: 'jfk.flac', args: ['-c:a', 'flac'] },
  { name: 'jfk.ogg', args: ['-c:a', 'libvorbis', '-q:a', '4'] },
  { name: 'jfk.opus', args: ['-c:a', 'libopus', '-b:a', '48k'] },
  { name: 'jfk.aiff', args: ['-c:a', 'pcm_s16be'] },
  { name: 'jfk_frag.mp4', args: ['-c:a', 'aac', '-b:a', '96k', '-movflags', 'frag_keyframe+empty_moov'] },
  { name: 'jfk_moov_at_end.m4a', args: ['-c:a', 'aac', '-b:a', '96k'] },
  { name: 'jfk.wma', args: ['-c:a', 'wmav2', '-b:a', '64k'] },
  { name: 'jfk_adpcm.wav', args: ['-c:a', 'adpcm_ima_wav'] },
  { name: 'jfk_stereo_22k.mp3', args: ['-ac', '2', '-ar', '22050', '-c:a', 'libmp3lame'], ch: 2 },
];

for (const g of GENERATED) {
  test(`generated ${g.name} decodes close to the original (correlation >= 0.98, duration +-0.1 s)`, async () => {
    const path = join(dir, g.name);
    ffmpeg(['-i', JFK, ...g.args, path]);
    for (const d of await both(path)) {
      assert.equal(d.format, 'ffmpeg');
      assert.equal(d.sourceChannels, g.ch ?? 1);
      assert.ok(Math.abs(d.durationS - 11) <= 0.1, `${g.name}: ${d.durationS}s`);
      assertCloseToJfk(d, g.name, { minCorrelation: 0.98 });
    }
  });
}

test('an MP4 upload held in memory goes through a temporary file that is removed afterwards', async () => {
  const before = ourTempDirs();
  const path = join(dir, 'moov_at_end.m4a');
  ffmpeg(['-i', JFK, '-c:a', 'aac', path]);
  const d = await decodeAudio(readFileSync(path));
  assert.ok(Math.abs(d.durationS - 11) < 0.1);
  // Also on failure: an MP4 header followed by garbage.
  const broken = Uint8Array.from([...readFileSync(path).subarray(0, 40), ...new Uint8Array(5000).fill(0x5a)]);
  await assert.rejects(decodeAudio(broken), { kind: 'invalid_audio' });
  assert.deepEqual(ourTempDirs(), before);
});

test('a video with no audio stream is not_audio', async () => {
  const path = join(dir, 'silent_video.mkv');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=5', '-t', '1', '-c:v', 'mpeg4', path]);
  for (const input of [path, readFileSync(path)]) {
    await assert.rejects(decodeAudio(input), { kind: 'invalid_audio', code: 'not_audio' });
  }
});

test('ffmpeg is confined: a concat list naming another file is refused, not followed', async () => {
  const path = join(dir, 'list.ffconcat');
  writeFileSync(path, `ffconcat version 1.0\nfile '${JFK}'\n`);
  for (const input of [path, readFileSync(path)]) {
    await assert.rejects(decodeAudio(input), { kind: 'invalid_audio', code: 'unsupported_format' });
  }
});

test('a FLAC decompression bomb (10 h of silence in ~400 KB) is stopped at the bound, ffmpeg killed', { timeout: 20_000 }, async () => {
  const bomb = flacSilence(36_000, 48_000);
  assert.ok(bomb.length < 500_000);
  const path = join(dir, 'bomb.flac');
  writeFileSync(path, bomb);
  // Decoding all of it would mean 1.7 G samples (7 GB of float): only stopping early can pass.
  for (const input of [path, bomb]) {
    await assert.rejects(decodeAudio(input, { maxDurationS: 5 }), { kind: 'audio_too_long', code: 'too_long' });
    assert.deepEqual(ffmpegChildren(), []);
  }
  // The same stream, shortened to within the bound, decodes to silence of the right length.
  const d = await decodeAudio(flacSilence(3, 48_000), { maxDurationS: 5 });
  assert.equal(d.durationS, 3);
  assert.ok(d.samples.every((v) => v === 0));
});

test('a WAV declaring more than it holds (2 GB over 1 s) decodes the second that is there, on disk and in memory, as ffmpeg does', async () => {
  const wav = writeWav({ coding: 's16', sampleRate: 16000, channels: [jfk.subarray(0, 16000)] });
  const lying = patch(wav, 40, 2_000_000_000); // ~17 h of 16 kHz s16: over the default 3 h bound
  const path = join(dir, 'lying_2gb.wav');
  writeFileSync(path, lying);
  const reference = ffmpegDecode(path);
  assert.equal(reference.length, 16000, 'ffmpeg decodes the bytes present');
  for (const input of [path, lying]) {
    const d = await decodeAudio(input);
    assert.equal(d.durationS, 1);
    assert.deepEqual(d.samples, jfk.subarray(0, 16000));
    // The bound applies to the audio that is there.
    await assert.rejects(decodeAudio(input, { maxDurationS: 0.5 }), { kind: 'audio_too_long', code: 'too_long' });
  }
});

test('maxDurationS: just above the clip passes, just below fails; nonsense is invalid_argument', async () => {
  for (const input of [JFK, readFileSync(JFK)]) {
    assert.equal((await decodeAudio(input, { maxDurationS: 11 })).samples.length, jfk.length);
    await assert.rejects(decodeAudio(input, { maxDurationS: 10.9 }), { code: 'too_long' });
  }
  const mp3 = `${SHARED_AUDIO}formats/jfk__mp3_cbr128_44k.mp3`;
  await assert.rejects(decodeAudio(mp3, { maxDurationS: 10 }), { code: 'too_long' });
  for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    await assert.rejects(decodeAudio(JFK, { maxDurationS: bad }), { kind: 'invalid_argument' });
  }
});

test('abort: before start, and during an ffmpeg decode (child killed, reason passed on)', { timeout: 20_000 }, async () => {
  const reason = new Error('client went away');
  await assert.rejects(decodeAudio(JFK, { signal: AbortSignal.abort(reason) }), reason);
  const ac = new AbortController();
  const bomb = flacSilence(36_000, 48_000);
  const pending = decodeAudio(bomb, { maxDurationS: 36_000, signal: ac.signal });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(ffmpegChildren().length, 1); // it is running...
  ac.abort(reason);
  await assert.rejects(pending, reason); // ...and is gone once the promise settles
  assert.deepEqual(ffmpegChildren(), []);
});

test('a missing path is a typed invalid_argument error', async () => {
  await assert.rejects(decodeAudio(join(dir, 'nope.wav')), { kind: 'invalid_argument', code: 'file_not_found' });
});

test('raw headerless PCM decodes with opts.raw (path and bytes), and bad layouts are invalid_argument', async () => {
  const pcm = readFileSync(JFK).subarray(44); // jfk.wav's s16le samples without the header
  const path = join(dir, 'jfk.s16le');
  writeFileSync(path, pcm);
  for (const input of [path, pcm]) {
    const d = await decodeAudio(input, { raw: { sampleRate: 16000, sampleFormat: 'pcm_s16le' } });
    assert.equal(d.format, 'raw/pcm_s16le');
    assert.deepEqual(d.samples, jfk);
    await assert.rejects(decodeAudio(input, { raw: { sampleRate: 16000, sampleFormat: 'pcm_s16le' }, maxDurationS: 5 }), {
      code: 'too_long',
    });
  }
  // A realtime client's pcm16 at 24 kHz, with a stray odd byte at the end (ignored).
  const at24 = ffmpeg(['-i', JFK, '-ar', '24000', '-f', 's16le', 'pipe:1']);
  const d24 = await decodeAudio(Uint8Array.from([...at24, 7]), { raw: { sampleRate: 24000, sampleFormat: 'pcm_s16le' } });
  assert.equal(d24.sourceSampleRate, 24000);
  assertCloseToJfk(d24, 'raw 24 kHz', { minSnrDb: 30, minCorrelation: 0.999 });
  for (const raw of [
    { sampleRate: 0, sampleFormat: 'pcm_s16le' as const },
    { sampleRate: 16000, channels: 0, sampleFormat: 'pcm_s16le' as const },
    { sampleRate: 16000, sampleFormat: 'pcm_s12' as 'pcm_s16le' },
  ]) {
    await assert.rejects(decodeAudio(pcm, { raw }), { kind: 'invalid_argument', code: 'bad_raw_format' });
  }
});

test('output stays within [-1, 1] even when a full-scale square wave is resampled (filter ringing)', async () => {
  const square = Float32Array.from({ length: 48000 }, (_, i) => (Math.floor(i / 60) % 2 ? 1 : -1));
  const d = await decodeAudio(writeWav({ coding: 'f32', sampleRate: 48000, channels: [square] }));
  assert.equal(d.sourceSampleRate, 48000);
  assert.ok(d.samples.every((v) => v >= -1 && v <= 1));
  assert.ok(d.samples.some((v) => v === 1)); // the ringing was there, and was clipped
});
