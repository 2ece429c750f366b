// The device kit's esbuild settings: earshot's TypeScript as plain ESM for a machine that has a
// Node binary and nothing else (no tsx, no node_modules but the kit's few native packages). The
// worker modules are entry points of their own, written beside the bundle as `<name>.mjs`, where
// src/worker-boot.ts looks for them when `__EARSHOT_BUNDLED__` is defined.
import type { BuildOptions } from 'esbuild';
import { BUILDER_VERSION } from '../test-model/build.ts';

/**
 * Packages left out of the bundle and shipped in the kit's node_modules: native bindings (and
 * onnxruntime-common, which must be the one instance onnxruntime-node itself loads).
 */
export const KIT_EXTERNAL = ['onnxruntime-node', 'onnxruntime-common', 'webgpu', 'better-sqlite3'];

/** Options for bundling `entryPoints` (output name -> source file) into `outdir`. */
export function bundleOptions(entryPoints: Record<string, string>, outdir: string): BuildOptions {
  return {
    entryPoints,
    outdir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // One copy of the shared modules for the main entry and the workers, in the same folder (code
    // in a chunk finds its worker modules relative to its own import.meta.url).
    splitting: true,
    chunkNames: 'chunk-[hash]',
    outExtension: { '.js': '.mjs' },
    // The test-model builder's version is a digest of its sources, which the bundle has not.
    define: { __EARSHOT_BUNDLED__: 'true', __EARSHOT_BUILDER_VERSION__: JSON.stringify(BUILDER_VERSION) },
    external: KIT_EXTERNAL,
    // Bundled CommonJS packages call require() for Node's own modules: give ESM one.
    banner: { js: "import { createRequire as __earshotRequire } from 'node:module'; const require = __earshotRequire(import.meta.url);" },
    legalComments: 'none',
    logLevel: 'error',
  };
}
