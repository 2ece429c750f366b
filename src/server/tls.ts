// HTTPS for `earshot serve`: reads the certificate and key named by --tls-cert / --tls-key and
// checks that they make a usable TLS context before the server starts, so a wrong path, a
// malformed PEM or a key that does not match the certificate is one clear startup error instead
// of a failure on the first connection.
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { EarshotError } from '../errors.ts';

export interface TlsFiles {
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
}

export interface TlsOptions {
  cert: Buffer;
  key: Buffer;
}

function badTls(message: string, cause?: unknown): EarshotError {
  return new EarshotError('invalid_argument', 'bad_tls', message, cause === undefined ? undefined : { cause });
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw badTls(`cannot read TLS ${what} ${path}: ${(e as Error).message}`, e);
  }
}

/** The cert and key for fastify's `https` option, or undefined when TLS is off. */
export function loadTls(files: TlsFiles): TlsOptions | undefined {
  const { tlsCert, tlsKey } = files;
  if (!tlsCert && !tlsKey) return undefined;
  if (!tlsCert || !tlsKey) throw badTls('TLS needs both --tls-cert and --tls-key');
  const cert = readPem(tlsCert, 'certificate');
  const key = readPem(tlsKey, 'key');
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    throw badTls(`unusable TLS certificate/key (${tlsCert}, ${tlsKey}): ${(e as Error).message}`, e);
  }
  return { cert, key };
}
