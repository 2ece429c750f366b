// How ONNX Runtime sessions are run: execution provider, threads, graph optimisation. The options
// are declared and validated here once; the CLI and server pass them through unchanged. Which
// device runs the model is chosen here too: the CPU, CUDA (a provider download), or onnxruntime's
// bundled WebGPU provider (Dawn over Vulkan, any vendor's GPU), with `auto` picking the first of
// CUDA and a hardware WebGPU adapter that is there, else the CPU.
import { TELEMETRY_OFF } from './telemetry-off.ts'; // first, wherever onnxruntime may load (the probe's child here)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InferenceSession } from 'onnxruntime-node';
import { z } from 'zod';
import { EarshotError } from '../errors.ts';

export const DEVICES = ['cpu', 'cuda', 'webgpu', 'auto'] as const;
export type DeviceRequest = (typeof DEVICES)[number];
/** A device sessions can run on: what a request resolves to. */
export type Device = Exclude<DeviceRequest, 'auto'>;

export const engineOptionsSchema = z.object({
  /**
   * `cpu`; `cuda` (fails when the CUDA provider is not installed); `webgpu` (fails when no WebGPU
   * adapter is found); `auto` (CUDA if installed, else WebGPU on a hardware adapter, else CPU).
   */
  device: z.enum(DEVICES).default('cpu'),
  /** Threads inside one operator; 0 lets onnxruntime pick (one per physical core). */
  intraOpThreads: z.number().int().min(0).max(1024).default(0),
  /** Threads across independent operators; only used in `parallel` execution mode. */
  interOpThreads: z.number().int().min(0).max(1024).default(0),
  graphOptimization: z.enum(['disabled', 'basic', 'extended', 'all']).default('all'),
  executionMode: z.enum(['sequential', 'parallel']).default('sequential'),
});

export type EngineOptions = z.infer<typeof engineOptionsSchema>;
export type EngineOptionsInput = z.input<typeof engineOptionsSchema>;

export function parseEngineOptions(input: EngineOptionsInput = {}): EngineOptions {
  const r = engineOptionsSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new EarshotError(
      'invalid_argument',
      'bad_engine_option',
      `invalid engine option ${issue.path.join('.')}: ${issue.message}`,
    );
  }
  return r.data;
}

/** Where onnxruntime-node keeps its native libraries; the CUDA provider must sit beside them. */
function ortBinaryDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

export function cudaProviderInstalled(): boolean {
  return existsSync(join(ortBinaryDir(), 'libonnxruntime_providers_cuda.so'));
}

export const CUDA_INSTALL_HINT =
  'the CUDA execution provider is not installed; on a machine with internet access run ' +
  '`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install` ' +
  '(needs CUDA 12 and cuDNN 9), or use --device cpu (or --device auto to fall back to the CPU)';

export const WEBGPU_INSTALL_HINT =
  'install a Vulkan driver for the GPU (NVIDIA\'s driver; for AMD and Intel, Mesa\'s mesa-vulkan-drivers) ' +
  'and the Vulkan loader (libvulkan1), or use --device cpu (or --device auto to fall back to the CPU)';

/** A WebGPU adapter as Dawn describes it. */
export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software adapter (lavapipe, SwiftShader): the CPU emulating a GPU. */
  fallback: boolean;
  limits: Record<string, number>;
}

/** What webgpu-probe.mjs found. */
export interface WebGpuProbe {
  /** The adapter Dawn would pick, when it could say. */
  adapter: WebGpuAdapter | null;
  /** Whether onnxruntime's WebGPU provider could start on it. */
  usable: boolean;
  /** Why not, when it could not. */
  error?: string;
}

/** The device sessions will run on, and why. */
export interface DeviceChoice {
  requested: DeviceRequest;
  device: Device;
  reason: string;
  /** With `webgpu`: the adapter. */
  adapter?: WebGpuAdapter;
}

/** What the choice depends on; `webgpu` is asked only when needed (it takes a second). */
export interface DeviceFacts {
  cudaInstalled: () => boolean;
  webgpu: () => WebGpuProbe;
}

function adapterName(a: WebGpuAdapter): string {
  return a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unnamed adapter';
}

