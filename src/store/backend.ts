import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { EmbeddedDynamoClient } from './embedded/client.js';
import { CachedKeySha256 } from './sigv4-hash.js';
import { traceAwsClient } from '../trace/aws-sdk.js';
import { bindToDeadline } from './deadline-sdk.js';

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
  /** The external endpoint; for the embedded store, undefined unless exposeOnLoopback() was called. */
  readonly endpoint: string | undefined;
  readonly client: DynamoDBClient;
  /**
   * Embedded store only, for tests and tools: serve the store on a loopback TCP port as well (unauthenticated, so
   * the sidecar itself never does this) and return its URL.
   */
  exposeOnLoopback?(): Promise<string>;
  /** Embedded store with a data directory: write transactions a crash interrupted, rolled back at open. */
  readonly recovered?: number;
  close(): Promise<void>;
}

/** Client settings shared by the sidecar's own client and every partner's. */
export function dynamoClientConfig(
  endpoint: string | undefined,
  region: string,
  credentials?: DynamoDBClientConfig['credentials'],
  socketPath?: string,
): DynamoDBClientConfig {
  return {
    region,
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    maxAttempts: 3,
    sha256: CachedKeySha256,
    requestHandler: new NodeHttpHandler({
      // With socketPath every connection goes to that Unix socket, whatever host the endpoint names.
      httpAgent: new Agent({ keepAlive: true, maxSockets: 256, ...(socketPath ? { socketPath } : {}) }),
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

/**
 * The data directory and everything in it are the sidecar user's alone: 0700 / 0600 for what exists, and a 0077
 * umask for the files LevelDB creates as it runs (returned: the function that puts the previous umask back).
 */
function privateDataDir(dir: string): () => void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isFile()) chmodSync(join(dir, entry.name), 0o600);
      else if (entry.isDirectory()) chmodSync(join(dir, entry.name), 0o700);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new BootError(`--data-dir / DATA_DIR: cannot make ${dir} private to this user (0700, files 0600): ${code}`, { cause: err });
  }
  const previous = process.umask(0o077);
  return () => {
    process.umask(previous);
  };
}

/**
 * dynalite in this process, served on a Unix socket in a fresh 0700 directory: no TCP port, so no other local
 * user can reach the tables around the bearer token and the transaction lock.
 */
async function startEmbedded(options: BackendOptions): Promise<Backend> {
  const restoreUmask = options.dataDir ? privateDataDir(options.dataDir) : undefined;
  if (options.dataDir) {
    try {
      await checkDataDir(options.dataDir);
    } catch (err) {
      restoreUmask?.();
      throw err;
    }
  }
  const dynalite = require('dynalite') as (opts: Record<string, unknown>) => Server;
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(options.dataDir ? { path: options.dataDir } : {}),
  });
  const socketDir = mkdtempSync(join(tmpdir(), 'dynamorm-embedded-')); // mkdtemp creates it 0700
  const socketPath = join(socketDir, 'store.sock');
  server.listen(socketPath);
  await once(server, 'listening');
  // dynalite has no transactions: this client runs them in-process. The host is never dialled (socketPath wins).
  const client = bindToDeadline(
    traceAwsClient(new EmbeddedDynamoClient(dynamoClientConfig('http://embedded.localhost', options.region, EMBEDDED_CREDENTIALS, socketPath), { dataDir: options.dataDir }), 'DynamoDB'),
  );
  // Before anything is served: no request may see a transaction half-applied by a crash.
  let recovered: number;
  try {
    recovered = await client.recover();
  } catch (err) {
    client.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(socketDir, { recursive: true, force: true });
    restoreUmask?.();
    throw err;
  }
  let loopback: { server: Server; url: string } | undefined;
  return {
    kind: 'embedded',
    recovered,
    get endpoint() {
      return loopback?.url;
    },
    client,
    async exposeOnLoopback() {
      if (!loopback) {
        const tcp = createServer(server.listeners('request')[0] as RequestListener);
        tcp.listen(0, '127.0.0.1');
        await once(tcp, 'listening');
        loopback = { server: tcp, url: `http://127.0.0.1:${(tcp.address() as AddressInfo).port}` };
      }
      return loopback.url;
    },
    async close() {
      client.destroy();
      if (loopback) {
        loopback.server.closeAllConnections();
        await new Promise<void>((resolve) => loopback!.server.close(() => resolve()));
      }
      server.closeAllConnections();
      try {
        await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      } finally {
        rmSync(socketDir, { recursive: true, force: true });
        restoreUmask?.();
      }
    },
  };
}

export async function openBackend(options: BackendOptions): Promise<Backend> {
  if ((options.kind ?? (options.endpoint ? 'aws' : 'embedded')) === 'embedded') return startEmbedded(options);
  const client = bindToDeadline(traceAwsClient(new DynamoDBClient(dynamoClientConfig(options.endpoint, options.region)), 'DynamoDB'));
  return {
    kind: 'external',
    endpoint: options.endpoint,
    client,
    async close() {
      client.destroy();
    },
  };
}
