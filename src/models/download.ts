// Fetches one file of a hub repository into the cache, the way the hub's own clients do
// (huggingface_hub's file_download.py): GET `{endpoint}/{repo}/resolve/{revision}/{file}`, follow
// redirects to the storage CDN, read the file's identity from the hub's headers (X-Linked-Etag /
// X-Linked-Size for LFS files, ETag + X-Repo-Commit for small ones), write to `<dest>.incomplete`,
// resume a broken transfer with a Range request, verify the bytes, then rename into place so a
// reader never sees a half-written file. Redirects are followed by hand so the bearer token only
// ever goes to the hub's own origin, never to a CDN on another host.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EarshotError } from '../errors.ts';
import { validateRepoFilePath, validateRepoId, validateRevision } from './ids.ts';

export interface FileProgress {
  file: string;
  /** Bytes on disk so far, a resumed prefix included. */
  received: number;
  /** Full size when the hub said it. */
  total?: number;
}

export interface DownloadRequest {
  endpoint: string;
  repo: string;
  revision: string;
  /** Repository path, e.g. `onnx/encoder_model.onnx`. */
  file: string;
  /** Final local path. */
  dest: string;
  token?: string;
  onProgress?: (p: FileProgress) => void;
  /** How many times a broken transfer is resumed within this call (default 3). */
  retries?: number;
}

export interface DownloadResult {
  path: string;
  size: number;
  commit?: string;
  /** What the bytes were checked against. */
  verified: 'sha256' | 'git-sha1' | 'none';
}

const MAX_REDIRECTS = 10;
const INCOMPLETE = '.incomplete';

/** A transfer that stopped early: worth resuming from what is on disk. */
class TransferBroken extends Error {
  /** No connection to the server at all (refused, no route, no DNS): nothing was transferred. */
  constructor(message: string, readonly unreachable = false) {
    super(message);
  }
}

interface HubMeta {
  linkedEtag?: string;
  linkedSize?: number;
  etag?: string;
  commit?: string;
}

