import {
  DynamoDBClient,
  TransactGetItemsCommand,
  TransactWriteItemsCommand,
  type $Command,
  type DynamoDBClientConfig,
  type DynamoDBClientResolvedConfig,
  type ServiceInputTypes,
  type ServiceOutputTypes,
  type TransactGetItemsCommandInput,
  type TransactWriteItemsCommandInput,
} from '@aws-sdk/client-dynamodb';
import { IdempotencyCache, TransactionCoordinator, type IdempotencyOptions } from './coordinator.js';
import { IntentJournal } from './journal.js';
import { RwLock } from './rw-lock.js';
import { lockWithin } from './deadline-lock.js';

type AnyCommand = $Command<ServiceInputTypes, ServiceOutputTypes, DynamoDBClientResolvedConfig, ServiceInputTypes, ServiceOutputTypes>;
type SendOptions = Parameters<DynamoDBClient['send']>[1];
type Callback<O> = (err: unknown, data?: O) => void;

export interface EmbeddedClientOptions {
  readonly idempotency?: IdempotencyOptions;
  /** The store's data directory: write transactions keep their intent records there (none in memory mode). */
  readonly dataDir?: string | undefined;
}

/** Both checks: a second copy of the SDK in node_modules would defeat instanceof alone. */
function isCommand(command: unknown, cls: { name: string; prototype: object }): boolean {
  return command instanceof (cls as unknown as new () => object) || (command as object)?.constructor?.name === cls.name;
}

/**
 * A DynamoDBClient for the embedded store (dynalite), which lacks transactions. TransactWriteItems runs in this
 * process under an exclusive lock; every other command, TransactGetItems included, holds the lock shared, so no
 * transaction is ever seen half-applied, and reads (transactional or not) never wait for one another.
 */
export class EmbeddedDynamoClient extends DynamoDBClient {
  readonly lock = new RwLock();
  private readonly coordinator: TransactionCoordinator;

  constructor(config: DynamoDBClientConfig, options: EmbeddedClientOptions = {}) {
    super(config);
    this.coordinator = new TransactionCoordinator(
      (command) => this.rawSend(command),
      new IdempotencyCache(options.idempotency),
      options.dataDir ? new IntentJournal(options.dataDir) : undefined,
    );
  }

  /** Rolls back transactions a crash interrupted (see TransactionCoordinator.recover); call before serving. */
  recover(): Promise<number> {
    return this.lock.write(() => this.coordinator.recover());
  }

  override send<I extends ServiceInputTypes, O extends ServiceOutputTypes>(
    command: $Command<I, O, DynamoDBClientResolvedConfig, ServiceInputTypes, ServiceOutputTypes>,
    options?: SendOptions,
  ): Promise<O>;
  override send<I extends ServiceInputTypes, O extends ServiceOutputTypes>(
    command: $Command<I, O, DynamoDBClientResolvedConfig, ServiceInputTypes, ServiceOutputTypes>,
    cb: Callback<O>,
  ): void;
  override send<I extends ServiceInputTypes, O extends ServiceOutputTypes>(
    command: $Command<I, O, DynamoDBClientResolvedConfig, ServiceInputTypes, ServiceOutputTypes>,
    options: SendOptions,
    cb: Callback<O>,
  ): void;
  override send(command: AnyCommand, optionsOrCb?: SendOptions | Callback<unknown>, cb?: Callback<unknown>): Promise<unknown> | void {
    const callback = typeof optionsOrCb === 'function' ? optionsOrCb : cb;
    const options = typeof optionsOrCb === 'function' ? undefined : optionsOrCb;
    const result = this.route(command, options);
    if (!callback) return result;
    result.then((data) => callback(null, data), (err: unknown) => callback(err));
  }

  private route(command: AnyCommand, options: SendOptions | undefined): Promise<unknown> {
    if (isCommand(command, TransactWriteItemsCommand)) {
      return lockWithin(this.lock, true, () => this.coordinator.transactWrite(command.input as TransactWriteItemsCommandInput));
    }
    if (isCommand(command, TransactGetItemsCommand)) {
      // Shared is enough: a transaction writes under the exclusive lock, and single-item writes are atomic per item.
      return lockWithin(this.lock, false, () => this.coordinator.transactGet(command.input as TransactGetItemsCommandInput));
    }
    return lockWithin(this.lock, false, () => this.rawSend(command, options));
  }

  private rawSend<I extends ServiceInputTypes, O extends ServiceOutputTypes>(
    command: $Command<I, O, DynamoDBClientResolvedConfig, ServiceInputTypes, ServiceOutputTypes>,
    options?: SendOptions,
  ): Promise<O> {
    return super.send(command, options);
  }
}
