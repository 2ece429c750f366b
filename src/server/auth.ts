// API keys and their two roles, from `Authorization: Bearer <key>`. Ordinary keys transcribe, run
// jobs and stream; admin keys do all that and may also load, unload and swap models. Keys are
// compared as SHA-256 digests with crypto.timingSafeEqual, and every configured key is compared on
// every request, so neither the length of a key, how much of it a guess gets right, nor which role
// it has shows in the response time.
//
// The admin routes when no admin key exists: open only on a server with no key at all that listens
// on loopback alone (whoever can reach it already runs code on this machine); refused (403) for
// everyone anywhere else, so a server with ordinary keys, or one opened to the network with
// --insecure-no-auth, never lets a caller swap its models.
import { createHash, timingSafeEqual } from 'node:crypto';
import { EarshotError } from '../errors.ts';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export type Role = 'admin' | 'user';

export interface KeyOptions {
  /** Keys that may also use the admin routes. */
  adminKeys?: readonly string[];
  /** Whether the server only listens on loopback (the admin routes stay open there without any key). */
  loopbackOnly?: boolean;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

export class ApiKeys {
  private readonly user: Buffer[];
  private readonly admin: Buffer[];
  private readonly loopbackOnly: boolean;

  constructor(keys: readonly string[], opts: KeyOptions = {}) {
    this.user = keys.map(digest);
    this.admin = (opts.adminKeys ?? []).map(digest);
    this.loopbackOnly = opts.loopbackOnly ?? false;
  }

  /** Whether requests need a key: any key, ordinary or admin, turns the check on. */
  get enabled(): boolean {
    return this.user.length + this.admin.length > 0;
  }

  /** Whether the admin routes are open to anyone: no key at all, loopback only. */
  get adminOpen(): boolean {
    return !this.enabled && this.loopbackOnly;
  }

  /** The role of `candidate`, or undefined for no key; takes the same time whichever key (if any) matches. */
  roleOf(candidate: string): Role | undefined {
    const d = digest(candidate);
    let user = false;
    let admin = false;
    for (const k of this.user) user = timingSafeEqual(d, k) || user;
    for (const k of this.admin) admin = timingSafeEqual(d, k) || admin;
    return admin ? 'admin' : user ? 'user' : undefined;
  }

  /** True when `candidate` is one of the keys, of either role. */
  matches(candidate: string): boolean {
    return this.roleOf(candidate) !== undefined;
  }

  /**
   * Who owns what a request creates (async jobs): the hex SHA-256 of its bearer key, never the key
   * itself; '' for everyone when keys are off. Call after `check`.
   */
  owner(authorization: string | undefined): string {
    if (!this.enabled) return '';
    const m = BEARER.exec(authorization ?? '');
    return m ? digest(m[1]!).toString('hex') : '';
  }

  /**
   * The caller's role: throws `unauthorized` (401) unless keys are off or the header carries a
   * valid bearer key. With keys off everyone is a user, and an admin too where `adminOpen`.
   */
  check(authorization: string | undefined): Role {
    if (!this.enabled) return this.adminOpen ? 'admin' : 'user';
    const m = BEARER.exec(authorization ?? '');
    if (!m) {
      throw new EarshotError('unauthorized', 'missing_api_key', 'an API key is required: send "Authorization: Bearer <key>"');
    }
    const role = this.roleOf(m[1]!);
    if (!role) throw new EarshotError('unauthorized', 'invalid_api_key', 'the API key is not valid');
    return role;
  }

  /** As `check`, then `forbidden` (403) unless the caller may use the admin routes. */
  checkAdmin(authorization: string | undefined): void {
    if (this.check(authorization) === 'admin') return;
    const why = this.admin.length > 0
      ? 'this route needs an admin key (--admin-key); the key sent is an ordinary one'
      : this.enabled
        ? 'this route needs an admin key, and the server has none (--admin-key)'
        : 'the admin routes are off on a server that listens beyond loopback without keys: give it an admin key (--admin-key)';
    throw new EarshotError('forbidden', 'admin_key_required', why);
  }
}
