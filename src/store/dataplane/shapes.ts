import type { Item } from '../../codec/attribute-value.js';

/**
 * The parts of DynamoDB's JSON-protocol request and response documents the stores build and read. Type aliases
 * (not interfaces), so each is assignable to the port's `Json`.
 */
export type ExpressionParams = {
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Item;
};

export type ReturnOnConditionFailure = { ReturnValuesOnConditionCheckFailure?: 'ALL_OLD' | 'NONE' };

export type PutRequest = ExpressionParams & ReturnOnConditionFailure & { TableName: string; Item: Item; ConditionExpression?: string };
export type UpdateRequest = ExpressionParams &
  ReturnOnConditionFailure & { TableName: string; Key: Item; UpdateExpression?: string | undefined; ConditionExpression?: string };
export type DeleteRequest = ExpressionParams & ReturnOnConditionFailure & { TableName: string; Key: Item; ConditionExpression?: string };
export type ConditionCheckRequest = ExpressionParams & ReturnOnConditionFailure & { TableName: string; Key: Item; ConditionExpression: string };
export type GetRequest = ExpressionParams & { TableName: string; Key: Item; ConsistentRead?: boolean; ProjectionExpression?: string };

export type TransactWriteEntry =
  | { Put: PutRequest }
  | { Update: UpdateRequest }
  | { Delete: DeleteRequest }
  | { ConditionCheck: ConditionCheckRequest };

/** One entry of a BatchWriteItem: exactly one of the two is set. */
export type WriteRequest = { PutRequest?: { Item: Item }; DeleteRequest?: { Key: Item } };
export type KeysAndAttributes = ExpressionParams & { Keys: Item[]; ConsistentRead?: boolean; ProjectionExpression?: string };

export type GetItemOutput = { Item?: Item };
export type WriteItemOutput = { Attributes?: Item };
export type ReadPageOutput = { Items?: Item[]; Count?: number; ScannedCount?: number; LastEvaluatedKey?: Item };
export type BatchGetItemOutput = { Responses?: Record<string, Item[]>; UnprocessedKeys?: Record<string, KeysAndAttributes> };
export type BatchWriteItemOutput = { UnprocessedItems?: Record<string, WriteRequest[]> };
export type TransactGetItemsOutput = { Responses?: { Item?: Item }[] };