/** The device for a request, given the facts; throws the install hint when a named device is missing. */
export function pickDevice(requested: DeviceRequest, facts: DeviceFacts): DeviceChoice {
  if (requested === 'cpu') return { requested, device: 'cpu', reason: 'requested' };
  if (requested === 'cuda' || (requested === 'auto' && facts.cudaInstalled())) {
    if (requested === 'cuda' && !facts.cudaInstalled()) throw new EarshotError('invalid_argument', 'cuda_unavailable', CUDA_INSTALL_HINT);
    return { requested, device: 'cuda', reason: requested === 'auto' ? 'auto: the CUDA provider is installed' : 'requested' };
  }
  const probe = facts.webgpu();
  const adapter = probe.adapter ?? undefined;
  if (requested === 'webgpu') {
    if (!probe.usable) {
      throw new EarshotError('invalid_argument', 'webgpu_unavailable', `no usable WebGPU adapter (${probe.error ?? 'none found'}): ${WEBGPU_INSTALL_HINT}`);
    }
    return { requested, device: 'webgpu', reason: 'requested', ...(adapter ? { adapter } : {}) };
  }
  if (!probe.usable) return { requested, device: 'cpu', reason: `auto: no CUDA provider, no usable WebGPU adapter (${probe.error ?? 'none found'})` };
  // A software adapter runs the same math on the same cores as the CPU provider, through Vulkan
  // and shaders: slower. Only a hardware one is worth taking unasked.
  if (adapter?.fallback) {
    return { requested, device: 'cpu', reason: `auto: no CUDA provider; the only WebGPU adapter, ${adapterName(adapter)}, is a software one` };
  }
  return {
    requested,
    device: 'webgpu',
    reason: `auto: no CUDA provider; WebGPU adapter ${adapter ? adapterName(adapter) : 'found (Dawn gave no description)'}`,
    ...(adapter ? { adapter } : {}),
  };
}

const PROBE = fileURLToPath(new URL('./webgpu-probe.mjs', import.meta.url));
const PROBE_TIMEOUT_MS = 60_000;

/** Asks webgpu-probe.mjs in a child process (a bad driver may crash or hang whoever asks). */
export function probeWebGpu(): WebGpuProbe {
  const r = spawnSync(process.execPath, [PROBE], {
    env: { ...process.env, ...TELEMETRY_OFF },
    encoding: 'utf8',
    timeout: PROBE_TIMEOUT_MS,
    maxBuffer: 1 << 20,
  });
  const line = r.stdout?.trim().split('\n').at(-1);
  if (r.status === 0 && line?.startsWith('{')) return JSON.parse(line) as WebGpuProbe;
  const why = r.error?.message ?? (r.signal ? `the WebGPU probe was killed by ${r.signal}` : `the WebGPU probe exited with ${r.status}`);
  return { adapter: null, usable: false, error: why };
}

/** The probe's answer, asked once per thread: the adapters do not change while earshot runs. */
let probed: WebGpuProbe | undefined;
const facts: DeviceFacts = {
  cudaInstalled: cudaProviderInstalled,
  webgpu: () => (probed ??= probeWebGpu()),
};

/** The device a request resolves to on this machine, and why. */
export function chooseDevice(requested: DeviceRequest): DeviceChoice {
  return pickDevice(requested, facts);
}

/** chooseDevice's device alone. */
export function resolveDevice(requested: DeviceRequest): Device {
  return chooseDevice(requested).device;
}

/** One line for logs: `webgpu (llvmpipe: Mesa 25.0.7): requested`. */
export function describeDevice(c: DeviceChoice): string {
  return `${c.device}${c.adapter ? ` (${adapterName(c.adapter)})` : ''}: ${c.reason}`;
}

/** The choice as fields of a structured log line (the startup log's). */
export function deviceLog(c: DeviceChoice): { device: Device; deviceReason: string; adapter?: WebGpuAdapter } {
  return { device: c.device, deviceReason: c.reason, ...(c.adapter ? { adapter: c.adapter } : {}) };
}

const PROVIDERS: Record<Device, string[]> = { cpu: ['cpu'], cuda: ['cuda', 'cpu'], webgpu: ['webgpu', 'cpu'] };

/** The device sessions made with `opts` run on. */
export function sessionDevice(opts: EngineOptions): Device {
  return opts.device === 'auto' ? resolveDevice('auto') : opts.device;
}

/**
 * Session options for `opts`. A named device is taken as it is (a model worker gets the device its
 * parent already chose, and asks nothing again); only `auto` is resolved here.
 */
export function sessionOptions(opts: EngineOptions): InferenceSession.SessionOptions {
  const device = sessionDevice(opts);
  if (device === 'cuda' && !cudaProviderInstalled()) throw new EarshotError('invalid_argument', 'cuda_unavailable', CUDA_INSTALL_HINT);
  return {
    executionProviders: PROVIDERS[device],
    intraOpNumThreads: opts.intraOpThreads,
    interOpNumThreads: opts.interOpThreads,
    graphOptimizationLevel: opts.graphOptimization,
    executionMode: opts.executionMode,
    logSeverityLevel: 3,
  };
}

/** A session creation error as the typed error it is, when it is WebGPU finding no adapter. */
export function sessionCreateError(e: unknown): unknown {
  const message = String((e as Error)?.message ?? e);
  const m = message.match(/Failed to get a WebGPU adapter.*/);
  return m ? new EarshotError('invalid_argument', 'webgpu_unavailable', `no usable WebGPU adapter (${m[0].trim()}): ${WEBGPU_INSTALL_HINT}`) : e;
}
