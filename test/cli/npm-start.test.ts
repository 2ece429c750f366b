// `npm start` as the README's first command runs it: npm itself has nothing to warn about (an
// unknown key in the project's .npmrc made every run print `npm warn Unknown project config`), and
// the install-time setting that keeps `npm ci` offline-safe is one npm knows: package.json's
// allowScripts denies onnxruntime-node's install script (which would download CUDA files).
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