/** `W/"abc"` → `abc`: the hub's ETags are quoted, some proxies add the weak prefix. */
function normalizeEtag(v: string | null): string | undefined {
  if (!v) return undefined;
  return v.replace(/^W\//, '').replace(/^"|"$/g, '') || undefined;
}

export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${path}`;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

function hubError(res: Response, req: DownloadRequest): EarshotError {
  const code = res.headers.get('x-error-code') ?? '';
  const detail = res.headers.get('x-error-message');
  const where = `${req.repo}@${req.revision} on ${req.endpoint}`;
  const suffix = detail ? ` (hub says: ${detail})` : '';
  if (code === 'GatedRepo') {
    const how = req.token
      ? 'HF_TOKEN was sent but does not give access: accept the model terms on the hub with that account'
      : 'accept the model terms on the hub, then set HF_TOKEN to an access token of that account';
    return new EarshotError('model_unavailable', 'gated', `repository ${where} is gated: ${how}${suffix}`);
  }
  if (code === 'RepoNotFound') {
    return new EarshotError(
      'model_not_found',
      'repo_not_found',
      `repository ${req.repo} not found on ${req.endpoint}${req.token ? '' : ' (if it is private, set HF_TOKEN)'}${suffix}`,
    );
  }
  if (code === 'RevisionNotFound') {
    return new EarshotError('model_not_found', 'revision_not_found', `revision "${req.revision}" not found in ${req.repo}${suffix}`);
  }
  if (code === 'EntryNotFound' || res.status === 404) {
    return new EarshotError('model_not_found', 'entry_not_found', `file ${req.file} not found in ${where}${suffix}`);
  }
  if (res.status === 401 || res.status === 403) {
    return new EarshotError(
      'model_unavailable',
      'unauthorized',
      `access to ${where} denied (HTTP ${res.status}): ${req.token ? 'HF_TOKEN was not accepted' : 'set HF_TOKEN'}${suffix}`,
    );
  }
  return new EarshotError('model_unavailable', 'http_error', `HTTP ${res.status} while fetching ${req.file} from ${where}${suffix}`);
}

/** GET with redirects followed by hand; returns the final response and the hub's headers. */
async function get(req: DownloadRequest, offset: number): Promise<{ res: Response; meta: HubMeta }> {
  const hubOrigin = new URL(req.endpoint).origin;
  let current = new URL(resolveUrl(req.endpoint, req.repo, req.revision, req.file));
  const meta: HubMeta = {};
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': 'earshot' };
    if (req.token && current.origin === hubOrigin) headers.authorization = `Bearer ${req.token}`;
    if (offset > 0) headers.range = `bytes=${offset}-`;
    let res: Response;
    try {
      res = await fetch(current, { headers, redirect: 'manual' });
    } catch (e) {
      const cause = (e as Error).cause;
      throw new TransferBroken(`cannot reach ${current.origin} (${cause instanceof Error ? cause.message : String(cause ?? (e as Error).message)})`, true);
    }
    meta.linkedEtag ??= normalizeEtag(res.headers.get('x-linked-etag'));
    const linkedSize = Number(res.headers.get('x-linked-size'));
    if (meta.linkedSize === undefined && Number.isSafeInteger(linkedSize) && linkedSize > 0) meta.linkedSize = linkedSize;
    meta.commit ??= res.headers.get('x-repo-commit') ?? undefined;
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      current = new URL(location, current);
      continue;
    }
    // A plain ETag only names the content when the hub itself served the file (a CDN's ETag is
    // its own business, e.g. an MD5).
    if (current.origin === hubOrigin) meta.etag = normalizeEtag(res.headers.get('etag'));
    return { res, meta };
  }
  throw new EarshotError('model_unavailable', 'too_many_redirects', `too many redirects fetching ${req.file} from ${req.repo}`);
}

async function hashFilePrefix(hash: Hash, path: string): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

async function attempt(req: DownloadRequest, partial: string): Promise<DownloadResult> {
  let offset = await sizeOf(partial);
  const { res, meta } = await get(req, offset);

  if (res.status === 416) {
    // What is on disk is not a prefix of this file (the file changed, or the partial is whole but
    // was never verified): start over.
    await res.body?.cancel();
    await rm(partial, { force: true });
    throw new TransferBroken('range not satisfiable');
  }
  if (res.status !== 200 && res.status !== 206) {
    await res.body?.cancel();
    throw hubError(res, req);
  }
  let total = meta.linkedSize;
  if (res.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== offset) {
      await res.body?.cancel();
      await rm(partial, { force: true });
      throw new TransferBroken('server resumed at the wrong offset');
    }
    if (m[3] !== '*') total ??= Number(m[3]);
  } else {
    offset = 0; // the server ignored Range (or none was sent): the body is the whole file
    const len = Number(res.headers.get('content-length'));
    if (res.headers.has('content-length') && Number.isSafeInteger(len)) total ??= len;
  }

  const sha256 = meta.linkedEtag && /^[0-9a-f]{64}$/.test(meta.linkedEtag) ? meta.linkedEtag : undefined;
  const gitSha1 =
    !sha256 && meta.commit && meta.etag && /^[0-9a-f]{40}$/.test(meta.etag) && total !== undefined ? meta.etag : undefined;
  const hash = sha256 ? createHash('sha256') : gitSha1 ? createHash('sha1') : undefined;
  if (gitSha1) hash!.update(`blob ${total}\0`);
  if (hash && offset > 0) await hashFilePrefix(hash, partial);

  let received = offset;
  if (!res.body) throw new TransferBroken('empty response');
  // Each chunk is on disk before the next is read, so a broken transfer keeps every byte it got.
  const out = await open(partial, offset > 0 ? 'a' : 'w');
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      await out.write(chunk);
      hash?.update(chunk);
      received += chunk.length;
      req.onProgress?.({ file: req.file, received, ...(total !== undefined ? { total } : {}) });
    }
  } catch (e) {
    throw new TransferBroken(`transfer of ${req.file} broke after ${received} bytes: ${(e as Error).message}`);
  } finally {
    await out.close();
  }

  if (total !== undefined && received < total) throw new TransferBroken(`short read: ${received} of ${total} bytes`);
  if (total !== undefined && received > total) {
    await rm(partial, { force: true });
    throw new EarshotError('integrity', 'size_mismatch', `${req.file} from ${req.repo}: got ${received} bytes, expected ${total}; the download was deleted`);
  }
  const expected = sha256 ?? gitSha1;
  if (hash && expected) {
    const actual = hash.digest('hex');
    if (actual !== expected) {
      await rm(partial, { force: true });
      throw new EarshotError(
        'integrity',
        'checksum_mismatch',
        `${req.file} from ${req.repo} failed verification: expected ${sha256 ? 'sha256' : 'git blob sha1'} ${expected}, got ${actual}; the download was deleted`,
      );
    }
  }
  await rename(partial, req.dest);
  return {
    path: req.dest,
    size: received,
    ...(meta.commit ? { commit: meta.commit } : {}),
    verified: sha256 ? 'sha256' : gitSha1 ? 'git-sha1' : 'none',
  };
}

/**
 * Downloads one repository file to `req.dest`. A transfer that breaks is resumed from the bytes on
 * disk (up to `retries` times in this call; a later call resumes too, as `<dest>.incomplete` is
 * kept). Never leaves a file at `dest` that failed verification.
 */
export async function downloadFile(req: DownloadRequest): Promise<DownloadResult> {
  validateRepoId(req.repo);
  validateRevision(req.revision);
  validateRepoFilePath(req.file);
  const partial = req.dest + INCOMPLETE;
  await mkdir(dirname(req.dest), { recursive: true });
  const retries = req.retries ?? 3;
  for (let i = 0; ; i++) {
    try {
      return await attempt(req, partial);
    } catch (e) {
      if (!(e instanceof TransferBroken)) throw e;
      if (i >= retries) {
        const kept = await sizeOf(partial);
        if (e.unreachable) throw new EarshotError('model_unavailable', 'hub_unreachable', e.message, { cause: e });
        throw new EarshotError(
          'model_unavailable',
          'download_interrupted',
          `download of ${req.file} from ${req.repo} failed: ${e.message}${kept > 0 ? ` (${kept} bytes kept; run the same command again to resume)` : ''}`,
          { cause: e },
        );
      }
      await new Promise((r) => setTimeout(r, 100 * (i + 1)));
    }
  }
}
