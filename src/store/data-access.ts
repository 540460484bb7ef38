import type { DataPlane } from './dataplane/port.js';
import type { ModelRegistry } from '../model/index.js';
import { BatchStore, type BatchOptions } from './batch.js';
import type { CryptoPort } from './crypto-port.js';
import { ItemStore } from './items.js';
import { ReadStore } from './query.js';
import type { RetryPolicy } from './retry.js';
import type { IdempotencyScope } from './idempotency.js';
import type { TableTarget } from './tables.js';
import { TransactionStore } from './transactions.js';

export interface DataAccessOptions {
  readonly client: DataPlane;
  readonly crypto: CryptoPort;
  readonly registry: ModelRegistry;
  readonly retry: RetryPolicy;
  readonly batchMaxItems: number;
  readonly onUnprocessed?: BatchOptions['onUnprocessed'];
  /** Where keyed transactions keep their idempotency records (the table in these credentials' account). */
  readonly idempotency: IdempotencyScope;
  /** Where these credentials' tables are checked and made (`--create-tables` for partners). */
  readonly tables?: TableTarget;
}

/** Every store for one set of credentials (the sidecar's own, or one partner's) and one key provider. */
export class DataAccess {
  readonly client: DataPlane;
  readonly tables: TableTarget | undefined;
  readonly items: ItemStore;
  readonly reads: ReadStore;
  readonly batch: BatchStore;
  readonly transactions: TransactionStore;

  constructor(options: DataAccessOptions) {
    const { client, crypto, registry, retry } = options;
    this.client = client;
    this.tables = options.tables;
    this.items = new ItemStore({ client, crypto });
    const now = () => this.items.now();
    this.reads = new ReadStore(client, crypto);
    this.batch = new BatchStore({
      client,
      crypto,
      retry,
      maxItems: options.batchMaxItems,
      concurrency: 4,
      now,
      ...(options.onUnprocessed ? { onUnprocessed: options.onUnprocessed } : {}),
    });
    this.transactions = new TransactionStore({
      client,
      crypto,
      retry,
      now,
      models: (name) => registry.get(name),
      idempotency: options.idempotency,
    });
  }
}
