// onnxruntime's telemetry, forced off. onnxruntime-node 1.30's native library reports to Microsoft
// by default on Linux and macOS: the first InferenceSession of a process starts it, and from then on
// it keeps an event queue (model file names, graph names, run times, CPU and memory) and a device id
// in ~/.cache/Microsoft/DeveloperTools/.onnxruntime/, leaves mat-debug-<pid>.log and .ses in the temp
// dir, and about 10 s later starts looking up its collector (mobile.events.data.microsoft.com).
// earshot promises that nothing leaves the machine, so it is off in every process, whatever the user
// set: the library reads ORT_DISABLE_TELEMETRY from the process environment when that first session
// creates its environment, and keeps the answer for the life of the process.
//
// Import this module for its side effect, first, in every module that imports onnxruntime-node (or a
// package that loads it) and in every entry point: ESM evaluates imports in order, so it runs before
// any session can exist. test/security/offline.test.ts proves it with strace.
//
// Worker threads: a worker's process.env is its own copy, and assigning it there never reaches the
// native library's getenv. So the thread that starts a worker sets it first (remote-runner.ts imports
// this module), and a worker only checks that it inherited it, and refuses to go on if it did not.
import { isMainThread } from 'node:worker_threads';

/** The environment that turns it off (also given to child processes that load onnxruntime). */
export const TELEMETRY_OFF = { ORT_DISABLE_TELEMETRY: '1' } as const;

if (isMainThread) {
  Object.assign(process.env, TELEMETRY_OFF);
} else if (process.env.ORT_DISABLE_TELEMETRY !== TELEMETRY_OFF.ORT_DISABLE_TELEMETRY) {
  throw new Error(
    'onnxruntime telemetry is not off in this worker thread: the thread that started it must import src/engine/telemetry-off.ts first',
  );
}
