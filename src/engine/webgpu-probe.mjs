// Run by execution.ts as a child process, never imported: is there a WebGPU adapter here that
// onnxruntime's WebGPU provider can use, and what is it? A child, because a broken Vulkan driver
// can crash or hang the process that asks, and the caller must live to fall back to the CPU. Plain
// JavaScript, so that asking costs no TypeScript loader. Prints one JSON line: { adapter: {vendor, architecture, device, description, fallback, limits}
// | null, usable, error? }.
//  - adapter: what Dawn reports for the adapter it would pick (the `webgpu` package, Dawn's own
//    Node binding: onnxruntime-node has no API that tells);
//  - usable: whether onnxruntime's own Dawn creates a WebGPU session on the tiny model; that is
//    the answer that counts (its Dawn refuses some drivers that others take).
import { createRequire } from 'node:module';

// onnxruntime's telemetry off before the library loads, as src/engine/telemetry-off.ts does for
// earshot's own processes (the parent also passes it in the environment).
process.env.ORT_DISABLE_TELEMETRY = '1';

const require = createRequire(import.meta.url);
const LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
];

/** The smallest model a session can be created on: y = x + x. */
function tinyModel() {
  const { onnx } = require('onnx-proto');
  const info = (name) => ({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: 2 }] } } } });
  const graph = { name: 'webgpu_probe', node: [{ opType: 'Add', input: ['x', 'x'], output: ['y'] }], input: [info('x')], output: [info('y')] };
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph })).finish();
}

const result = { adapter: null, usable: false };
try {
  const { create } = await import('webgpu');
  const adapter = await create([]).requestAdapter({ powerPreference: 'high-performance' });
  if (adapter) {
    const { vendor, architecture, device, description } = adapter.info;
    result.adapter = {
      vendor,
      architecture,
      device,
      description,
      // Dawn's name for a software adapter (lavapipe, SwiftShader): a CPU pretending to be a GPU.
      fallback: adapter.info.isFallbackAdapter === true,
      limits: Object.fromEntries(LIMITS.map((k) => [k, adapter.limits[k]])),
    };
  }
} catch {
  // No description; onnxruntime's answer below still decides.
}
try {
  const ort = require('onnxruntime-node');
  const session = await ort.InferenceSession.create(tinyModel(), { executionProviders: ['webgpu'], logSeverityLevel: 3 });
  await session.release();
  result.usable = true;
} catch (e) {
  const message = String(e?.message ?? e);
  result.error = (message.match(/Failed to get a WebGPU adapter.*/)?.[0] ?? message.split('\n')[0]).trim();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
// Dawn's instances may keep the loop alive; the answer is out.
process.exit(0);
