// Shared helpers for the audio tests: the shared clips and their manifests, ffmpeg as reference
// decoder and file generator, a small WAV writer for variants ffmpeg cannot produce (lying
// headers, odd chunks), a FLAC "decompression bomb" writer, and signal comparison metrics.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ffmpegPath } from '../../src/audio/index.ts';

export const SHARED_AUDIO = fileURLToPath(new URL('../../../shared/audio/', import.meta.url));
export const JFK = `${SHARED_AUDIO}real-en/jfk.wav`;

export interface ManifestEntry {
  path: string;
  duration_s: number | null;
  sample_rate: number | null;
  channels: number | null;
  expect?: string;
  [k: string]: unknown;
}

export function manifest(folder: string): ManifestEntry[] {
  return readFileSync(`${SHARED_AUDIO}${folder}/manifest.jsonl`, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as ManifestEntry);
}

/** Runs ffmpeg synchronously; returns stdout. Throws with stderr when it fails. */
export function ffmpeg(args: string[], input?: Uint8Array): Buffer {
  const r = spawnSync(ffmpegPath(), ['-hide_banner', '-loglevel', 'error', '-nostdin', ...args], {
    input,
    maxBuffer: 1 << 30,
  });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

/**
 * ffmpeg's own decode of a file: float at the file's rate (the reference decoder). A file with
 * `channels` > 1 is averaged to mono here (ffmpeg's -ac 1 mixes stereo at another gain).
 */
export function ffmpegDecode(path: string, channels = 1): Float32Array {
  const out = ffmpeg(['-i', path, ...(channels === 1 ? ['-ac', '1'] : []), '-f', 'f32le', '-c:a', 'pcm_f32le', 'pipe:1']);
  const all = new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
  if (channels === 1) return all;
  const mono = new Float32Array(all.length / channels);
  for (let f = 0; f < mono.length; f++) {
    let acc = 0;
    for (let c = 0; c < channels; c++) acc += all[f * channels + c]!;
    mono[f] = acc / channels;
  }
  return mono;
}

/** The 16 kHz mono s16 samples of jfk.wav as floats, read by ffmpeg (not by the code under test). */
export function jfkSamples(): Float32Array {
  return ffmpegDecode(JFK);
}

export type WavCoding = 'u8' | 's16' | 's24' | 's32' | 'f32' | 'f64';

export interface WavSpec {
  coding: WavCoding;
  sampleRate: number;
  /** One array per channel, equal lengths. */
  channels: Float32Array[];
  extensible?: boolean;
  /** Chunks written between fmt and data, e.g. LIST, fact, an odd-sized one (then padded). */
  extraChunks?: { id: string; body: Uint8Array }[];
  /** Overrides the data chunk's size field (lying or placeholder headers). */
  dataSizeField?: number;
  /** Overrides fields of the fmt chunk. */
  fmt?: Partial<{ tag: number; channels: number; sampleRate: number; blockAlign: number; bits: number }>;
  rf64?: boolean;
}

const BITS: Record<WavCoding, number> = { u8: 8, s16: 16, s24: 24, s32: 32, f32: 32, f64: 64 };

/** A small WAV writer, independent of the reader under test. */
export function writeWav(spec: WavSpec): Uint8Array {
  const ch = spec.channels.length;
  const frames = spec.channels[0]?.length ?? 0;
  const bits = BITS[spec.coding];
  const bps = bits / 8;
  const dataBytes = frames * ch * bps;
  const data = new DataView(new ArrayBuffer(dataBytes));
  const clip = (v: number) => Math.max(-1, Math.min(1, v));
  for (let f = 0, p = 0; f < frames; f++) {
    for (let c = 0; c < ch; c++, p += bps) {
      const v = spec.channels[c]![f]!;
      switch (spec.coding) {
        case 'u8': data.setUint8(p, Math.max(0, Math.min(255, Math.round(clip(v) * 128 + 128)))); break;
        case 's16': data.setInt16(p, Math.max(-32768, Math.min(32767, Math.round(clip(v) * 32768))), true); break;
        case 's24': {
          const x = Math.max(-8388608, Math.min(8388607, Math.round(clip(v) * 8388608)));
          data.setUint8(p, x & 0xff); data.setUint8(p + 1, (x >> 8) & 0xff); data.setUint8(p + 2, (x >> 16) & 0xff);
          break;
        }
        case 's32': data.setInt32(p, Math.max(-2147483648, Math.min(2147483647, Math.round(clip(v) * 2147483648))), true); break;
        case 'f32': data.setFloat32(p, v, true); break;
        case 'f64': data.setFloat64(p, v, true); break;
      }
    }
  }
  const tag = spec.coding.startsWith('f') ? 3 : 1;
  const f = { tag, channels: ch, sampleRate: spec.sampleRate, blockAlign: ch * bps, bits, ...spec.fmt };
  const fmt = new DataView(new ArrayBuffer(spec.extensible ? 40 : 16));
  fmt.setUint16(0, spec.extensible ? 0xfffe : f.tag, true);
  fmt.setUint16(2, f.channels, true);
  fmt.setUint32(4, f.sampleRate, true);
  fmt.setUint32(8, f.sampleRate * f.blockAlign, true);
  fmt.setUint16(12, f.blockAlign, true);
  fmt.setUint16(14, f.bits, true);
  if (spec.extensible) {
    fmt.setUint16(16, 22, true);
    fmt.setUint16(18, f.bits, true);
    fmt.setUint32(20, ch === 1 ? 0x4 : 0x3, true);
    fmt.setUint32(24, f.tag, true);
    [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71].forEach((b, i) => fmt.setUint8(28 + i, b));
  }
  const chunks: { id: string; body: Uint8Array; size?: number }[] = [];
  if (spec.rf64) {
    const ds64 = new DataView(new ArrayBuffer(28));
    ds64.setBigUint64(8, BigInt(dataBytes), true);
    ds64.setBigUint64(16, BigInt(frames), true);
    chunks.push({ id: 'ds64', body: new Uint8Array(ds64.buffer) });
  }
  chunks.push({ id: 'fmt ', body: new Uint8Array(fmt.buffer) });
  chunks.push(...(spec.extraChunks ?? []));
  chunks.push({
    id: 'data',
    body: new Uint8Array(data.buffer),
    size: spec.rf64 ? 0xffffffff : spec.dataSizeField,
  });
  const total = 12 + chunks.reduce((n, c) => n + 8 + c.body.length + (c.body.length & 1), 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const ascii = (at: number, s: string) => [...s].forEach((c, i) => (out[at + i] = c.charCodeAt(0)));
  ascii(0, spec.rf64 ? 'RF64' : 'RIFF');
  dv.setUint32(4, spec.rf64 ? 0xffffffff : total - 8, true);
  ascii(8, 'WAVE');
  let pos = 12;
  for (const c of chunks) {
    ascii(pos, c.id);
    dv.setUint32(pos + 4, c.size ?? c.body.length, true);
    out.set(c.body, pos + 8);
    pos += 8 + c.body.length + (c.body.length & 1);
  }
  return out;
}

/** Patches a little-endian uint32 / uint16 into a copy of `bytes`. */
export function patch(bytes: Uint8Array, at: number, value: number, width: 2 | 4 = 4): Uint8Array {
  const copy = bytes.slice();
  const dv = new DataView(copy.buffer);
  if (width === 4) dv.setUint32(at, value, true);
  else dv.setUint16(at, value, true);
  return copy;
}

// --- FLAC "decompression bomb": hours of silence in a few hundred KB -------------------------

function crc8(b: number[]): number {
  let c = 0;
  for (const x of b) {
    c ^= x;
    for (let i = 0; i < 8; i++) c = c & 0x80 ? ((c << 1) ^ 0x07) & 0xff : (c << 1) & 0xff;
  }
  return c;
}

function crc16(b: number[]): number {
  let c = 0;
  for (const x of b) {
    c ^= x << 8;
    for (let i = 0; i < 8; i++) c = c & 0x8000 ? ((c << 1) ^ 0x8005) & 0xffff : (c << 1) & 0xffff;
  }
  return c;
}

function utf8Number(n: number): number[] {
  if (n < 0x80) return [n];
  if (n < 0x800) return [0xc0 | (n >> 6), 0x80 | (n & 0x3f)];
  if (n < 0x10000) return [0xe0 | (n >> 12), 0x80 | ((n >> 6) & 0x3f), 0x80 | (n & 0x3f)];
  return [0xf0 | (n >> 18), 0x80 | ((n >> 12) & 0x3f), 0x80 | ((n >> 6) & 0x3f), 0x80 | (n & 0x3f)];
}

/**
 * A valid FLAC stream of `seconds` of digital silence (mono, 16-bit): every frame is 65535
 * samples with one CONSTANT subframe, ~15 bytes. 10 h at 48 kHz is ~400 KB that decodes to 7 GB.
 */
export function flacSilence(seconds: number, sampleRate: number): Uint8Array {
  const total = Math.round(seconds * sampleRate);
  const block = 65535;
  const head = [0x66, 0x4c, 0x61, 0x43, 0x80, 0x00, 0x00, 34];
  // STREAMINFO: block sizes, frame sizes unknown (0), then rate(20) channels-1(3) bps-1(5) total(36).
  const si = [block >> 8, block & 0xff, block >> 8, block & 0xff, 0, 0, 0, 0, 0, 0];
  const packed = (BigInt(sampleRate) << 44n) | (0n << 41n) | (15n << 36n) | BigInt(total);
  for (let i = 7; i >= 0; i--) si.push(Number((packed >> BigInt(i * 8)) & 0xffn));
  si.push(...new Array(16).fill(0));
  const bytes: number[] = [...head, ...si];
  for (let n = 0, done = 0; done < total; n++) {
    const size = Math.min(block, total - done);
    // sync + fixed blocking; block size from 16-bit field (0111), rate from STREAMINFO (0000);
    // mono (0000), 16-bit (100), reserved 0.
    const h = [0xff, 0xf8, 0x70, 0x08, ...utf8Number(n), (size - 1) >> 8, (size - 1) & 0xff];
    h.push(crc8(h));
    const frame = [...h, 0x00, 0x00, 0x00]; // CONSTANT subframe, value 0
    const c = crc16(frame);
    bytes.push(...frame, c >> 8, c & 0xff);
    done += size;
  }
  return Uint8Array.from(bytes);
}

// --- signal metrics --------------------------------------------------------------------------

/** Lag (in samples) of `x` against `ref` maximising the correlation over a window of `ref`. */
export function bestLag(ref: Float32Array, x: Float32Array, maxLag: number, from = 16000, len = 8000): number {
  let best = 0;
  let bestV = -Infinity;
  for (let lag = -maxLag; lag <= maxLag; lag++) {
    let acc = 0;
    for (let i = from; i < from + len; i++) acc += ref[i]! * (x[i + lag] ?? 0);
    if (acc > bestV) {
      bestV = acc;
      best = lag;
    }
  }
  return best;
}

/** Normalised correlation of ref[i] and x[i + lag] over their overlap (1 = same shape). */
export function correlation(ref: Float32Array, x: Float32Array, lag = 0): number {
  let rx = 0, rr = 0, xx = 0;
  for (let i = Math.max(0, -lag); i < ref.length && i + lag < x.length; i++) {
    const a = ref[i]!, b = x[i + lag]!;
    rx += a * b; rr += a * a; xx += b * b;
  }
  return rx / Math.sqrt(rr * xx);
}

/** Signal-to-error ratio in dB of x against ref (same gain, same alignment), over the overlap. */
export function snrDb(ref: Float32Array, x: Float32Array, lag = 0): number {
  let s = 0, e = 0;
  for (let i = Math.max(0, -lag); i < ref.length && i + lag < x.length; i++) {
    const a = ref[i]!;
    const d = a - x[i + lag]!;
    s += a * a; e += d * d;
  }
  return e === 0 ? Infinity : 10 * Math.log10(s / e);
}

export function sine(freq: number, rate: number, seconds: number, amplitude = 0.5): Float32Array {
  const x = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < x.length; i++) x[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / rate);
  return x;
}

/** RMS over x, skipping `edge` samples at both ends (filter start-up). */
export function rms(x: Float32Array, edge = 0): number {
  let s = 0;
  for (let i = edge; i < x.length - edge; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s / (x.length - 2 * edge));
}

/** Wraps raw s16le mono PCM in a canonical 44-byte WAV header. */
export function wav16(pcm: Uint8Array, sampleRate = 16000): Uint8Array {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + pcm.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([h, pcm]);
}
