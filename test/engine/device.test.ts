// Which device runs the model: the policy on hand-made facts (every branch, including the
// hardware GPU this machine lacks), and the real WebGPU probe on this machine, where CI installs
// Mesa's lavapipe (.ci/run) and a Vulkan loader pointed at no driver stands for a machine without.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chooseDevice,
  cudaProviderInstalled,
  describeDevice,
  pickDevice,
  probeWebGpu,
  type DeviceFacts,
  type WebGpuAdapter,
  type WebGpuProbe,
} from '../../src/engine/execution.ts';
import { isEarshotError } from '../../src/errors.ts';

const LIMITS = { maxBufferSize: 1 << 30 };
const HARDWARE: WebGpuAdapter = { vendor: 'nvidia', architecture: 'hopper', device: 'h100', description: 'NVIDIA H100', fallback: false, limits: LIMITS };
const SOFTWARE: WebGpuAdapter = { vendor: 'mesa', architecture: 'software', device: 'llvmpipe', description: 'llvmpipe: Mesa', fallback: true, limits: LIMITS };
const NONE: WebGpuProbe = { adapter: null, usable: false, error: 'Failed to get a WebGPU adapter: No supported adapters' };

/** Facts that count how often WebGPU was asked about. */
function facts(cuda: boolean, webgpu: WebGpuProbe): DeviceFacts & { probes: number } {
  const f = {
    probes: 0,
    cudaInstalled: () => cuda,
    webgpu: () => {
      f.probes++;
      return webgpu;
    },
  };
  return f;
}

const usable = (adapter: WebGpuAdapter | null): WebGpuProbe => ({ adapter, usable: true });

test('auto: CUDA when installed, else WebGPU on a hardware adapter, else the CPU, each with its reason', () => {
  const cuda = facts(true, usable(HARDWARE));
  assert.deepEqual(pickDevice('auto', cuda), { requested: 'auto', device: 'cuda', reason: 'auto: the CUDA provider is installed' });
  assert.equal(cuda.probes, 0, 'WebGPU is not probed when CUDA wins');

  const gpu = pickDevice('auto', facts(false, usable(HARDWARE)));
  assert.equal(gpu.device, 'webgpu');
  assert.deepEqual(gpu.adapter, HARDWARE);
  assert.match(gpu.reason, /no CUDA provider; WebGPU adapter NVIDIA H100/);

  const software = pickDevice('auto', facts(false, usable(SOFTWARE)));
  assert.equal(software.device, 'cpu', 'a software adapter is the CPU again, only slower');
  assert.match(software.reason, /llvmpipe: Mesa, is a software one/);

  const none = pickDevice('auto', facts(false, NONE));
  assert.equal(none.device, 'cpu');
  assert.match(none.reason, /no usable WebGPU adapter \(Failed to get a WebGPU adapter: No supported adapters\)/);

  // onnxruntime can use WebGPU although Dawn's Node binding gave no description: take it.
  assert.equal(pickDevice('auto', facts(false, usable(null))).device, 'webgpu');
});

test('named devices: taken as asked, or a one-line error that says what to install', () => {
  const cpu = facts(true, usable(HARDWARE));
  assert.equal(pickDevice('cpu', cpu).device, 'cpu');
  assert.equal(cpu.probes, 0, 'the CPU asks nothing');
  assert.equal(pickDevice('cuda', facts(true, NONE)).device, 'cuda');
  assert.throws(() => pickDevice('cuda', facts(false, usable(HARDWARE))), (e) => isEarshotError(e) && e.code === 'cuda_unavailable');

  // Asked for by name, even a software adapter is used (that is how CI runs the GPU path).
  const soft = pickDevice('webgpu', facts(false, usable(SOFTWARE)));
  assert.deepEqual([soft.device, soft.reason, soft.adapter], ['webgpu', 'requested', SOFTWARE]);
  assert.equal(describeDevice(soft), 'webgpu (llvmpipe: Mesa): requested');
  assert.throws(
    () => pickDevice('webgpu', facts(true, NONE)),
    (e) =>
      isEarshotError(e) &&
      e.code === 'webgpu_unavailable' &&
      e.kind === 'invalid_argument' &&
      !e.message.includes('\n') &&
      /No supported adapters/.test(e.message) &&
      /install a Vulkan driver/.test(e.message) &&
      /libvulkan1/.test(e.message),
  );
});

/** probeWebGpu with the Vulkan loader's driver list replaced (the probe's child inherits it). */
function probeWith(env: Record<string, string>): WebGpuProbe {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return probeWebGpu();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

test('the probe finds this machine\'s Vulkan adapter, and none when the loader has no driver', () => {
  const here = probeWebGpu();
  assert.equal(here.usable, true, `onnxruntime's WebGPU provider starts here (CI installs lavapipe): ${here.error}`);
  assert.ok(here.adapter && here.adapter.description.length > 0, 'Dawn describes the adapter');
  assert.ok((here.adapter.limits.maxStorageBufferBindingSize ?? 0) > 0, 'with its limits');
  // chooseDevice decides on this probe as the policy says.
  assert.deepEqual(chooseDevice('auto'), pickDevice('auto', facts(cudaProviderInstalled(), here)));

  const none = probeWith({ VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' });
  assert.equal(none.usable, false);
  assert.match(none.error ?? '', /Failed to get a WebGPU adapter/);
});
