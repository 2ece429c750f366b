// A stand-in for the Hugging Face hub on 127.0.0.1, serving model folders from disk the way the hub
// does: `/{owner}/{name}/resolve/{revision}/{path}` answers small files directly (ETag = git blob
// sha1, X-Repo-Commit) and large (LFS) files with a 302 to a separate "CDN" server on another port
// (X-Linked-Etag = sha256, X-Linked-Size), which honours Range requests. Missing files get 404 with
// X-Error-Code: EntryNotFound, unknown repositories 401 RepoNotFound, gated ones 401/403 GatedRepo.
// Knobs cut a response off midway or corrupt its bytes; every request is logged.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface FakeHubOptions {
  /** repo id → folder served as that repository. */
  repos: Record<string, string>;
  /** Repositories that need `Authorization: Bearer <token>`. */
  gated?: Record<string, string>;
  /** Files at least this big, and every *.onnx / *.onnx_data, are LFS (default 10 MB, as on the hub). */
  lfsThreshold?: number;
}

export interface LoggedRequest {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  authorization?: string;
  range?: string;
}

export interface FakeHub {
  /** Base URL to use as HF_ENDPOINT. */
  url: string;
  cdnUrl: string;
  requests: LoggedRequest[];
  /** `repo/file` → bytes to send before dropping the connection; applies once. */
  cutAfter: Map<string, number>;
  /** `repo/file` served with one byte flipped (while the hub still announces the true sha256). */
  corrupt: Set<string>;
  commit: string;
  close(): Promise<void>;
}

function sha(algo: 'sha1' | 'sha256', ...parts: Array<string | Buffer>): string {
  const h = createHash(algo);
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

export async function startFakeHub(opts: FakeHubOptions): Promise<FakeHub> {
  const threshold = opts.lfsThreshold ?? 10_000_000;
  const commit = sha('sha1', 'fake-hub-commit');
  const requests: LoggedRequest[] = [];
  const cutAfter = new Map<string, number>();
  const corrupt = new Set<string>();
  // CDN object key → (repo, file)
  const objects = new Map<string, { repo: string; file: string }>();

  const log = (server: 'hub' | 'cdn', req: IncomingMessage): void => {
    requests.push({
      server,
      method: req.method ?? 'GET',
      path: req.url ?? '',
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(req.headers.range ? { range: req.headers.range } : {}),
    });
  };
  const fail = (res: ServerResponse, status: number, code: string, message: string): void => {
    res.writeHead(status, { 'x-error-code': code, 'x-error-message': message, 'content-type': 'text/plain' });
    res.end(message);
  };
  const readRepoFile = (repo: string, file: string): Buffer | undefined => {
    const folder = opts.repos[repo];
    if (!folder || file.split('/').some((s) => s === '..' || s === '')) return undefined;
    try {
      return statSync(join(folder, file)).isFile() ? readFileSync(join(folder, file)) : undefined;
    } catch {
      return undefined;
    }
  };

  /** Sends `body` honouring Range, applying the cut/corrupt knobs. */
  const sendBody = (req: IncomingMessage, res: ServerResponse, key: string, body: Buffer, extra: Record<string, string>): void => {
    let data = body;
    if (corrupt.has(key)) {
      data = Buffer.from(body);
      data[Math.floor(data.length / 2)]! ^= 0xff;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` });
        res.end();
        return;
      }
    }
    const slice = data.subarray(start);
    const headers: Record<string, string> = { ...extra, 'accept-ranges': 'bytes', 'content-length': String(slice.length) };
    if (m) headers['content-range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
    res.writeHead(m ? 206 : 200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const cut = cutAfter.get(key);
    if (cut !== undefined && cut < slice.length) {
      cutAfter.delete(key);
      res.write(slice.subarray(0, cut), () => res.destroy());
      return;
    }
    res.end(slice);
  };

  let cdnUrl = '';
  const cdn = createServer((req, res) => {
    log('cdn', req);
    const key = /^\/lfs\/([0-9a-f]{64})\/([0-9a-f]{16})$/.exec(req.url ?? '');
    const obj = key ? objects.get(`${key[1]}/${key[2]}`) : undefined;
    const body = obj && readRepoFile(obj.repo, obj.file);
    if (!obj || !body) return fail(res, 404, 'NotFound', 'no such object');
    sendBody(req, res, `${obj.repo}/${obj.file}`, body, { etag: `"${sha('sha1', 'md5-like', body)}"` });
  });

  const hub = createServer((req, res) => {
    log('hub', req);
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec((req.url ?? '').split('?')[0]!);
    if (!m) return fail(res, 404, 'NotFound', 'not a resolve URL');
    const repo = decodeURIComponent(m[1]!);
    const file = m[3]!.split('/').map(decodeURIComponent).join('/');
    if (!opts.repos[repo]) return fail(res, 401, 'RepoNotFound', `Repository not found: ${repo}`);
    const needed = opts.gated?.[repo];
    if (needed !== undefined) {
      const auth = req.headers.authorization;
      if (!auth) return fail(res, 401, 'GatedRepo', `Access to model ${repo} is restricted. You must have access to it and be authenticated to access it.`);
      if (auth !== `Bearer ${needed}`) return fail(res, 403, 'GatedRepo', `Access to model ${repo} is restricted and you are not in the authorized list.`);
    }
    if (m[2] !== 'main' && m[2] !== commit) return fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${m[2]}`);
    const body = readRepoFile(repo, file);
    if (!body) return fail(res, 404, 'EntryNotFound', `Entry not found: ${file}`);
    const lfs = body.length >= threshold || /\.onnx(_data(_\d+)?)?$/.test(file);
    if (lfs) {
      const oid = sha('sha256', body);
      const objectKey = `${oid}/${sha('sha1', repo, file).slice(0, 16)}`;
      objects.set(objectKey, { repo, file });
      res.writeHead(302, {
        location: `${cdnUrl}/lfs/${objectKey}`,
        'x-linked-etag': `"${oid}"`,
        'x-linked-size': String(body.length),
        'x-repo-commit': commit,
        etag: `"${sha('sha1', `blob ${body.length}\0`, 'pointer')}"`,
      });
      res.end();
      return;
    }
    sendBody(req, res, `${repo}/${file}`, body, {
      etag: `"${sha('sha1', `blob ${body.length}\0`, body)}"`,
      'x-repo-commit': commit,
    });
  });

  const url = await listen(hub);
  cdnUrl = await listen(cdn);
  return {
    url,
    cdnUrl,
    requests,
    cutAfter,
    corrupt,
    commit,
    close: async () => {
      hub.closeAllConnections();
      cdn.closeAllConnections();
      await Promise.all([new Promise((r) => hub.close(r)), new Promise((r) => cdn.close(r))]);
    },
  };
}
