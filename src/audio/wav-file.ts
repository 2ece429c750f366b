// Reads a WAV file from disk in bounded chunks, so that a long or lying file is refused from its
// header before anything big is read or allocated, and memory stays at one output buffer.
import type { FileHandle } from 'node:fs/promises';
import { decodeWavFrames, formatName, parseWavHeader, type WavHeader } from './wav.ts';
import { invalidAudio, maxFrames, tooLong, type OpenSink } from './types.ts';

/** Past this, a file whose data chunk has still not started is not a WAV we will read. */
const MAX_HEADER_BYTES = 64 << 20;
const CHUNK_BYTES = 1 << 20;

async function readAt(fh: FileHandle, offset: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.subarray(0, got);
}

/** Parses the header of an open WAV file of `size` bytes whose first bytes are `head`. */
export async function readWavFileHeader(
  fh: FileHandle,
  size: number,
  head: Uint8Array,
  maxDurationS: number,
): Promise<WavHeader> {
  for (;;) {
    const r = parseWavHeader(head, size, maxDurationS);
    if ('header' in r) return r.header;
    if (r.needBytes > MAX_HEADER_BYTES) {
      throw invalidAudio('bad_header', `no WAV data chunk in the first ${MAX_HEADER_BYTES} bytes`);
    }
    head = await readAt(fh, 0, Math.min(size, Math.max(r.needBytes, head.length * 2)));
  }
}

/**
 * Decodes the data of a WAV file to mono chunks at its own rate, handed to the sink `open`
 * returns, within `maxDurationS`. Returns the frame count.
 */
export async function readWavFile(
  fh: FileHandle,
  h: WavHeader,
  opts: { maxDurationS: number; signal?: AbortSignal },
  open: OpenSink,
): Promise<number> {
  const frames = Math.floor(h.dataBytes / h.blockAlign);
  // parseWavHeader has checked the header against the bound; the count is checked again here so
  // that this function is safe on its own.
  if (frames > maxFrames(opts.maxDurationS, h.sampleRate)) throw tooLong(opts.maxDurationS);
  if (frames === 0) throw invalidAudio('no_audio_data', 'the WAV file contains no samples');
  const write = open({ sampleRate: h.sampleRate, channels: h.channels, format: formatName(h) });
  const framesPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / h.blockAlign));
  for (let done = 0; done < frames; ) {
    opts.signal?.throwIfAborted();
    const n = Math.min(framesPerChunk, frames - done);
    const bytes = await readAt(fh, h.dataOffset + done * h.blockAlign, n * h.blockAlign);
    if (bytes.length < n * h.blockAlign) throw invalidAudio('truncated', 'the WAV file shrank while being read');
    const part = new Float32Array(n);
    decodeWavFrames(h, bytes, part, 0, done);
    write(part);
    done += n;
  }
  return frames;
}
