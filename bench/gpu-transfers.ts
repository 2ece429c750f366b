// Host<->device bytes per decoder step on WebGPU, with the model's state copied through the host
// (keepOnDevice off: what every run did before) and kept on the device (the default). Counts the
// bytes of the host tensors fed to and fetched from each session.run (WhisperModel.transfers),
// which on a GPU cross PCIe (on lavapipe, Dawn's copies). Small runs: a prompt and a few greedy
// steps per batch size, test-model weights at the dims named.
//   npx tsx bench/gpu-transfers.ts [--dims small,tiny] [--batches 1,4] [--steps 4]
import './../src/engine/telemetry-off.ts';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { type DimsName, testModelDir } from '../scripts/test-model/index.ts';
import { parseEngineOptions } from '../src/engine/execution.ts';
import { WhisperModel } from '../src/engine/whisper-model.ts';

const { values } = parseArgs({ options: { dims: { type: 'string', default: 'small,tiny' }, batches: { type: 'string', default: '1,4' }, steps: { type: 'string', default: '4' } } });
const steps = Number(values.steps);
const TEXT_ONLY = { ids: [], ranges: [] as [number, number][] };

async function perStep(dir: string, batch: number, keepOnDevice: boolean) {
  const files = { encoder: join(dir, 'onnx/encoder_model.onnx'), decoder: join(dir, 'onnx/decoder_model_merged.onnx') };
  const model = await WhisperModel.load(dir, files, parseEngineOptions({ device: 'webgpu' }), { keepOnDevice });
  try {
    const encoded = await model.encode(new Float32Array(batch * model.dims.nMels * 3000).map((_, i) => Math.sin(i * 0.37)), batch);
    const greedy = Array.from({ length: batch }, () => TEXT_ONLY);
    let out = await model.decode(BigInt64Array.from({ length: batch * 4 }, (_, i) => [50258n, 50259n, 50359n, 50363n][i % 4]!), batch, encoded, null, { greedy });
    for (let s = 0; s < steps; s++) {
      const next = BigInt64Array.from(out.picks!, (p) => BigInt(p!.token));
      out = await model.decode(next, batch, encoded, out.cache, { greedy });
    }
    const t = model.transfers.step;
    return { up: t.up / t.runs, down: t.down / t.runs };
  } finally {
    await model.release();
  }
}

const bytes = (n: number) => Math.round(n).toLocaleString('en');
console.log('| dims | batch | state | up bytes/step | down bytes/step | total bytes/step |');
console.log('|---|---:|---|---:|---:|---:|');
for (const dims of values.dims.split(',') as DimsName[]) {
  const dir = testModelDir({ preset: 'english', dims });
  for (const batch of values.batches.split(',').map(Number)) {
    for (const keep of [false, true]) {
      const r = await perStep(dir, batch, keep);
      console.log(`| ${dims} | ${batch} | ${keep ? 'on the device' : 'via the host'} | ${bytes(r.up)} | ${bytes(r.down)} | ${bytes(r.up + r.down)} |`);
    }
  }
}
