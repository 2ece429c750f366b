// API-key check for `Authorization: Bearer <key>`. Keys are compared as SHA-256 digests with
// crypto.timingSafeEqual, and every configured key is compared on every request, so neither the
// length of a key nor how much of it a guess gets right shows in the response time.
import { createHash, timingSafeEqual } from 'node:crypto';
import { EarshotError } from '../errors.ts';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export class ApiKeys {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /** True when `candidate` is one of the keys; takes the same time whichever key (if any) matches. */
  matches(candidate: string): boolean {
    const d = digest(candidate);
    let found = false;
    for (const k of this.digests) found = timingSafeEqual(d, k) || found;
    return found;
  }

  /**
   * Who owns what a request creates (async jobs): the hex SHA-256 of its bearer key, never the key
   * itself; '' for everyone when keys are off. Call after `check`.
   */
  owner(authorization: string | undefined): string {
    if (!this.enabled) return '';
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    return m ? digest(m[1]!).toString('hex') : '';
  }

  /** Throws `unauthorized` unless keys are off or the header carries a valid bearer key. */
  check(authorization: string | undefined): void {
    if (!this.enabled) return;
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    if (!m) {
      throw new EarshotError('unauthorized', 'missing_api_key', 'an API key is required: send "Authorization: Bearer <key>"');
    }
    if (!this.matches(m[1]!)) throw new EarshotError('unauthorized', 'invalid_api_key', 'the API key is not valid');
  }
}
