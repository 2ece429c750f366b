// Serves the web page: `/` (index.html) and its assets under `/web/`, from this folder (and the
// subtitle writer the server itself uses, from src/output/), read once when the app is built. A fixed list of files, so no request path ever reaches the file system.
// These paths need no API key (the page asks for one and sends it on its API calls); app.ts asks
// `isWebPath` when deciding which requests to check.
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

const JS = 'text/javascript; charset=utf-8';
/** Served name → content type and source, relative to this folder. */
const ASSETS: Readonly<Record<string, [string, string]>> = {
  'app.js': [JS, 'app.js'],
  'app.css': ['text/css; charset=utf-8', 'app.css'],
  'capture-processor.js': [JS, 'capture-processor.js'],
  'downsampler.js': [JS, 'downsampler.js'],
  'subtitles.js': [JS, '../../output/subtitles.js'],
};

// Everything the page loads is from this server; the WebSocket is same-origin ('self' covers ws:).
const CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PATHS = new Set(['/', ...Object.keys(ASSETS).map((name) => `/web/${name}`)]);

/** True for the page and its assets (path without the query string). */
export function isWebPath(path: string): boolean {
  return PATHS.has(path);
}

export function webRoutes(app: FastifyInstance): void {
  const dir = new URL('./', import.meta.url);
  const files: [string, string, Buffer][] = [
    ['/', 'text/html; charset=utf-8', readFileSync(new URL('index.html', dir))],
    ...Object.entries(ASSETS).map(([name, [type, source]]): [string, string, Buffer] => [`/web/${name}`, type, readFileSync(new URL(source, dir))]),
  ];
  for (const [path, type, bytes] of files) {
    app.get(path, async (_request, reply) =>
      reply
        .type(type)
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('content-security-policy', CSP)
        .send(bytes),
    );
  }
}
