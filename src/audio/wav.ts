// The in-process WAV reader. Hand-written rather than a library: WAV is by far the most common
// upload, it sits on the hot path (no child process, no copy through a pipe), and every way a
// header can lie must end in one of our typed errors instead of a crash, a hang or a huge
// allocation. It covers PCM 8 (unsigned)/16/24/32-bit, float 32/64, G.711 mu-law/A-law,
// WAVE_FORMAT_EXTENSIBLE, RF64/BW64 (ds64), any extra chunks and odd (padded) chunk sizes.
// Codecs it does not decode (ADPCM, GSM, MP3-in-WAV...) are reported as 'unsupported_format' so
// that decodeAudio can hand the file to ffmpeg. Float samples past full scale are clipped to
// [-1, 1]; NaN or infinite ones are refused ('non_finite_samples'), as no model input survives them.
//
// Policy for a data chunk whose size is a placeholder (0 or 0xFFFFFFFF, as written by recorders
// and by ffmpeg on a pipe that could not go back to patch the header): read to the end of the
// file or stream. A data size larger than what follows (a cut file, or a recorder's made-up size
// such as arecord's on a pipe) is decoded as far as the bytes go, as ffmpeg, libsndfile and so
// openai/whisper do: the bytes present, not the header's claim, are the audio, and the duration
// bound applies to them. Only a stream, whose end is not known yet, is bound by the claim.
import { EarshotError } from '../errors.ts';
import { A_LAW, MU_LAW } from './g711.ts';
import {
  invalidAudio,
  MAX_CHANNELS,
  MAX_SAMPLE_RATE,
  maxFrames,
  MIN_SAMPLE_RATE,
  tooLong,
  type MonoPcm,
  type OpenSink,
  type RawPcmFormat,
  type RawSampleFormat,
  type SourceInfo,
} from './types.ts';
import { concatFloat32 } from './chunks.ts';

export type WavSampleFormat = RawSampleFormat;

export interface WavHeader {
  sampleRate: number;
  channels: number;
  sampleFormat: WavSampleFormat;
  /** Bytes per frame (one sample of every channel). */
  blockAlign: number;
  /** Where the sample data starts, from the start of the file. */
  dataOffset: number;
  /** Bytes of sample data; Infinity for a stream of unknown length read to its end. */
  dataBytes: number;
  /** The header's data size was a placeholder, so the data runs to the end of the input. */
  readToEnd: boolean;
}

/** Either the header, or how many leading bytes the parser needs to get to the data chunk. */
export type WavHeaderResult = { header: WavHeader } | { needBytes: number };

const KSDATAFORMAT_SUFFIX = [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];
const MAX_FMT_BYTES = 1 << 16;

const fourcc = (b: Uint8Array, at: number): string =>
  String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);

function sampleFormatOf(tag: number, bits: number): WavSampleFormat | undefined {
  if (tag === 1) {
    // Non-byte sizes (12, 20 bits...) sit left-justified in the next whole byte container.
    const container = Math.ceil(bits / 8);
    return bits < 1 ? undefined : (['pcm_u8', 'pcm_s16le', 'pcm_s24le', 'pcm_s32le'] as const)[container - 1];
  }
  if (tag === 3) return bits === 32 ? 'pcm_f32le' : bits === 64 ? 'pcm_f64le' : undefined;
  if (tag === 6 && bits === 8) return 'pcm_alaw';
  if (tag === 7 && bits === 8) return 'pcm_mulaw';
  return undefined;
}

const BYTES: Record<WavSampleFormat, number> = {
  pcm_u8: 1,
  pcm_s16le: 2,
  pcm_s24le: 3,
  pcm_s32le: 4,
  pcm_f32le: 4,
  pcm_f64le: 8,
  pcm_mulaw: 1,
  pcm_alaw: 1,
};

interface Fmt {
  sampleRate: number;
  channels: number;
  sampleFormat: WavSampleFormat;
  blockAlign: number;
}

