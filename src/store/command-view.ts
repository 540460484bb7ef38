import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DATA_PLANE_OPERATIONS, type DataPlane, type DataPlaneOperation, type Json } from './dataplane/port.js';

/** An AWS SDK command as far as this view reads it: its class name names the operation. */
interface AnyCommand {
  readonly input: object;
}

/**
 * For tests and tools, never for requests: AWS SDK commands sent to the store as the sidecar sees it. Data-plane
 * commands go through the backend's data plane (on the embedded store, transactions through its coordinator);
 * others (CreateTable, DeleteTable, …) through the control-plane SDK client. Binaries in inputs may be bytes;
 * outputs carry them as base64, as the JSON protocol does.
 */
export class CommandView {
  constructor(
    private readonly dataPlane: DataPlane,
    private readonly control: () => Promise<DynamoDBClient>,
  ) {}

  async send(command: AnyCommand): Promise<Json & { $metadata?: unknown }> {
    const operation = command.constructor.name.replace(/Command$/, '');
    if ((DATA_PLANE_OPERATIONS as readonly string[]).includes(operation)) {
      return this.dataPlane[operation as DataPlaneOperation](jsonInput(command.input) as Json);
    }
    return (await (await this.control()).send(command as never)) as unknown as Json;
  }
}

function jsonInput(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map(jsonInput);
  if (value instanceof Set) return [...value].map(jsonInput);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, jsonInput(v)]));
  }
  return value;
}
