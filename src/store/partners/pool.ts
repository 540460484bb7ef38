import { LRUCache } from 'lru-cache';
import type { STSClient } from '@aws-sdk/client-sts';
import { SidecarError } from '../../errors.js';
import type { DataAccess } from '../data-access.js';
import type { PartnerConfig } from './config.js';
import { RoleCredentials } from './credentials.js';

/** What the pool keeps per partner: its stores and a way to release their clients. */
export interface PartnerAccess {
  readonly access: DataAccess;
  close(): void;
}

export interface PartnerPoolOptions {
  readonly partners: ReadonlyMap<string, PartnerConfig>;
  readonly sts: Pick<STSClient, 'send'>;
  readonly build: (partner: PartnerConfig, credentials: RoleCredentials) => PartnerAccess;
  /** Most partners with live clients at once; the least recently used is released first. */
  readonly maxPartners: number;
  readonly onAssumeRole?: (partner: string, outcome: 'ok' | 'error') => void;
}

/** Grace before an evicted partner's clients are closed, so requests already using them can finish. */
const CLOSE_GRACE_MS = 60_000;

/**
 * Per-partner DynamoDB/KMS clients over AssumeRole credentials. Credentials outlive client eviction, so
 * a partner that comes back does not cost another AssumeRole while its session is still valid.
 */
export class PartnerPool {
  readonly #options: PartnerPoolOptions;
  readonly #credentials = new Map<string, RoleCredentials>();
  readonly #live: LRUCache<string, PartnerAccess>;

  constructor(options: PartnerPoolOptions) {
    this.#options = options;
    this.#live = new LRUCache<string, PartnerAccess>({
      max: options.maxPartners,
      dispose: (entry) => setTimeout(() => entry.close(), CLOSE_GRACE_MS).unref(),
    });
  }

  has(id: string): boolean {
    return this.#options.partners.has(id);
  }

  /** The partner's stores, with credentials already obtained (so STS failures surface here as 503). */
  async access(id: string): Promise<DataAccess> {
    const partner = this.#options.partners.get(id);
    if (!partner) throw new SidecarError('ErrUnknownPartner', 403, `unknown partner ${id}`);
    const credentials = this.#credentialsOf(partner);
    await credentials.get();
    let entry = this.#live.get(id);
    if (!entry) {
      entry = this.#options.build(partner, credentials);
      this.#live.set(id, entry);
    }
    return entry.access;
  }

  #credentialsOf(partner: PartnerConfig): RoleCredentials {
    let credentials = this.#credentials.get(partner.id);
    if (!credentials) {
      credentials = new RoleCredentials({
        sts: this.#options.sts,
        partner,
        onAssumeRole: (outcome) => this.#options.onAssumeRole?.(partner.id, outcome),
      });
      this.#credentials.set(partner.id, credentials);
    }
    return credentials;
  }

  close(): void {
    for (const entry of this.#live.values()) entry.close();
    this.#live.clear();
  }
}
