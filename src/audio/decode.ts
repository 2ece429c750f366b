// decodeAudio: any supported input (a file path or the bytes of an upload) to 16 kHz mono float.
// WAV is read in-process; anything else, and WAV codecs we do not decode ourselves, go through
// ffmpeg. Both stream mono chunks at the source rate into the one resampler, so the audio is only
// ever held whole at 16 kHz.
import { open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EarshotError, isEarshotError } from '../errors.ts';
import { makePrivateDir } from '../private-temp.ts';
import { decodeWithFfmpeg } from './ffmpeg.ts';
import { StreamResampler } from './resample.ts';
import { concatFloat32 } from './chunks.ts';
import { SNIFF_BYTES, sniff } from './sniff.ts';
import {
  checkMaxDuration,
  DEFAULT_MAX_DURATION_S,
  invalidAudio,
  TARGET_SAMPLE_RATE,
  type DecodedAudio,
  type DecodeOptions,
  type OpenSink,
  type RawPcmFormat,
  type SourceInfo,
} from './types.ts';
import { decodeWavBytes, rawPcmHeader } from './wav.ts';
import { readWavFile, readWavFileHeader } from './wav-file.ts';

const HEAD_BYTES = 64 << 10;

/** The sinc filter rings a little past full scale on clipped input; the contract is [-1, 1]. */
function clip(x: Float32Array): Float32Array {
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v > 1) x[i] = 1;
    else if (v < -1) x[i] = -1;
  }
  return x;
}

const isUnsupported = (e: unknown): boolean => isEarshotError(e) && e.code === 'unsupported_format';

function notAudio(what: string): EarshotError {
  return invalidAudio('not_audio', `the input is ${what}, not audio`);
}

async function decodeFile(
  path: string,
  maxDurationS: number,
  sink: OpenSink,
  signal?: AbortSignal,
  raw?: RawPcmFormat,
): Promise<void> {
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
    if (raw) {
      const header = rawPcmHeader(raw, stat.size);
      await readWavFile(fh, header, { maxDurationS, signal }, sink);
      return;
    }
    const head = new Uint8Array(Math.min(stat.size, HEAD_BYTES));
    await fh.read(head, 0, head.length, 0);
    const kind = sniff(head.subarray(0, SNIFF_BYTES));
    if (kind.kind === 'not_audio') throw notAudio(kind.what);
    if (kind.kind === 'wav') {
      try {
        const header = await readWavFileHeader(fh, stat.size, head, maxDurationS);
        await readWavFile(fh, header, { maxDurationS, signal }, sink);
        return;
      } catch (e) {
        if (!isUnsupported(e)) throw e;
      }
    }
  } finally {
    await fh.close();
  }
  await decodeWithFfmpeg({ path }, { maxDurationS, signal }, sink);
}

async function decodeBytes(
  bytes: Uint8Array,
  maxDurationS: number,
  sink: OpenSink,
  signal?: AbortSignal,
  raw?: RawPcmFormat,
): Promise<void> {
  if (bytes.length === 0) throw invalidAudio('empty_file', 'the file is empty');
  if (raw) {
    decodeWavBytes(bytes, { maxDurationS, raw }, sink);
    return;
  }
  const kind = sniff(bytes.subarray(0, SNIFF_BYTES));
  if (kind.kind === 'not_audio') throw notAudio(kind.what);
  if (kind.kind === 'wav') {
    try {
      decodeWavBytes(bytes, { maxDurationS }, sink);
      return;
    } catch (e) {
      if (!isUnsupported(e)) throw e;
    }
  }
  if (kind.kind === 'other' && kind.needsSeek) {
    // MP4's index may sit at the end of the file, which ffmpeg cannot reach on a pipe: give it a
    // private temporary file instead, removed whatever happens.
    const dir = await makePrivateDir('audio');
    try {
      const path = join(dir, 'input');
      await writeFile(path, bytes, { mode: 0o600 });
      await decodeWithFfmpeg({ path }, { maxDurationS, signal }, sink);
      return;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  await decodeWithFfmpeg({ bytes }, { maxDurationS, signal }, sink);
}

/**
 * Decodes a file path or in-memory bytes to 16 kHz mono float samples in [-1, 1] (or, with
 * `opts.raw`, headerless PCM of the given layout). Throws an
 * EarshotError ('invalid_audio' or 'audio_too_long') for anything that is not usable audio, and
 * rejects with `signal.reason` when aborted.
 */
export async function decodeAudio(input: string | Uint8Array, opts: DecodeOptions = {}): Promise<DecodedAudio> {
  const maxDurationS = checkMaxDuration(opts.maxDurationS ?? DEFAULT_MAX_DURATION_S);
  const { signal } = opts;
  signal?.throwIfAborted();
  let source: SourceInfo | undefined;
  let resampler: StreamResampler | undefined;
  const parts: Float32Array[] = [];
  const sink: OpenSink = (info) => {
    source = info;
    resampler = new StreamResampler(info.sampleRate, TARGET_SAMPLE_RATE);
    return (chunk) => {
      const out = resampler!.push(chunk);
      if (out.length) parts.push(clip(out));
    };
  };
  if (typeof input === 'string') await decodeFile(input, maxDurationS, sink, signal, opts.raw);
  else await decodeBytes(input, maxDurationS, sink, signal, opts.raw);
  signal?.throwIfAborted();
  parts.push(clip(resampler!.end()));
  const samples = concatFloat32(parts);
  return {
    samples,
    sampleRate: TARGET_SAMPLE_RATE,
    durationS: samples.length / TARGET_SAMPLE_RATE,
    sourceSampleRate: source!.sampleRate,
    sourceChannels: source!.channels,
    format: source!.format,
  };
}
