/**
 * The DynamoDB data plane as the stores need it: ten operations, inputs and outputs in DynamoDB's JSON-protocol
 * shapes (attribute values as `{ S: "…" }`, numbers as strings, binaries base64), no driver types.
 */

import type { Item } from '../../codec/attribute-value.js';

export type { AttributeValue, Item } from '../../codec/attribute-value.js';

/** A request or response body: the operation's JSON document (see the DynamoDB API reference for each). */
export type Json = Record<string, unknown>;

export const DATA_PLANE_OPERATIONS = [
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'Query',
  'Scan',
  'BatchGetItem',
  'BatchWriteItem',
  'TransactGetItems',
  'TransactWriteItems',
] as const;

export type DataPlaneOperation = (typeof DATA_PLANE_OPERATIONS)[number];

export interface DataPlane {
  GetItem(input: Json): Promise<Json>;
  PutItem(input: Json): Promise<Json>;
  UpdateItem(input: Json): Promise<Json>;
  DeleteItem(input: Json): Promise<Json>;
  Query(input: Json): Promise<Json>;
  Scan(input: Json): Promise<Json>;
  BatchGetItem(input: Json): Promise<Json>;
  BatchWriteItem(input: Json): Promise<Json>;
  TransactGetItems(input: Json): Promise<Json>;
  TransactWriteItems(input: Json): Promise<Json>;
  /** Release pooled connections. */
  close(): void;
}

export interface CancellationReason {
  readonly Code?: string;
  readonly Message?: string;
  readonly Item?: Item;
}

/**
 * Every failure of a data-plane call: `name` is DynamoDB's `__type` short name (what `backend-errors.ts` maps,
 * e.g. ConditionalCheckFailedException), or a network/timeout name for failures that never got an answer.
 */
export class DataPlaneError extends Error {
  /** HTTP status of the answer; undefined when there was none. */
  readonly statusCode: number | undefined;
  /** Node's error code for network failures (ECONNRESET, …), as backend-errors.ts reads it. */
  readonly code: string | undefined;
  readonly throttling: boolean;
  readonly retryable: boolean;
  /** TransactionCanceledException: one reason per transaction item, in order. */
  readonly CancellationReasons: CancellationReason[] | undefined;
  /** ConditionalCheckFailedException with ReturnValuesOnConditionCheckFailure=ALL_OLD: the item as it was. */
  readonly Item: Item | undefined;
  /** Attempts made, retries included (the SDK's `$metadata.attempts`). */
  attempts = 1;

  constructor(
    name: string,
    message: string,
    details: {
      statusCode?: number | undefined;
      code?: string | undefined;
      throttling?: boolean;
      retryable?: boolean;
      CancellationReasons?: CancellationReason[] | undefined;
      Item?: Item | undefined;
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = name;
    this.statusCode = details.statusCode;
    this.code = details.code;
    this.throttling = details.throttling ?? false;
    this.retryable = this.throttling || (details.retryable ?? false);
    this.CancellationReasons = details.CancellationReasons;
    this.Item = details.Item;
  }

  get $metadata(): { httpStatusCode: number | undefined; attempts: number } {
    return { httpStatusCode: this.statusCode, attempts: this.attempts };
  }
}

export type * from './shapes.js';
