// The egress tests' tracer: runs a command, and every process and thread it starts, under strace,
// inside a network namespace that has only loopback where the machine allows one (`unshare -n`,
// then `ip link set lo up`; CI runs as root), and sorts what the trace saw: each attempt to reach
// beyond loopback (a connect, sendto, sendmsg or sendmmsg to a non-loopback address, and any DNS
// query, port 53 on any address, loopback included), the AF_UNIX sockets connected to (not network
// egress, but listed), and each file the processes created or opened for writing.
// The namespace only makes an attempt fail fast; strace sees it either way.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/** Network and file-creating calls only: with --seccomp-bpf the traced processes stop at nothing else. */
const CALLS = 'connect,sendto,sendmsg,sendmmsg,open,openat,openat2,creat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat,symlink,symlinkat';

/** CI markers onnxruntime reads: any of them switches its telemetry off by itself (see tracedEnv). */
const ORT_CI_MARKERS = [
  'CI', 'TF_BUILD', 'GITHUB_ACTIONS', 'GITLAB_CI', 'CIRCLECI', 'TRAVIS', 'JENKINS_URL', 'CODEBUILD_BUILD_ID',
  'BUILDKITE', 'TEAMCITY_VERSION', 'APPVEYOR', 'BITBUCKET_BUILD_NUMBER', 'SYSTEM_TEAMFOUNDATIONCOLLECTIONURI',
  'ORT_RUNNING_UNIT_TESTS',
];

