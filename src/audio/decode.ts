// decodeAudio: any supported input (a file path or the bytes of an upload) to 16 kHz mono float.
// WAV is read in-process; anything else, and WAV codecs we do not decode ourselves, go through
// ffmpeg. Both paths yield mono at the source rate, then the one resampler brings it to 16 kHz.
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EarshotError, isEarshotError } from '../errors.ts';
import { decodeWithFfmpeg } from './ffmpeg.ts';
import { resample } from './resample.ts';
import { SNIFF_BYTES, sniff } from './sniff.ts';
import {
  checkMaxDuration,
  DEFAULT_MAX_DURATION_S,
  invalidAudio,
  TARGET_SAMPLE_RATE,
  type DecodedAudio,
  type DecodeOptions,
  type MonoPcm,
} from './types.ts';
import { parseWav } from './wav.ts';
import { readWavFile, readWavFileHeader } from './wav-file.ts';

const HEAD_BYTES = 64 << 10;

const isUnsupported = (e: unknown): boolean => isEarshotError(e) && e.code === 'unsupported_format';

function notAudio(what: string): EarshotError {
  return invalidAudio('not_audio', `the input is ${what}, not audio`);
}

async function decodeFile(path: string, maxDurationS: number, signal?: AbortSignal): Promise<MonoPcm> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EarshotError(
      'invalid_argument',
      code === 'ENOENT' ? 'file_not_found' : 'unreadable_file',
      `cannot read audio file ${path}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  try {
    const stat = await fh.stat();
    if (!stat.isFile()) throw new EarshotError('invalid_argument', 'unreadable_file', `${path} is not a file`);
    if (stat.size === 0) throw invalidAudio('empty_file', 'the file is empty');
    const head = new Uint8Array(Math.min(stat.size, HEAD_BYTES));
    await fh.read(head, 0, head.length, 0);
    const kind = sniff(head.subarray(0, SNIFF_BYTES));
    if (kind.kind === 'not_audio') throw notAudio(kind.what);
    if (kind.kind === 'wav') {
      try {
        const header = await readWavFileHeader(fh, stat.size, head, maxDurationS);
        return await readWavFile(fh, header, { maxDurationS, signal });
      } catch (e) {
        if (!isUnsupported(e)) throw e;
      }
    }
  } finally {
    await fh.close();
  }
  return decodeWithFfmpeg({ path }, { maxDurationS, signal });
}

async function decodeBytes(bytes: Uint8Array, maxDurationS: number, signal?: AbortSignal): Promise<MonoPcm> {
  if (bytes.length === 0) throw invalidAudio('empty_file', 'the file is empty');
  const kind = sniff(bytes.subarray(0, SNIFF_BYTES));
  if (kind.kind === 'not_audio') throw notAudio(kind.what);
  if (kind.kind === 'wav') {
    try {
      return parseWav(bytes, { maxDurationS });
    } catch (e) {
      if (!isUnsupported(e)) throw e;
    }
  }
  if (kind.kind === 'other' && kind.needsSeek) {
    // MP4's index may sit at the end of the file, which ffmpeg cannot reach on a pipe: give it a
    // private temporary file instead, removed whatever happens.
    const dir = await mkdtemp(join(tmpdir(), 'earshot-audio-'));
    try {
      const path = join(dir, 'input');
      await writeFile(path, bytes, { mode: 0o600 });
      return await decodeWithFfmpeg({ path }, { maxDurationS, signal });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return decodeWithFfmpeg({ bytes }, { maxDurationS, signal });
}

/**
 * Decodes a file path or in-memory bytes to 16 kHz mono float samples in [-1, 1]. Throws an
 * EarshotError ('invalid_audio' or 'audio_too_long') for anything that is not usable audio, and
 * rejects with `signal.reason` when aborted.
 */
export async function decodeAudio(input: string | Uint8Array, opts: DecodeOptions = {}): Promise<DecodedAudio> {
  const maxDurationS = checkMaxDuration(opts.maxDurationS ?? DEFAULT_MAX_DURATION_S);
  const { signal } = opts;
  signal?.throwIfAborted();
  const mono =
    typeof input === 'string'
      ? await decodeFile(input, maxDurationS, signal)
      : await decodeBytes(input, maxDurationS, signal);
  signal?.throwIfAborted();
  const samples = resample(mono.samples, mono.sampleRate, TARGET_SAMPLE_RATE);
  return {
    samples,
    sampleRate: TARGET_SAMPLE_RATE,
    durationS: samples.length / TARGET_SAMPLE_RATE,
    sourceSampleRate: mono.sampleRate,
    sourceChannels: mono.channels,
    format: mono.format,
  };
}
