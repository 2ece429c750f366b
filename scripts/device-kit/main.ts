// The device kit's entry point (scripts/device-kit/): `node gpu.mjs [options]` is `npm run bench -- gpu
// [options]` without tsx or bench/run.ts's lookup of bench files, which a bundle does not have.
import '../../src/engine/telemetry-off.ts'; // first: onnxruntime's telemetry off before the library loads
import { run } from '../../bench/gpu.ts';

await run(process.argv.slice(2));
