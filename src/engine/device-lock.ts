// One WebGPU call at a time in the whole process. onnxruntime's WebGPU provider keeps one device
// context per process, shared by every session, and that context is not safe to use from two
// threads at once: two models in two worker threads running together fail with errors such as
// "command.compute_pipeline.has_value() was false" (test/gpu/webgpu.test.ts runs two). Within one
// thread onnxruntime-node already runs one session call at a time, so the lock is across threads:
// a word in a SharedArrayBuffer, made by the main thread and handed to each model worker.
import { isMainThread } from 'node:worker_threads';

type WaitAsync = (a: Int32Array, index: number, value: number) => { async: false } | { async: true; value: Promise<unknown> };

export class DeviceLock {
  private readonly word: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.word = new Int32Array(buffer);
  }

  /** Runs `fn` once no other thread's `run` is inside its own `fn`. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    // Taken by whoever turns 0 into 1; the others wait (without blocking their event loop) for a
    // release to notify them, and try again.
    while (Atomics.compareExchange(this.word, 0, 0, 1) !== 0) {
      const wait = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync(this.word, 0, 1);
      if (!wait.async) continue;
      // A pending waitAsync does not keep the thread's event loop alive (a worker with nothing else
      // to do would exit while waiting): a timer does, until the release.
      const alive = setInterval(() => {}, 1 << 30);
      try {
        await wait.value;
      } finally {
        clearInterval(alive);
      }
    }
    try {
      return await fn();
    } finally {
      Atomics.store(this.word, 0, 0);
      Atomics.notify(this.word, 0);
    }
  }
}

let current: DeviceLock | undefined = isMainThread ? new DeviceLock() : undefined;

/** This process's lock: the main thread's, or the one a worker was handed (see adoptDeviceLock). */
export function deviceLock(): DeviceLock {
  current ??= new DeviceLock(); // a worker started by something other than RemoteRunner
  return current;
}

/** In a worker: use the lock its parent handed over (DeviceLock.buffer). */
export function adoptDeviceLock(buffer: SharedArrayBuffer): void {
  current = new DeviceLock(buffer);
}
