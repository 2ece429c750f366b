// `npm start` as the README's first command runs it: npm prints no warning. The project's .npmrc
// keeps `onnxruntime-node-install=skip` (npm ci offline-safe on npm 10 too), a key npm 11 calls
// unknown and warned about on every run (`npm warn Unknown project config`); `loglevel=error` there
// keeps npm to its errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

const ROOT = new URL('../../', import.meta.url).pathname;

/** The environment a user's shell has: none of the npm_* variables an enclosing `npm test` sets. */
function userEnv(): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_'))), NO_UPDATE_NOTIFIER: '1' };
}

test('npm start runs earshot without a warning from npm', async () => {
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile('npm', ['start', '--', '--version'], { cwd: ROOT, env: userEnv() }, (err, out, errOut) =>
      err ? reject(err) : resolve({ stdout: out, stderr: errOut }),
    );
  });
  const version = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string }).version;
  assert.equal(stdout.trim().split('\n').at(-1), version);
  assert.doesNotMatch(stderr, /npm warn/i, stderr);
});
