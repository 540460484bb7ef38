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

interface Retiring {
  readonly entry: PartnerAccess;
  readonly timer: NodeJS.Timeout;
}

/**
 * Per-partner DynamoDB/KMS clients over AssumeRole credentials. Credentials outlive client eviction, so
 * a partner that comes back does not cost another AssumeRole while its session is still valid.
 *
 * An evicted partner's clients retire for CLOSE_GRACE_MS before they are closed; a partner that comes back in
 * that time takes them back instead of building new ones, so churn between partners builds nothing. At most
 * `maxPartners` retire at once (the longest retired is closed first): live plus retiring stays within twice the cap.
 */
export class PartnerPool {
  readonly #options: PartnerPoolOptions;
  readonly #credentials = new Map<string, RoleCredentials>();
  readonly #live: LRUCache<string, PartnerAccess>;
  readonly #retiring = new Map<string, Retiring>();
  #built = 0;

  constructor(options: PartnerPoolOptions) {
    this.#options = options;
    this.#live = new LRUCache<string, PartnerAccess>({
      max: options.maxPartners,
      dispose: (entry, id, reason) => {
        if (reason === 'evict') this.#retire(id, entry);
      },
    });
  }

  /** Client sets built so far (a partner taken back from retirement is not built again). */
  get built(): number {
    return this.#built;
  }

  /** Partners with live clients, and evicted ones whose clients are not closed yet. */
  get sizes(): { live: number; retiring: number } {
    return { live: this.#live.size, retiring: this.#retiring.size };
  }

  #retire(id: string, entry: PartnerAccess): void {
    const timer = setTimeout(() => {
      this.#retiring.delete(id);
      entry.close();
    }, CLOSE_GRACE_MS).unref();
    this.#retiring.set(id, { entry, timer });
    while (this.#retiring.size > this.#options.maxPartners) {
      const [oldest, retired] = this.#retiring.entries().next().value!;
      this.#retiring.delete(oldest);
      clearTimeout(retired.timer);
      retired.entry.close();
    }
  }

  #takeBack(id: string): PartnerAccess | undefined {
    const retired = this.#retiring.get(id);
    if (!retired) return undefined;
    this.#retiring.delete(id);
    clearTimeout(retired.timer);
    return retired.entry;
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
      entry = this.#takeBack(id);
      if (!entry) {
        entry = this.#options.build(partner, credentials);
        this.#built++;
      }
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
    for (const { entry, timer } of this.#retiring.values()) {
      clearTimeout(timer);
      entry.close();
    }
    this.#retiring.clear();
  }
}