export function straceWorks(): boolean {
  try {
    execFileSync('strace', ['-f', '-qq', '-e', 'trace=connect', '-o', '/dev/null', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function namespacesWork(): boolean {
  try {
    execFileSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Fresh HOME, EARSHOT_HOME and TMPDIR for one traced run, so that what it leaves there can be listed. */
export interface Dirs {
  home: string;
  earshotHome: string;
  tmp: string;
  remove(): void;
}

export function freshDirs(): Dirs {
  const root = mkdtempSync(join(tmpdir(), 'earshot-egress-'));
  const d = { home: join(root, 'home'), earshotHome: join(root, 'earshot-home'), tmp: join(root, 'tmp') };
  for (const p of Object.values(d)) mkdirSync(p);
  return { ...d, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/**
 * The environment of a traced run: this one, less every variable that would switch onnxruntime's
 * telemetry off by itself (CI=true does: without this, the test would pass in CI whatever earshot
 * did), with ORT_DISABLE_TELEMETRY=0 (a user asking for it back on: earshot must override it), the
 * fresh directories, and `extra`.
 */
export function tracedEnv(dirs: Dirs, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !ORT_CI_MARKERS.includes(k)) env[k] = v;
  delete env.TSX_DISABLE_CACHE;
  return { ...env, ORT_DISABLE_TELEMETRY: '0', HOME: dirs.home, EARSHOT_HOME: dirs.earshotHome, TMPDIR: dirs.tmp, ...extra };
}

export interface Attempt {
  pid: number;
  call: string;
  /** "10.255.255.53:53" or "[2001:db8::1]:443". */
  to: string;
  result: string;
}

export interface Trace {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Attempts to reach beyond loopback, and every DNS query. */
  egress: Attempt[];
  /** AF_UNIX socket paths connected to (not egress; shown when something fails). */
  unix: string[];
  /** Files created or opened for writing (resolved paths). */
  written: string[];
  /** Whether strace saw the traced command's process exit (it really was tracing). */
  tracedToExit: boolean;
}

/** The address a sockaddr in strace's notation names, or null for one that is not AF_INET/AF_INET6. */
function inetAddress(s: string): { host: string; port: number } | null {
  const port = /sin6?_port=htons\((\d+)\)/.exec(s);
  const v4 = /sin_addr=inet_addr\("([^"]+)"\)/.exec(s);
  const v6 = /inet_pton\(AF_INET6, "([^"]+)"/.exec(s);
  if (!port || !(v4 || v6)) return null;
  return { host: v4 ? v4[1]! : v6![1]!, port: Number(port[1]) };
}

export function isLoopback(host: string): boolean {
  return /^127\./.test(host) || host === '::1' || /^::ffff:127\./.test(host);
}

/** Sorts one strace output (-f -y, one line per call; unfinished calls are judged by their first half). */
export function parseTrace(text: string, cwd: string, rootPid: number): Omit<Trace, 'status' | 'stdout' | 'stderr'> {
  const egress: Attempt[] = [];
  const unix = new Set<string>();
  const written = new Set<string>();
  let tracedToExit = false;
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(\w+)\((.*)$/.exec(line);
    if (!m) {
      if (new RegExp(`^${rootPid}\\s+\\+\\+\\+ exited`).test(line)) tracedToExit = true;
      continue;
    }
    const [, pid, call, rest] = m as unknown as [string, string, string, string];
    const result = /\)\s+=\s+(.*)$/.exec(rest)?.[1] ?? '(unfinished)';
    const failed = result.startsWith('-1');
    if (call === 'connect' || call.startsWith('send')) {
      const path = /sun_path=(?:@)?"([^"]*)"/.exec(rest);
      if (path) unix.add(path[1]!);
      // sendmmsg and sendmsg carry the address inside the message; a connected socket's sendto has none.
      const to = inetAddress(rest);
      if (to && (!isLoopback(to.host) || to.port === 53)) {
        egress.push({ pid: Number(pid), call, to: to.host.includes(':') ? `[${to.host}]:${to.port}` : `${to.host}:${to.port}`, result });
      }
      continue;
    }
    if (failed || result === '(unfinished)') continue;
    if (call.startsWith('open') || call === 'creat') {
      if (call !== 'creat' && !/O_WRONLY|O_RDWR|O_CREAT/.test(rest)) continue;
      // -y shows the path the new descriptor stands for: 5</abs/path>.
      const p = /^\d+<(.*)>$/.exec(result);
      if (p) written.add(p[1]!);
    } else if (/^(mkdir|rename|link|symlink)/.test(call)) {
      // The created path is the first (mkdir) or the last (rename, link, symlink) path argument; *at calls give
      // the directory descriptor as -y's <path> just before it.
      const paths = [...rest.matchAll(/(?:(AT_FDCWD|\d+)<([^>]*)>,\s*)?"([^"]*)"/g)];
      const hit = call.startsWith('mkdir') ? paths[0] : paths.at(-1);
      if (!hit) continue;
      const [, , dir, name] = hit as unknown as [string, string | undefined, string | undefined, string];
      written.add(isAbsolute(name) ? name : resolve(dir ?? cwd, name));
    }
  }
  return { egress, unix: [...unix], written: [...written], tracedToExit };
}

/**
 * Runs `argv` traced (in a loopback-only network namespace when `isolate`), with `env` and `cwd`,
 * for at most `timeoutMs`. Resolves when it exits, with what the trace saw.
 */
export async function traced(argv: string[], opts: { env: Record<string, string>; cwd: string; isolate: boolean; timeoutMs: number }): Promise<Trace> {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-strace-'));
  const out = join(dir, 'trace');
  const strace = ['strace', '-f', '--seccomp-bpf', '-q', '-y', '-s', '64', '-e', `trace=${CALLS}`, '-e', 'signal=none', '-o', out, '--', ...argv];
  const cmd = opts.isolate ? ['unshare', '-n', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', ...strace] : strace;
  try {
    const child = spawn(cmd[0]!, cmd.slice(1), { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    const status = await new Promise<number | null>((done) => child.on('close', (code) => done(code)));
    clearTimeout(timer);
    const text = readFileSync(out, 'utf8');
    // The traced command's pid is the first one in the trace (strace starts it before anything else).
    const rootPid = Number(/^(\d+)/.exec(text)?.[1] ?? -1);
    return { status, stdout, stderr, ...parseTrace(text, opts.cwd, rootPid) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Files under `dir`, relative to it (what a run left there). */
export function leftIn(dir: string): string[] {
  return execFileSync('find', [dir, '-mindepth', '1'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((p) => p.slice(dir.length + 1));
}

/** One readable report of a trace, for failure messages. */
export function report(t: Trace): string {
  return JSON.stringify({ status: t.status, egress: t.egress, unix: t.unix, written: t.written, stderr: t.stderr.slice(-1500) }, null, 1);
}
