#!/usr/bin/env node
// Entry point for the `earshot` command. The sources are TypeScript run through tsx, so there is
// no build step between a git checkout and a working CLI. tsx's disk cache is off: it would keep
// transpiled copies of the sources in the system temp dir (tsx-<uid>/) after every run, and earshot
// leaves nothing behind outside its own folders. It is read when tsx loads, hence the dynamic import;
// worker threads inherit it. onnxruntime's telemetry is turned off by main.ts's first import.
process.env.TSX_DISABLE_CACHE = '1';
const { register } = await import('tsx/esm/api');

register();
await import('../src/cli/main.ts');
