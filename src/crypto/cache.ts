import { LRUCache } from 'lru-cache';
import { encodeBase64 } from '../codec/index.js';
import type { DataKey } from './envelope.js';
import type { KeyProvider } from './providers.js';

export interface CachingOptions {
  /** A generated data key is used for at most this long; decrypted data keys are cached this long. */
  maxAgeMs?: number;
  /** A generated data key is handed out at most this many times (one per currentDataKey call). */
  maxUses?: number;
  /** How many decrypted data keys (by edk) are kept. */
  decryptCacheSize?: number;
  /** Clock, injectable for tests. */
  now?: () => number;
  /** Counts hits and misses into this object (shared by every cache of a keyring) instead of one of its own. */
  stats?: CacheStats;
}

export interface CacheStats {
  encrypt: { hits: number; misses: number };
  decrypt: { hits: number; misses: number };
}

interface CurrentKey {
  readonly key: DataKey;
  readonly createdAt: number;
  uses: number;
}

interface CachedPlaintext {
  readonly plaintext: Buffer;
  readonly expiresAt: number;
}

/**
 * Data-key caching in front of one KeyProvider (one partner + key): the encrypt side reuses one
 * generated data key for `maxUses` calls or `maxAgeMs`; the decrypt side keeps an LRU of
 * edk → plaintext key. Both sides are single-flight. State lives on the instance only, so two
 * instances (two providers) never see each other's keys. The provider behind it can be replaced by
 * one for the same key (a partner's new KMS client after its old one was evicted): the keys stay.
 */
export class CachingKeyProvider {
  #inner: KeyProvider;
  readonly #maxAgeMs: number;
  readonly #maxUses: number;
  readonly #now: () => number;
  #current: CurrentKey | undefined;
  #generating: Promise<CurrentKey> | undefined;
  readonly #plain: LRUCache<string, CachedPlaintext>;
  readonly #decrypting = new Map<string, Promise<Buffer>>();
  readonly #stats: CacheStats;

  constructor(inner: KeyProvider, opts: CachingOptions = {}) {
    const { maxAgeMs = 300_000, maxUses = 10_000, decryptCacheSize = 1_000, now = Date.now } = opts;
    this.#stats = opts.stats ?? { encrypt: { hits: 0, misses: 0 }, decrypt: { hits: 0, misses: 0 } };
    if (!(maxAgeMs > 0)) throw new Error('maxAgeMs must be positive');
    if (!Number.isInteger(maxUses) || maxUses < 1) throw new Error('maxUses must be a positive integer');
    if (!Number.isInteger(decryptCacheSize) || decryptCacheSize < 1) throw new Error('decryptCacheSize must be a positive integer');
    this.#inner = inner;
    this.#maxAgeMs = maxAgeMs;
    this.#maxUses = maxUses;
    this.#now = now;
    this.#plain = new LRUCache<string, CachedPlaintext>({ max: decryptCacheSize });
  }

  get id(): string {
    return this.#inner.id;
  }

  get inner(): KeyProvider {
    return this.#inner;
  }

  /** Calls go to `inner` from now on; it must serve the same key (same id), or cached keys would be misattributed. */
  useProvider(inner: KeyProvider): void {
    if (inner.id !== this.#inner.id) throw new Error(`provider ${inner.id} cannot replace ${this.#inner.id}`);
    this.#inner = inner;
  }

  #usable(entry: CurrentKey | undefined): entry is CurrentKey {
    return entry !== undefined && entry.uses < this.#maxUses && this.#now() - entry.createdAt < this.#maxAgeMs;
  }

  #generate(): Promise<CurrentKey> {
    if (this.#generating) return this.#generating;
    const p = (async () => {
      const { plaintext, edk } = await this.#inner.generateDataKey();
      const entry: CurrentKey = { key: { plaintext, edk }, createdAt: this.#now(), uses: 0 };
      this.#current = entry;
      // What this instance writes, it can read back without a provider call.
      this.#plain.set(encodeBase64(edk), { plaintext, expiresAt: entry.createdAt + this.#maxAgeMs });
      return entry;
    })();
    this.#generating = p;
    p.then(
      () => { if (this.#generating === p) this.#generating = undefined; },
      () => { if (this.#generating === p) this.#generating = undefined; },
    );
    return p;
  }

  /** The data key to encrypt with now; each call counts one use. Hits: served without starting a provider call. */
  async currentDataKey(): Promise<DataKey> {
    if (this.#usable(this.#current)) {
      this.#current.uses++;
      this.#stats.encrypt.hits++;
      return this.#current.key;
    }
    let started = false;
    for (;;) {
      if (this.#generating === undefined) started = true;
      const entry = await this.#generate();
      // A key generated for waiting callers serves them even if the clock moved meanwhile;
      // only the use limit sends the surplus round again.
      const usable = entry.uses < this.#maxUses ? entry : this.#usable(this.#current) ? this.#current : undefined;
      if (usable !== undefined) {
        usable.uses++;
        if (started) this.#stats.encrypt.misses++;
        else this.#stats.encrypt.hits++;
        return usable.key;
      }
    }
  }

  /** Plaintext of a stored envelope's data key; one provider call per cold edk, however many callers. */
  plaintextFor(edk: Uint8Array): Promise<Buffer> {
    const k = encodeBase64(edk);
    const cached = this.#plain.get(k);
    if (cached !== undefined) {
      if (this.#now() < cached.expiresAt) {
        this.#stats.decrypt.hits++;
        return Promise.resolve(cached.plaintext);
      }
      this.#plain.delete(k);
    }
    const inflight = this.#decrypting.get(k);
    if (inflight !== undefined) {
      this.#stats.decrypt.hits++;
      return inflight;
    }
    this.#stats.decrypt.misses++;
    const copy = new Uint8Array(edk); // the caller's buffer may be reused while we wait
    const p = this.#inner.decryptDataKey(copy).then(
      (plaintext) => {
        this.#decrypting.delete(k);
        this.#plain.set(k, { plaintext, expiresAt: this.#now() + this.#maxAgeMs });
        return plaintext;
      },
      (err: unknown) => {
        this.#decrypting.delete(k); // failures are not cached
        throw err;
      },
    );
    this.#decrypting.set(k, p);
    return p;
  }

  stats(): CacheStats {
    return { encrypt: { ...this.#stats.encrypt }, decrypt: { ...this.#stats.decrypt } };
  }
}

