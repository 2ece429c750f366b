// Shared signals for the VAD tests: the real English clips, seeded low noise, and clips joined
// with long pauses, with the spans where each clip sits.
import { decodeAudio } from '../../src/audio/index.ts';
import { SHARED_AUDIO } from '../audio/support.ts';

export const SR = 16000;
export const REAL_EN = `${SHARED_AUDIO}real-en/`;

export async function clip(name: string): Promise<Float32Array> {
  return (await decodeAudio(`${REAL_EN}${name}.wav`)).samples;
}

/** Seeded Gaussian noise of standard deviation `amplitude` (0.01 is -40 dBFS). */
export function noise(samples: number, amplitude: number, seed = 1): Float32Array {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 1) / 4294967297;
  };
  const out = new Float32Array(samples);
  for (let i = 0; i < samples; i++) out[i] = amplitude * Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
  return out;
}

export interface Joined {
  samples: Float32Array;
  /** Where each clip sits, in seconds: [start, end). */
  clips: [number, number][];
}

/** `pause` seconds of low noise before, between and after the clips. */
export async function withPauses(names: string[], pause = 10): Promise<Joined> {
  const gap = noise(pause * SR, 0.001, 7);
  const parts: Float32Array[] = [gap];
  const clips: [number, number][] = [];
  let at = gap.length;
  for (const n of names) {
    const c = await clip(n);
    clips.push([at / SR, (at + c.length) / SR]);
    parts.push(c, gap);
    at += c.length + gap.length;
  }
  const samples = new Float32Array(at);
  let o = 0;
  for (const p of parts) {
    samples.set(p, o);
    o += p.length;
  }
  return { samples, clips };
}
