// Decodes everything that is not a WAV we read ourselves (MP3, FLAC, Ogg Vorbis/Opus, WebM,
// M4A/AAC, AIFF, WMA, ADPCM-in-WAV...) with an ffmpeg child process.
//
// Which binary: a system `ffmpeg` on PATH when there is one (distribution builds are usually newer
// and tuned for the machine), else the static binary of the @ffmpeg-installer/ffmpeg npm package,
// so that a fresh `npm ci` works with no system package at all.
//
// How: the input goes in on stdin (or as a file when the caller has one), and ffmpeg writes the
// first audio stream as float32 WAV to stdout, at the source's own rate and channel count: the WAV
// header tells us both, our WAV reader decodes the samples, and our resampler does the rest, so
// there is one downmix and one resampler for every format. Output is handed on as it streams and
// the duration bound is enforced on the samples counted so far: ffmpeg is killed the moment a
// decompression bomb passes it. The child is killed on every error or abort, and the promise only
// settles after it has exited.
//
// ffmpeg is locked down for untrusted input: only the file or pipe protocol (no network), and only
// audio/media demuxers (no playlists, concat lists or image sequences that could open other files).
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join, resolve } from 'node:path';
import { EarshotError } from '../errors.ts';
import { decodeWavFrames, parseWavHeader, type WavHeader } from './wav.ts';
import { invalidAudio, maxFrames, tooLong, type OpenSink } from './types.ts';
import { concatBytes } from './chunks.ts';

const DEMUXERS = [
  'wav', 'w64', 'aiff', 'caf', 'au', 'voc', 'mp3', 'aac', 'loas', 'ac3', 'eac3', 'dts', 'truehd',
  'mlp', 'flac', 'ogg', 'matroska', 'mov', 'asf', 'xwma', 'amr', 'wv', 'ape', 'tta', 'tak', 'shn',
  'mpc', 'mpc8', 'dsf', 'gsm', 'avi', 'flv', 'mpeg', 'mpegts', 'nut',
].join(',');

const STDERR_KEEP = 4096;

let cachedPath: string | undefined;

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The ffmpeg binary earshot uses: system ffmpeg on PATH first, then the npm package's. */
export function ffmpegPath(): string {
  if (cachedPath) return cachedPath;
  const system = onPath(process.platform === 'win32' ? 'ffmpeg.exe' : 'ffmpeg');
  if (system) return (cachedPath = system);
  try {
    const pkg = createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string };
    return (cachedPath = pkg.path);
  } catch (e) {
    throw new EarshotError(
      'internal',
      'ffmpeg_unavailable',
      'no ffmpeg found: install ffmpeg, or reinstall earshot so that @ffmpeg-installer/ffmpeg is present',
      { cause: e },
    );
  }
}

export type FfmpegInput = { path: string } | { bytes: Uint8Array };

function errorFromStderr(stderr: string, exitCode: number | null): EarshotError {
  if (/matches no streams|does not contain any stream/i.test(stderr)) {
    return invalidAudio('not_audio', 'the input has no audio stream');
  }
  const last = stderr.trim().split('\n').filter(Boolean).slice(-2).join('; ').slice(0, 300);
  return invalidAudio(
    'unsupported_format',
    `unsupported or corrupt audio (ffmpeg exit ${exitCode ?? 'signal'}${last ? `: ${last}` : ''})`,
  );
}

/**
 * Decodes `input` with ffmpeg to mono chunks at the source rate, handed to the sink `open`
 * returns, within `maxDurationS`. Resolves to the frame count once ffmpeg has exited.
 */
export function decodeWithFfmpeg(
  input: FfmpegInput,
  opts: { maxDurationS: number; signal?: AbortSignal },
  open: OpenSink,
): Promise<number> {
  const { maxDurationS, signal } = opts;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const fromFile = 'path' in input;
  const args = [
    '-hide_banner', '-nostats', '-loglevel', 'error',
    '-protocol_whitelist', fromFile ? 'file' : 'pipe',
    '-format_whitelist', DEMUXERS,
    '-i', fromFile ? `file:${resolve(input.path)}` : 'pipe:0',
    '-map', '0:a:0', '-vn', '-sn', '-dn',
    '-c:a', 'pcm_f32le', '-f', 'wav', '-fflags', '+bitexact', 'pipe:1',
  ];
  const bin = ffmpegPath();
  return new Promise<number>((resolvePromise, reject) => {
    const child = spawn(bin, fromFile ? ['-nostdin', ...args] : args, {
      stdio: [fromFile ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let failure: unknown;
    let stderr = '';
    let head: Uint8Array = new Uint8Array(0);
    let header: WavHeader | undefined;
    let pending: Uint8Array = new Uint8Array(0);
    let limit = Infinity;
    let frames = 0;
    let write: ((samples: Float32Array) => void) | undefined;

    const fail = (e: unknown): void => {
      if (failure === undefined) failure = e;
      child.kill('SIGKILL');
    };
    const onAbort = (): void => fail(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });

    const consume = (bytes: Uint8Array): void => {
      const buf = pending.length ? concatBytes(pending, bytes) : bytes;
      const n = Math.floor(buf.length / header!.blockAlign);
      if (frames + n > limit) throw tooLong(maxDurationS);
      if (n > 0) {
        const part = new Float32Array(n);
        decodeWavFrames(header!, buf.subarray(0, n * header!.blockAlign), part, 0, frames);
        frames += n;
        write!(part);
      }
      pending = buf.slice(n * header!.blockAlign);
    };

    child.stdout!.on('data', (chunk: Buffer) => {
      if (failure !== undefined) return;
      try {
        if (header) return consume(chunk);
        head = concatBytes(head, chunk);
        const r = parseWavHeader(head, Infinity);
        if ('needBytes' in r) return;
        header = r.header;
        limit = maxFrames(maxDurationS, header.sampleRate);
        write = open({ sampleRate: header.sampleRate, channels: header.channels, format: 'ffmpeg' });
        consume(head.subarray(header.dataOffset));
        head = new Uint8Array(0);
      } catch (e) {
        fail(e);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_KEEP);
    });
    child.on('error', (e) =>
      fail(new EarshotError('internal', 'ffmpeg_unavailable', `could not run ffmpeg (${bin}): ${e.message}`, { cause: e })),
    );
    child.on('close', (code) => {
      signal?.removeEventListener('abort', onAbort);
      if (failure !== undefined) return reject(failure);
      if (code !== 0) return reject(errorFromStderr(stderr, code));
      if (!header) return reject(invalidAudio('unsupported_format', 'ffmpeg produced no audio'));
      if (frames === 0) return reject(invalidAudio('no_audio_data', 'the input contains no audio samples'));
      resolvePromise(frames);
    });
    if (!fromFile) {
      // ffmpeg may exit before reading everything (killed, or it has what it needs): not an error.
      child.stdin!.on('error', () => {});
      child.stdin!.end(input.bytes);
    }
  });
}