function parseFmt(b: Uint8Array, at: number, size: number): Fmt {
  if (size < 16) throw invalidAudio('bad_header', `WAV fmt chunk is ${size} bytes, expected at least 16`);
  const dv = new DataView(b.buffer, b.byteOffset + at, size);
  let tag = dv.getUint16(0, true);
  const channels = dv.getUint16(2, true);
  const sampleRate = dv.getUint32(4, true);
  const blockAlign = dv.getUint16(12, true);
  const bits = dv.getUint16(14, true);
  if (channels === 0) throw invalidAudio('bad_header', 'WAV header declares zero channels');
  if (channels > MAX_CHANNELS) throw invalidAudio('bad_header', `WAV header declares ${channels} channels`);
  if (sampleRate < MIN_SAMPLE_RATE || sampleRate > MAX_SAMPLE_RATE) {
    throw invalidAudio(
      'bad_header',
      `WAV header declares a sample rate of ${sampleRate} Hz (accepted: ${MIN_SAMPLE_RATE}-${MAX_SAMPLE_RATE})`,
    );
  }
  if (tag === 0xfffe) {
    if (size < 40) throw invalidAudio('bad_header', `WAVE_FORMAT_EXTENSIBLE fmt chunk is ${size} bytes, expected 40`);
    const guidTail = b.subarray(at + 28, at + 40);
    if (!KSDATAFORMAT_SUFFIX.every((v, i) => guidTail[i] === v)) {
      throw invalidAudio('unsupported_format', 'WAVE_FORMAT_EXTENSIBLE with a non-standard sub-format GUID');
    }
    tag = dv.getUint32(24, true);
  }
  const sampleFormat = sampleFormatOf(tag, bits);
  if (sampleFormat === undefined) {
    throw invalidAudio(
      'unsupported_format',
      `WAV format tag 0x${tag.toString(16)} with ${bits} bits per sample is not decoded in-process`,
    );
  }
  if (blockAlign !== channels * BYTES[sampleFormat]) {
    throw invalidAudio(
      'bad_header',
      `WAV block align ${blockAlign} does not match ${channels} channel(s) of ${bits}-bit samples`,
    );
  }
  return { sampleRate, channels, sampleFormat, blockAlign };
}

/**
 * Parses the header of a WAV file of `totalBytes` bytes (Infinity for a stream) from its first
 * bytes `head`. Returns `{ needBytes }` when `head` stops before the data chunk starts. With
 * `maxDurationS`, a data chunk declaring (or, read to the end, holding) more is 'too_long'.
 */
export function parseWavHeader(head: Uint8Array, totalBytes: number, maxDurationS?: number): WavHeaderResult {
  if (totalBytes === 0) throw invalidAudio('empty_file', 'the file is empty');
  const need = (n: number): { needBytes: number } | undefined => {
    if (head.length >= n) return undefined;
    if (totalBytes < n) throw invalidAudio('truncated', 'the WAV file ends inside its header');
    return { needBytes: n };
  };
  const early = need(12);
  if (early) return early;
  const riff = fourcc(head, 0);
  if (!['RIFF', 'RF64', 'BW64'].includes(riff) || fourcc(head, 8) !== 'WAVE') {
    throw invalidAudio('bad_header', 'not a RIFF/WAVE file');
  }
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let ds64DataBytes: number | undefined;
  let fmt: Fmt | undefined;
  let pos = 12;
  for (;;) {
    if (pos + 8 > totalBytes) {
      if (!fmt) throw invalidAudio('bad_header', 'the WAV file has no fmt chunk');
      // Ending cleanly between chunks means there is no sound at all; ending inside one is a cut.
      if (pos === totalBytes) throw invalidAudio('no_audio_data', 'the WAV file has no data chunk');
      throw invalidAudio('truncated', 'the WAV file ends before its data chunk');
    }
    const short = need(pos + 8);
    if (short) return short;
    const id = fourcc(head, pos);
    const size = dv.getUint32(pos + 4, true);
    const body = pos + 8;
    if (id === 'ds64' && riff !== 'RIFF') {
      const s = need(body + 28);
      if (s) return s;
      ds64DataBytes = Number(dv.getBigUint64(body + 8, true));
    } else if (id === 'fmt ') {
      if (size > MAX_FMT_BYTES) throw invalidAudio('bad_header', `WAV fmt chunk declares ${size} bytes`);
      if (body + size > totalBytes) throw invalidAudio('truncated', 'the WAV file ends inside its fmt chunk');
      const s = need(body + size);
      if (s) return s;
      fmt = parseFmt(head, body, size);
    } else if (id === 'data') {
      if (!fmt) throw invalidAudio('bad_header', 'the WAV data chunk comes before its fmt chunk');
      let declared = size;
      if (riff !== 'RIFF' && size === 0xffffffff) {
        if (ds64DataBytes === undefined) throw invalidAudio('bad_header', 'RF64 file without a ds64 chunk');
        declared = ds64DataBytes;
      }
      const available = totalBytes - body;
      const placeholder = riff === 'RIFF' && (size === 0 || size === 0xffffffff);
      const dataBytes = placeholder ? available : Math.min(declared, available);
      if (maxDurationS !== undefined && Math.floor(dataBytes / fmt.blockAlign) > maxFrames(maxDurationS, fmt.sampleRate)) {
        throw tooLong(maxDurationS);
      }
      return {
        header: {
          ...fmt,
          dataOffset: body,
          dataBytes,
          readToEnd: placeholder,
        },
      };
    }
    pos = body + size + (size & 1);
  }
}

