import type { Credentials } from './sigv4.js';

/** What the SDK calls a credential provider: the default chain, a partner's RoleCredentials.provide, … */
export type CredentialProvider = () => Promise<Credentials>;

/**
 * Credentials held between requests: the provider is asked again only when they come within `refreshBeforeMs` of
 * their expiry (never, for credentials without one). Concurrent callers share one refresh; while a refresh runs,
 * credentials that are still valid keep being served.
 */
export class CachedCredentials {
  readonly #provider: CredentialProvider;
  readonly #refreshBeforeMs: number;
  readonly #now: () => number;
  #current: Credentials | undefined;
  #inflight: Promise<Credentials> | undefined;

  constructor(source: CredentialProvider | Credentials, options: { refreshBeforeMs?: number; now?: () => number } = {}) {
    if (typeof source === 'function') {
      this.#provider = source;
    } else {
      this.#current = source;
      this.#provider = async () => source;
    }
    this.#refreshBeforeMs = options.refreshBeforeMs ?? 5 * 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** The credentials to sign with now, if no refresh is due (the per-request path: no promise). */
  fresh(): Credentials | undefined {
    const c = this.#current;
    if (c && (!c.expiration || this.#now() < c.expiration.getTime() - this.#refreshBeforeMs)) return c;
    return undefined;
  }

  async get(): Promise<Credentials> {
    const fresh = this.fresh();
    if (fresh) return fresh;
    const refresh = (this.#inflight ??= this.#refresh());
    const c = this.#current;
    if (c?.expiration && this.#now() < c.expiration.getTime()) {
      refresh.catch(() => undefined);
      return c;
    }
    return refresh;
  }

  async #refresh(): Promise<Credentials> {
    try {
      const c = await this.#provider();
      this.#current = c;
      return c;
    } finally {
      this.#inflight = undefined;
    }
  }
}
