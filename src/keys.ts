import type { KMSClient } from '@aws-sdk/client-kms';
import { LRUCache } from 'lru-cache';
import { traceAwsClient } from './trace/aws-sdk.js';
import type { AwsCredentialIdentityProvider } from '@aws-sdk/types';
import {
  CachingKeyProvider,
  ItemCrypto,
  KmsKeyProvider,
  LocalKeyProvider,
  loadLocalKek,
  newCallCounters,
  type CacheStats,
  type CallCounters,
  type KeyProvider,
} from './crypto/index.js';
import type { SidecarConfig } from './config.js';

/** Data-key caches kept at most (one per partner and key): beyond it the least recently used is dropped. */
export const MAX_DATA_KEY_CACHES = 1_024;

/** How the sidecar gets data keys: one KMS client per set of credentials, or the development key. */
export class Keyring {
  /** Real provider calls (KMS and local alike), for metrics. */
  readonly counters: CallCounters;
  readonly #config: SidecarConfig;
  readonly #local: LocalKeyProvider | undefined;
  /**
   * One data-key cache per partner and key, outliving the partner's clients: a partner evicted from the pool and
   * back reuses its data keys instead of paying KMS again, and churn adds nothing here.
   */
  readonly #caches = new LRUCache<string, CachingKeyProvider>({ max: MAX_DATA_KEY_CACHES });
  /** Hits and misses of every cache, dropped ones included (so the metric never goes back). */
  readonly #stats: CacheStats = { encrypt: { hits: 0, misses: 0 }, decrypt: { hits: 0, misses: 0 } };
  readonly warnings: string[];
  #kms: typeof import('@aws-sdk/client-kms') | undefined;

  private constructor(config: SidecarConfig, counters: CallCounters, local: LocalKeyProvider | undefined, warnings: string[]) {
    this.#config = config;
    this.counters = counters;
    this.#local = local;
    this.warnings = warnings;
  }

  /**
   * The local provider is on for the embedded store (a generated key, kept in the data dir when there is one)
   * and wherever LOCAL_KEK / --local-kek-file is set; it exists for development and says so.
   */
  static create(config: SidecarConfig): Keyring {
    const warnings: string[] = [];
    const counters = newCallCounters();
    const explicit = config.localKek !== undefined || config.localKekFile !== undefined;
    if (!explicit && config.backend !== 'embedded') return new Keyring(config, counters, undefined, warnings);
    const { kek, origin } = loadLocalKek({
      ...(config.localKek ? { value: config.localKek } : {}),
      ...(config.localKekFile ? { file: config.localKekFile } : {}),
      ...(config.dataDir && !explicit ? { generateAt: config.dataDir } : {}),
    });
    warnings.push(
      `encrypted attributes use the LOCAL development key (${origin}); configure KMS (KMS_KEY_ARN or a partner kmsKeyArn) in production`,
    );
    return new Keyring(config, counters, new LocalKeyProvider(kek, counters), warnings);
  }

  /** Load @aws-sdk/client-kms: only done when a KMS key is configured (the sidecar's own or a partner's). */
  async loadKms(): Promise<void> {
    this.#kms ??= await import('@aws-sdk/client-kms');
  }

  /** A KMS client for one set of credentials (undefined: the sidecar's own chain); loadKms() must have run. */
  kmsClient(region: string, credentials?: AwsCredentialIdentityProvider): KMSClient {
    if (!this.#kms) throw new Error('Keyring.kmsClient: call loadKms() first');
    const client = new this.#kms.KMSClient({
      region,
      ...(this.#config.kmsEndpoint ? { endpoint: this.#config.kmsEndpoint } : {}),
      ...(credentials ? { credentials } : {}),
    });
    return traceAwsClient(client, 'KMS');
  }

  /**
   * Item encryption for `scope` (a partner id; '' for the sidecar's own requests) with `kmsKeyArn` through `kms`,
   * else the local key, else none (writes fail closed).
   */
  crypto(kms: KMSClient | undefined, kmsKeyArn: string | undefined, scope = ''): ItemCrypto {
    const provider: KeyProvider | undefined =
      kms && kmsKeyArn ? new KmsKeyProvider(kms, kmsKeyArn, this.counters) : this.#local;
    if (!provider) return new ItemCrypto(undefined);
    const id = `${scope}\u0000${provider.id}`;
    let cache = this.#caches.get(id);
    if (cache) {
      cache.useProvider(provider);
    } else {
      cache = new CachingKeyProvider(provider, {
        maxAgeMs: this.#config.dataKeyMaxAgeMs,
        maxUses: this.#config.dataKeyMaxUses,
        stats: this.#stats,
      });
      this.#caches.set(id, cache);
    }
    return new ItemCrypto(cache);
  }

  /**
   * Drop every data-key cache of partner `scope` (removed, or its role or key changed): its next request generates
   * and decrypts through its new clients. Requests already holding a cache finish with it.
   */
  forget(scope: string): number {
    const prefix = `${scope}\u0000`;
    let dropped = 0;
    for (const id of [...this.#caches.keys()]) {
      if (id.startsWith(prefix)) dropped += Number(this.#caches.delete(id));
    }
    return dropped;
  }

  /** Data-key caches alive now (at most MAX_DATA_KEY_CACHES). */
  get cacheCount(): number {
    return this.#caches.size;
  }

  /** Data-key cache hits and misses summed over every partner and key. */
  cacheStats(): CacheStats {
    return { encrypt: { ...this.#stats.encrypt }, decrypt: { ...this.#stats.decrypt } };
  }
}
