// Worker-thread side of mel-pool.ts: computes long-form log-mels and sends the raw array back
// (transferred, not copied).
import { parentPort, workerData } from 'node:worker_threads';
import { type ErrorKind, isEarshotError } from '../errors.ts';
import type { FeatureConfig } from './config.ts';
import { LogMelExtractor } from './log-mel.ts';

export interface MelJob {
  id: number;
  samples: Float32Array;
}

export type MelReply =
  | { id: number; ok: true; raw: Float32Array; nMels: number; nFrames: number; chunkFrames: number; logMax: number }
  | { id: number; ok: false; error: { kind?: ErrorKind; code?: string; message: string } };

const extractor = new LogMelExtractor(workerData as FeatureConfig);

parentPort!.on('message', ({ id, samples }: MelJob) => {
  let reply: MelReply;
  try {
    const mel = extractor.longForm(samples);
    // LongFormMel keeps the array it is built from private (its name has changed before), so it is
    // found by what it is: the one [nMels × nFrames] float array. The pool rebuilds the object from it.
    const raw = Object.values(mel).find((v) => v instanceof Float32Array && v.length === mel.nMels * mel.nFrames) as Float32Array | undefined;
    if (!raw) throw new Error('LongFormMel holds no [nMels × nFrames] array to send back');
    reply = { id, ok: true, raw, nMels: mel.nMels, nFrames: mel.nFrames, chunkFrames: mel.chunkFrames, logMax: mel.logMax };
    parentPort!.postMessage(reply, [raw.buffer as ArrayBuffer]);
  } catch (error) {
    // Errors cross the thread as plain data; typed ones keep their kind and code.
    const e = error as Error;
    reply = { id, ok: false, error: isEarshotError(e) ? { kind: e.kind, code: e.code, message: e.message } : { message: String(e?.message ?? e) } };
    parentPort!.postMessage(reply);
  }
});
