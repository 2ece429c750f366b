// How earshot starts its worker threads (the model worker, the log-mel worker): the source that
// `new Worker(source, { eval: true })` evaluates to load a worker module. Run from the TypeScript
// sources (tsx), loader hooks registered with --import do not reach worker threads on Node 20, so
// the worker registers tsx itself, then imports the `.ts` module. Run from the device kit's esbuild
// bundle (scripts/device-kit/), there is no tsx and no TypeScript: each worker module is an entry
// point of its own, `<name>.mjs` beside the bundle, imported as it is.

/** Replaced by `true` in the device kit's bundle (esbuild's `define`); undeclared everywhere else. */
declare const __EARSHOT_BUNDLED__: boolean | undefined;

/** Whether this code runs from the device kit's bundle. */
export const BUNDLED: boolean = typeof __EARSHOT_BUNDLED__ !== 'undefined' && __EARSHOT_BUNDLED__ === true;

/**
 * The worker source that loads `module`, the URL of a worker's `.ts` file next to its caller
 * (`new URL('./x-worker.ts', import.meta.url)`); in the bundle that URL points beside the bundle,
 * where `x-worker.mjs` is.
 */
export function workerBoot(module: URL, bundled: boolean = BUNDLED): string {
  if (bundled) return `import(${JSON.stringify(module.href.replace(/\.ts$/, '.mjs'))})`;
  return (
    `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => t.register())` +
    `.then(() => import(${JSON.stringify(module.href)}))`
  );
}
