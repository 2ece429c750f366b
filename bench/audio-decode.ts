// `npm run bench -- audio-decode [minutes]`: decodeAudio on a long 48 kHz stereo WAV (in-process
// reader + windowed-sinc resampler to 16 kHz mono) against the baseline of the ffmpeg CLI doing
// the same conversion with its default resampler, measured in the same run.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeAudio, ffmpegPath } from '../src/audio/index.ts';

function ffmpegBaseline(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath(), ['-hide_banner', '-loglevel', 'error', '-nostdin', '-i', path,
      '-ac', '1', '-ar', '16000', '-f', 'f32le', 'pipe:1']);
    let bytes = 0;
    child.stdout.on('data', (c: Buffer) => (bytes += c.length));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(bytes / 4) : reject(new Error(`ffmpeg exit ${code}`))));
  });
}

export async function run(args: string[]): Promise<void> {
  const minutes = Number(args[0] ?? 10);
  const dir = mkdtempSync(join(tmpdir(), 'earshot-bench-audio-'));
  try {
    const path = join(dir, 'long.wav');
    const gen = spawnSync(ffmpegPath(), ['-hide_banner', '-loglevel', 'error', '-nostdin', '-f', 'lavfi', '-i',
      `anoisesrc=r=48000:a=0.1,aformat=channel_layouts=stereo`, '-t', String(minutes * 60), '-c:a', 'pcm_s16le', path]);
    if (gen.status !== 0) throw new Error(gen.stderr.toString());
    let t = performance.now();
    const d = await decodeAudio(path);
    const ours = (performance.now() - t) / 1000;
    t = performance.now();
    const n = await ffmpegBaseline(path);
    const base = (performance.now() - t) / 1000;
    const perHour = (s: number) => ((s * 60) / minutes).toFixed(1);
    process.stdout.write(
      `audio-decode: ${minutes} min of 48 kHz stereo s16 WAV -> 16 kHz mono (${d.samples.length} / ffmpeg ${n} samples)\n` +
        `  earshot decodeAudio  ${ours.toFixed(2)} s  (${perHour(ours)} s per hour of audio)\n` +
        `  ffmpeg CLI baseline  ${base.toFixed(2)} s  (${perHour(base)} s per hour of audio)\n` +
        `  ratio earshot/ffmpeg ${(ours / base).toFixed(2)}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
