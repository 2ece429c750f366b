// Deterministic weights. Every tensor gets its own stream, seeded from (seed, tensor name), so a
// tensor's values never depend on how many other tensors were drawn before it: the fp32 and the
// quantised files of one build, and builds with different dtype lists, share the same weights.
// xoshiro128** is a few lines; no npm package offers a seedable, name-keyed stream this small.
import { createHash } from 'node:crypto';

function xoshiro128ss(a: number, b: number, c: number, d: number): () => number {
  if ((a | b | c | d) === 0) a = 1; // the all-zero state is a fixed point
  return () => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return r / 4294967296;
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A uniform [0, 1) stream keyed by seed and name. */
export function streamFor(seed: number, name: string): () => number {
  const digest = createHash('sha256').update(`${seed}:${name}`).digest();
  return xoshiro128ss(digest.readUInt32LE(0), digest.readUInt32LE(4), digest.readUInt32LE(8), digest.readUInt32LE(12));
}

/** `count` values with mean `mean` and standard deviation `std` (uniform, so bounded). */
export function randomValues(seed: number, name: string, count: number, std: number, mean = 0): Float32Array {
  const next = streamFor(seed, name);
  const half = std * Math.sqrt(3);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = mean + (2 * next() - 1) * half;
  return out;
}
