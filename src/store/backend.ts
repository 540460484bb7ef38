import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { EmbeddedDynamoClient } from './embedded/client.js';
import { CachedKeySha256 } from './sigv4-hash.js';

const require = createRequire(import.meta.url);

export interface BackendOptions {
  readonly kind?: 'embedded' | 'aws';
  /** DynamoDB-compatible endpoint for the aws kind; unset means AWS's own endpoint for the region. */
  readonly endpoint?: string | undefined;
  readonly region: string;
  /** LevelDB directory for the embedded store; unset keeps data in memory. */
  readonly dataDir?: string | undefined;
}

export interface Backend {
  readonly kind: 'embedded' | 'external';
  readonly endpoint: string | undefined;
  readonly client: DynamoDBClient;
  close(): Promise<void>;
}

/** Client settings shared by the sidecar's own client and every partner's. */
export function dynamoClientConfig(
  endpoint: string | undefined,
  region: string,
  credentials?: DynamoDBClientConfig['credentials'],
): DynamoDBClientConfig {
  return {
    region,
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    maxAttempts: 3,
    sha256: CachedKeySha256,
    requestHandler: new NodeHttpHandler({
      httpAgent: new Agent({ keepAlive: true, maxSockets: 256 }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
      connectionTimeout: 2_000,
      requestTimeout: 10_000,
      // Without this a backend that accepts a request and never answers only logs a warning: the caller would hang.
      throwOnRequestTimeout: true,
    }),
  };
}

// The embedded store accepts any signature; fixed credentials keep it independent of the host's AWS setup.
const EMBEDDED_CREDENTIALS = { accessKeyId: 'embedded', secretAccessKey: 'embedded' };

/**
 * A boot failure that one line explains (no stack trace wanted): the CLI prints the message alone unless
 * LOG_LEVEL=debug.
 */
export class BootError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BootError';
  }
}

interface LevelDb {
  open(): Promise<void>;
  close(): Promise<void>;
}

/**
 * LevelDB allows one process per directory. dynalite opens it lazily and turns a held lock into an uncaught
 * "Database is closed" on the first request, so the directory is opened (and closed again) here first, through
 * the same `level` dynalite loads.
 */
async function checkDataDir(dataDir: string): Promise<void> {
  const { Level } = createRequire(require.resolve('dynalite'))('level') as { Level: new (path: string) => LevelDb };
  const db = new Level(dataDir);
  try {
    await db.open();
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') {
      throw new BootError(`--data-dir ${dataDir} is in use by another process (its LevelDB lock is held): stop that sidecar, or give this one another --data-dir`, { cause: err });
    }
    throw new BootError(`--data-dir ${dataDir} cannot be opened: ${cause?.message ?? (err as Error).message}`, { cause: err });
  }
  await db.close();
}

async function startEmbedded(options: BackendOptions): Promise<Backend> {
  if (options.dataDir) await checkDataDir(options.dataDir);
  const dynalite = require('dynalite') as (opts: Record<string, unknown>) => Server;
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(options.dataDir ? { path: options.dataDir } : {}),
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  // dynalite has no transactions: this client runs them in-process.
  const client = new EmbeddedDynamoClient(dynamoClientConfig(endpoint, options.region, EMBEDDED_CREDENTIALS));
  return {
    kind: 'embedded',
    endpoint,
    client,
    async close() {
      client.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

export async function openBackend(options: BackendOptions): Promise<Backend> {
  if ((options.kind ?? (options.endpoint ? 'aws' : 'embedded')) === 'embedded') return startEmbedded(options);
  const client = new DynamoDBClient(dynamoClientConfig(options.endpoint, options.region));
  return {
    kind: 'external',
    endpoint: options.endpoint,
    client,
    async close() {
      client.destroy();
    },
  };
}
