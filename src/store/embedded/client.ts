import { LeanDynamoClient, type LeanClientOptions } from '../dataplane/client.js';
import type { DataPlane, Json } from '../dataplane/port.js';
import { IdempotencyCache, TransactionCoordinator, type IdempotencyOptions } from './coordinator.js';
import { IntentJournal } from './journal.js';
import { RwLock } from './rw-lock.js';
import { lockWithin } from './deadline-lock.js';

export interface EmbeddedClientOptions {
  readonly idempotency?: IdempotencyOptions;
  /** The store's data directory: write transactions keep their intent records there (none in memory mode). */
  readonly dataDir?: string | undefined;
}

/**
 * The data plane of the embedded store (dynalite), which lacks transactions: the lean client on dynalite's socket,
 * with TransactWriteItems run in this process under an exclusive lock; every other operation, TransactGetItems
 * included, holds the lock shared, so no transaction is ever seen half-applied, and reads (transactional or not)
 * never wait for one another.
 */
export class EmbeddedDataPlane implements DataPlane {
  readonly lock = new RwLock();
  /** The store itself, outside the lock (what the coordinator calls; tests hook it). */
  readonly store: LeanDynamoClient;
  readonly #coordinator: TransactionCoordinator;

  constructor(client: LeanClientOptions | LeanDynamoClient, options: EmbeddedClientOptions = {}) {
    this.store = client instanceof LeanDynamoClient ? client : new LeanDynamoClient(client);
    this.#coordinator = new TransactionCoordinator(
      this.store,
      new IdempotencyCache(options.idempotency),
      options.dataDir ? new IntentJournal(options.dataDir) : undefined,
    );
  }

  /** Rolls back transactions a crash interrupted (see TransactionCoordinator.recover); call before serving. */
  recover(): Promise<number> {
    return this.lock.write(() => this.#coordinator.recover());
  }

  GetItem(input: Json) { return lockWithin(this.lock, false, () => this.store.GetItem(input)); }
  PutItem(input: Json) { return lockWithin(this.lock, false, () => this.store.PutItem(input)); }
  UpdateItem(input: Json) { return lockWithin(this.lock, false, () => this.store.UpdateItem(input)); }
  DeleteItem(input: Json) { return lockWithin(this.lock, false, () => this.store.DeleteItem(input)); }
  Query(input: Json) { return lockWithin(this.lock, false, () => this.store.Query(input)); }
  Scan(input: Json) { return lockWithin(this.lock, false, () => this.store.Scan(input)); }
  BatchGetItem(input: Json) { return lockWithin(this.lock, false, () => this.store.BatchGetItem(input)); }
  BatchWriteItem(input: Json) { return lockWithin(this.lock, false, () => this.store.BatchWriteItem(input)); }

  TransactWriteItems(input: Json): Promise<Json> {
    return lockWithin(this.lock, true, () => this.#coordinator.transactWrite(input));
  }

  /** Shared is enough: a transaction writes under the exclusive lock, and single-item writes are atomic per item. */
  TransactGetItems(input: Json): Promise<Json> {
    return lockWithin(this.lock, false, () => this.#coordinator.transactGet(input));
  }

  DescribeTable(input: { TableName: string }): Promise<Json> {
    return lockWithin(this.lock, false, () => this.store.DescribeTable(input));
  }

  close(): void {
    this.store.close();
  }
}