/** The header a raw PCM input of `totalBytes` would have: all of it is sample data. */
export function rawPcmHeader(raw: RawPcmFormat, totalBytes: number): WavHeader {
  const channels = raw.channels ?? 1;
  const bad = (what: string) => new EarshotError('invalid_argument', 'bad_raw_format', `raw PCM: ${what}`);
  if (!(raw.sampleFormat in BYTES)) throw bad(`unknown sample format ${String(raw.sampleFormat)}`);
  if (!Number.isInteger(raw.sampleRate) || raw.sampleRate < MIN_SAMPLE_RATE || raw.sampleRate > MAX_SAMPLE_RATE) {
    throw bad(`sample rate must be an integer in ${MIN_SAMPLE_RATE}-${MAX_SAMPLE_RATE} Hz, got ${raw.sampleRate}`);
  }
  if (!Number.isInteger(channels) || channels < 1 || channels > MAX_CHANNELS) {
    throw bad(`channels must be an integer in 1-${MAX_CHANNELS}, got ${channels}`);
  }
  if (totalBytes === 0) throw invalidAudio('empty_file', 'the file is empty');
  return {
    sampleRate: raw.sampleRate,
    channels,
    sampleFormat: raw.sampleFormat,
    blockAlign: channels * BYTES[raw.sampleFormat],
    dataOffset: 0,
    dataBytes: totalBytes,
    readToEnd: true,
  };
}

/**
 * Decodes the whole frames in `src` (raw sample data of `h`) into mono samples at `out[at...]`,
 * averaging the channels. `firstFrame` is the index of src's first frame in the file, for errors.
 * Returns the number of frames written.
 */
