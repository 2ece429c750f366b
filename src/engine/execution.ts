// How ONNX Runtime sessions are run: execution provider, threads, graph optimisation. The options
// are declared and validated here once; the CLI and server pass them through unchanged.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { z } from 'zod';
import { EarshotError } from '../errors.ts';

export const engineOptionsSchema = z.object({
  /** `cpu`; `cuda` (fails when the CUDA provider is not installed); `auto` (CUDA if present, else CPU). */
  device: z.enum(['cpu', 'cuda', 'auto']).default('cpu'),
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

/** The execution provider a session will use, after checking that it can be used at all. */
export function resolveDevice(device: EngineOptions['device']): 'cpu' | 'cuda' {
  if (device === 'cpu') return 'cpu';
  if (cudaProviderInstalled()) return 'cuda';
  if (device === 'auto') return 'cpu';
  throw new EarshotError('invalid_argument', 'cuda_unavailable', CUDA_INSTALL_HINT);
}

export function sessionOptions(opts: EngineOptions): InferenceSession.SessionOptions {
  const device = resolveDevice(opts.device);
  return {
    executionProviders: device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    intraOpNumThreads: opts.intraOpThreads,
    interOpNumThreads: opts.interOpThreads,
    graphOptimizationLevel: opts.graphOptimization,
    executionMode: opts.executionMode,
    logSeverityLevel: 3,
  };
}
