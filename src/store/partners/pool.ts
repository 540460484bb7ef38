import { LRUCache } from 'lru-cache';
import type { STSClient } from '@aws-sdk/client-sts';
import { SidecarError } from '../../errors.js';
import type { DataAccess } from '../data-access.js';
import { samePartner, type PartnerConfig } from './config.js';
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

/** One request's use of a partner's stores: `release()` when the request is over (idempotent). */
export interface PartnerLease {
  readonly access: DataAccess;
  release(): void;
}

/** What a `replace()` changed, by partner id. */
export interface PartnerChanges {
  readonly added: string[];
  readonly removed: string[];
  readonly changed: string[];
}

/** Grace before an evicted partner's clients are closed, so requests already using them can finish. */
const CLOSE_GRACE_MS = 60_000;

/** A built client set, with the requests using it right now. */
interface Slot {
  readonly entry: PartnerAccess;
  inflight: number;
  /** Set once the partner was removed or changed: close as soon as `inflight` is 0 (or at this timer). */
  drainTimer?: NodeJS.Timeout;
}

interface Retiring {
  readonly slot: Slot;
  readonly timer: NodeJS.Timeout;
}

/**
 * Per-partner DynamoDB/KMS clients over AssumeRole credentials. Credentials outlive client eviction, so
 * a partner that comes back does not cost another AssumeRole while its session is still valid.
 *
 * An evicted partner's clients retire for CLOSE_GRACE_MS before they are closed; a partner that comes back in
 * that time takes them back instead of building new ones, so churn between partners builds nothing. At most
 * `maxPartners` retire at once (the longest retired is closed first): live plus retiring stays within twice the cap.
 *
 * The partner set can be replaced while serving (`replace`): a removed or changed partner loses its credentials and
 * clients at once — no later request reaches them — and its clients close when the requests already using them are
 * over (at most CLOSE_GRACE_MS).
 */
export class PartnerPool {
  readonly #options: PartnerPoolOptions;
  #partners: ReadonlyMap<string, PartnerConfig>;
  readonly #credentials = new Map<string, RoleCredentials>();
  readonly #live: LRUCache<string, Slot>;
  readonly #retiring = new Map<string, Retiring>();
  readonly #draining = new Set<Slot>();
  #built = 0;

  constructor(options: PartnerPoolOptions) {
    this.#options = options;
    this.#partners = options.partners;
    this.#live = new LRUCache<string, Slot>({
      max: options.maxPartners,
      dispose: (slot, id, reason) => {
        if (reason === 'evict') this.#retire(id, slot);
      },
    });
  }

  /** Client sets built so far (a partner taken back from retirement is not built again). */
  get built(): number {
    return this.#built;
  }

  /** Partners with live clients, evicted ones whose clients are not closed yet, and removed ones still in use. */
  get sizes(): { live: number; retiring: number; draining: number } {
    return { live: this.#live.size, retiring: this.#retiring.size, draining: this.#draining.size };
  }

  /** Partners configured now. */
  get partnerCount(): number {
    return this.#partners.size;
  }

  #retire(id: string, slot: Slot): void {
    const timer = setTimeout(() => {
      this.#retiring.delete(id);
      slot.entry.close();
    }, CLOSE_GRACE_MS).unref();
    this.#retiring.set(id, { slot, timer });
    while (this.#retiring.size > this.#options.maxPartners) {
      const [oldest, retired] = this.#retiring.entries().next().value!;
      this.#retiring.delete(oldest);
      clearTimeout(retired.timer);
      retired.slot.entry.close();
    }
  }

  #takeBack(id: string): Slot | undefined {
    const retired = this.#retiring.get(id);
    if (!retired) return undefined;
    this.#retiring.delete(id);
    clearTimeout(retired.timer);
    return retired.slot;
  }

  has(id: string): boolean {
    return this.#partners.has(id);
  }

  /**
   * Swap in a new partner set. Removed and changed partners (another role, external id, region, endpoint, KMS key or
   * duration) are dropped: credentials forgotten, clients out of the pool; a changed one starts afresh on its next
   * request. Returns what changed, so the caller can drop the partners' data keys too.
   */
  replace(next: ReadonlyMap<string, PartnerConfig>): PartnerChanges {
    const changes = this.changes(next);
    this.#partners = next;
    for (const id of [...changes.removed, ...changes.changed]) this.#drop(id);
    return changes;
  }

  /** What `replace(next)` would change. */
  changes(next: ReadonlyMap<string, PartnerConfig>): PartnerChanges {
    const changes: PartnerChanges = { added: [], removed: [], changed: [] };
    for (const [id, partner] of next) {
      const before = this.#partners.get(id);
      if (!before) changes.added.push(id);
      else if (!samePartner(before, partner)) changes.changed.push(id);
    }
    for (const id of this.#partners.keys()) if (!next.has(id)) changes.removed.push(id);
    return changes;
  }

  #drop(id: string): void {
    this.#credentials.delete(id);
    const live = this.#live.peek(id);
    if (live) {
      this.#live.delete(id);
      this.#drain(live);
    }
    const retired = this.#retiring.get(id);
    if (retired) {
      this.#retiring.delete(id);
      clearTimeout(retired.timer);
      this.#drain(retired.slot);
    }
  }

  #drain(slot: Slot): void {
    if (slot.inflight === 0) {
      slot.entry.close();
      return;
    }
    this.#draining.add(slot);
    slot.drainTimer = setTimeout(() => this.#closeDrained(slot), CLOSE_GRACE_MS).unref();
  }

  #closeDrained(slot: Slot): void {
    if (!this.#draining.delete(slot)) return;
    clearTimeout(slot.drainTimer);
    slot.entry.close();
  }

  #release(slot: Slot): void {
    slot.inflight--;
    if (slot.inflight === 0 && slot.drainTimer) this.#closeDrained(slot);
  }

  /** The partner's stores for one request, with credentials already obtained (so STS failures surface here as 503). */
  async lease(id: string): Promise<PartnerLease> {
    for (;;) {
      const partner = this.#partners.get(id);
      if (!partner) throw new SidecarError('ErrUnknownPartner', 403, `unknown partner ${id}`);
      const credentials = this.#credentialsOf(partner);
      await credentials.get();
      // The set was replaced while STS answered: never build clients from a configuration no longer in force.
      if (this.#partners.get(id) !== partner) continue;
      let slot = this.#live.get(id);
      if (!slot) {
        slot = this.#takeBack(id);
        if (!slot) {
          slot = { entry: this.#options.build(partner, credentials), inflight: 0 };
          this.#built++;
        }
        this.#live.set(id, slot);
      }
      const leased = slot;
      leased.inflight++;
      let released = false;
      return {
        access: leased.entry.access,
        release: () => {
          if (released) return;
          released = true;
          this.#release(leased);
        },
      };
    }
  }

  /** The partner's stores, for work outside a request (boot-time table checks). */
  async access(id: string): Promise<DataAccess> {
    const lease = await this.lease(id);
    lease.release();
    return lease.access;
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
    for (const slot of this.#live.values()) slot.entry.close();
    this.#live.clear();
    for (const { slot, timer } of this.#retiring.values()) {
      clearTimeout(timer);
      slot.entry.close();
    }
    this.#retiring.clear();
    for (const slot of this.#draining) {
      clearTimeout(slot.drainTimer);
      slot.entry.close();
    }
    this.#draining.clear();
  }
}