export function decodeWavFrames(h: WavHeader, src: Uint8Array, out: Float32Array, at: number, firstFrame = 0): number {
  const ch = h.channels;
  const frames = Math.floor(src.length / h.blockAlign);
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const inv = 1 / ch;
  let p = 0;
  const badSample = (k: number): never => {
    const frame = firstFrame + Math.floor(k / ch);
    throw invalidAudio(
      'non_finite_samples',
      `the WAV file holds a NaN or infinite sample at ${(frame / h.sampleRate).toFixed(3)} s`,
    );
  };
  // One loop per format keeps each loop monomorphic and fast; channels are summed as we go.
  switch (h.sampleFormat) {
    case 'pcm_u8': {
      const s = inv / 128;
      for (let f = 0; f < frames; f++) {
        let acc = 0;
        for (let c = 0; c < ch; c++) acc += src[p++]! - 128;
        out[at + f] = acc * s;
      }
      break;
    }
    case 'pcm_s16le': {
      const s = inv / 32768;
      for (let f = 0; f < frames; f++) {
        let acc = 0;
        for (let c = 0; c < ch; c++, p += 2) acc += dv.getInt16(p, true);
        out[at + f] = acc * s;
      }
      break;
    }
    case 'pcm_s24le': {
      const s = inv / 8388608;
      for (let f = 0; f < frames; f++) {
        let acc = 0;
        for (let c = 0; c < ch; c++, p += 3) acc += ((src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16)) << 8) >> 8;
        out[at + f] = acc * s;
      }
      break;
    }
    case 'pcm_s32le': {
      const s = inv / 2147483648;
      for (let f = 0; f < frames; f++) {
        let acc = 0;
        for (let c = 0; c < ch; c++, p += 4) acc += dv.getInt32(p, true);
        out[at + f] = acc * s;
      }
      break;
    }
    case 'pcm_f32le':
    case 'pcm_f64le': {
      const f64 = h.sampleFormat === 'pcm_f64le';
      const step = f64 ? 8 : 4;
      for (let f = 0, k = 0; f < frames; f++) {
        let acc = 0;
        for (let c = 0; c < ch; c++, p += step, k++) {
          const v = f64 ? dv.getFloat64(p, true) : dv.getFloat32(p, true);
          if (v - v !== 0) badSample(k); // NaN and ±Infinity both give NaN here
          acc += v > 1 ? 1 : v < -1 ? -1 : v;
        }
        out[at + f] = acc * inv;
      }
      break;
    }
    case 'pcm_mulaw':
    case 'pcm_alaw': {
      const t = h.sampleFormat === 'pcm_mulaw' ? MU_LAW : A_LAW;
      for (let f = 0; f < frames; f++) {
        let acc = 0;
        for (let c = 0; c < ch; c++) acc += t[src[p++]!]!;
        out[at + f] = acc * inv;
      }
      break;
    }
  }
  return frames;
}

export function formatName(h: WavHeader): string {
  return `${h.dataOffset === 0 ? 'raw' : 'wav'}/${h.sampleFormat}`;
}

/** Frames decoded per chunk handed to a sink. */
export const CHUNK_FRAMES = 1 << 16;

/**
 * Decodes a complete WAV file held in memory to mono chunks at its own rate (channels are
 * averaged: earshot only ever needs mono), handed to the sink `open` returns. A file over
 * `maxDurationS` is refused from its header, before anything is decoded. Returns the frame count.
 */
export function decodeWavBytes(
  bytes: Uint8Array,
  opts: { maxDurationS?: number; raw?: RawPcmFormat },
  open: OpenSink,
): number {
  let h: WavHeader;
  if (opts.raw) {
    h = rawPcmHeader(opts.raw, bytes.length);
  } else {
    const r = parseWavHeader(bytes, bytes.length, opts.maxDurationS);
    if ('needBytes' in r) throw invalidAudio('truncated', 'the WAV file ends inside its header');
    h = r.header;
  }
  const frames = Math.floor(h.dataBytes / h.blockAlign);
  if (opts.maxDurationS !== undefined && frames > maxFrames(opts.maxDurationS, h.sampleRate)) {
    throw tooLong(opts.maxDurationS);
  }
  if (frames === 0) throw invalidAudio('no_audio_data', 'the WAV file contains no samples');
  const write = open({ sampleRate: h.sampleRate, channels: h.channels, format: formatName(h) });
  for (let done = 0; done < frames; ) {
    const n = Math.min(CHUNK_FRAMES, frames - done);
    const part = new Float32Array(n);
    const from = h.dataOffset + done * h.blockAlign;
    decodeWavFrames(h, bytes.subarray(from, from + n * h.blockAlign), part, 0, done);
    write(part);
    done += n;
  }
  return frames;
}

/** decodeWavBytes, collected: the whole file (or raw PCM) as mono samples at its own rate. */
export function parseWav(bytes: Uint8Array, opts: { maxDurationS?: number; raw?: RawPcmFormat } = {}): MonoPcm {
  let info: SourceInfo | undefined;
  const parts: Float32Array[] = [];
  decodeWavBytes(bytes, opts, (i) => {
    info = i;
    return (x) => parts.push(x);
  });
  return { ...info!, samples: concatFloat32(parts) };
}
