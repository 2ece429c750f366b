// The long-form log-mel off the main thread. A 10 min file's mel takes about a second of CPU, and
// everything else in the process (other requests, streams, the HTTP server) waits while it runs on
// the event loop; a worker thread computes it instead. Short files stay on the main thread, where
// the job costs less than the round trip. One worker: the other cores belong to onnxruntime.
import { Worker } from 'node:worker_threads';
import { TARGET_SAMPLE_RATE } from '../audio/types.ts';
import { EarshotError } from '../errors.ts';
import { workerBoot } from '../worker-boot.ts';
import type { FeatureConfig } from './config.ts';
import { type LogMelExtractor, LongFormMel } from './log-mel.ts';
import type { MelJob, MelReply } from './mel-worker.ts';

/** Inputs shorter than this (in samples, 60 s at 16 kHz) are computed in place. */
const IN_PLACE_BELOW = 60 * TARGET_SAMPLE_RATE;

export class MelPool {
  private worker: Worker | null = null;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (m: LongFormMel) => void; reject: (e: unknown) => void }>();

  constructor(
    private readonly extractor: LogMelExtractor,
    private readonly inPlaceBelow = IN_PLACE_BELOW,
  ) {}

  get config(): FeatureConfig {
    return this.extractor.config;
  }

  /** What `LogMelExtractor.longForm` gives, computed in the worker for long inputs. */
  longForm(samples: Float32Array): Promise<LongFormMel> {
    if (samples.length < this.inPlaceBelow) {
      try {
        return Promise.resolve(this.extractor.longForm(samples));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<LongFormMel>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      if (this.waiting.size === 1) worker.ref();
      const job: MelJob = { id, samples };
      worker.postMessage(job);
    });
  }

  /** Jobs sent to the worker and not answered yet. */
  get pending(): number {
    return this.waiting.size;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(workerBoot(new URL('./mel-worker.ts', import.meta.url)), { eval: true, workerData: this.extractor.config });
    w.unref(); // an idle pool never keeps the process alive
    w.on('message', (m: MelReply) => {
      const p = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) w.unref();
      if (!p) return;
      if (m.ok) p.resolve(new LongFormMel(m.raw, m.nMels, m.nFrames, m.chunkFrames, m.logMax));
      else p.reject(new EarshotError(m.error.kind ?? 'internal', m.error.code ?? 'mel_failed', m.error.message));
    });
    const fail = (e: unknown) => {
      if (this.worker === w) this.worker = null;
      const err = new EarshotError('internal', 'mel_worker_failed', `the log-mel worker stopped: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      for (const p of this.waiting.values()) p.reject(err);
      this.waiting.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => {
      if (this.waiting.size > 0) fail(new Error(`exit code ${code}`));
      if (this.worker === w) this.worker = null;
    });
    this.worker = w;
    return w;
  }
}
