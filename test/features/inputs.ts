// Test inputs for the features tests: a reader for openai's mel_filters.npz (a zip of .npy
// files) and a deterministic 45 s input.
import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';

export const fixtures = new URL('../fixtures/', import.meta.url);
export const sharedAudio = new URL('../../../shared/audio/', import.meta.url);

/** Arrays of an .npz (float32, C order), by name without the `.npy` suffix. */
export function readNpz(path: URL): Map<string, { shape: number[]; data: Float32Array }> {
  const zip = readFileSync(path);
  const arrays = new Map<string, { shape: number[]; data: Float32Array }>();
  let at = 0;
  // Walk the local file headers (signature PK\3\4) until the central directory.
  while (zip.readUInt32LE(at) === 0x04034b50) {
    const method = zip.readUInt16LE(at + 8);
    const compressed = zip.readUInt32LE(at + 18);
    const nameLength = zip.readUInt16LE(at + 26);
    const extraLength = zip.readUInt16LE(at + 28);
    const name = zip.toString('latin1', at + 30, at + 30 + nameLength);
    const begin = at + 30 + nameLength + extraLength;
    const body = zip.subarray(begin, begin + compressed);
    const npy = method === 8 ? inflateRawSync(body) : Buffer.from(body);
    arrays.set(name.replace(/\.npy$/, ''), parseNpy(npy));
    at = begin + compressed;
  }
  return arrays;
}

function parseNpy(npy: Buffer): { shape: number[]; data: Float32Array } {
  if (npy.toString('latin1', 1, 6) !== 'NUMPY') throw new Error('not an .npy file');
  const major = npy[6];
  const headerLength = major === 1 ? npy.readUInt16LE(8) : npy.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = npy.toString('latin1', headerStart, headerStart + headerLength);
  if (!header.includes("'<f4'") || header.includes("'fortran_order': True")) {
    throw new Error(`unexpected .npy header ${header}`);
  }
  const shape = (/'shape': \(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .filter((s) => s.trim() !== '')
    .map(Number);
  const bytes = npy.subarray(headerStart + headerLength);
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  return { shape, data };
}

/** Deterministic PRNG (mulberry32) so inputs are the same in every run. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * 45 s of audio: jfk.wav repeated at different gains, plus tones and low noise, with a louder
 * passage after 30 s so that the long-form max differs from the first window's.
 */
export function longInput(jfk: Float32Array, seconds = 45): Float32Array {
  const rate = 16000;
  const out = new Float32Array(seconds * rate);
  const next = random(7);
  for (let i = 0; i < out.length; i++) {
    const copy = Math.floor(i / jfk.length);
    const gain = copy % 2 === 0 ? 0.8 : 0.3;
    const loud = i > 36 * rate && i < 38 * rate ? 8 : 1;
    const tone = 0.05 * Math.sin((2 * Math.PI * (220 + 40 * copy) * i) / rate);
    out[i] = loud * gain * jfk[i % jfk.length] + tone + 0.002 * (next() * 2 - 1);
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}
