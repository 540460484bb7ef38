import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { RequestListener, Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamoDBClient, DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { CommandView } from './command-view.js';
import { LeanDynamoClient, type CallRecord, type LeanClientOptions } from './dataplane/client.js';
import type { CredentialProvider } from './dataplane/credentials.js';
import type { Credentials } from './dataplane/sigv4.js';
import type { DataPlane } from './dataplane/port.js';
import { EmbeddedDataPlane } from './embedded/client.js';
import { CachedKeySha256 } from './sigv4-hash.js';
import type { TableTarget } from './tables.js';

const require = createRequire(import.meta.url);
// node:http and node:https as CommonJS modules: an ESM import of node:http builds its ESM facade, which reads every
// lazy export (fetch's undici among them) — ≈ 30 ms of boot for nothing used here.
const http = () => process.getBuiltinModule('node:http');
const https = () => process.getBuiltinModule('node:https');

export interface BackendOptions {
  readonly kind?: 'embedded' | 'aws';
  /** DynamoDB-compatible endpoint for the aws kind; unset means AWS's own endpoint for the region. */
  readonly endpoint?: string | undefined;
  readonly region: string;
  /** LevelDB directory for the embedded store; unset keeps data in memory. */
  readonly dataDir?: string | undefined;
  /** Each finished data-plane call (metrics). */
  readonly onCall?: (call: CallRecord) => void;
}

export interface Backend {
  readonly kind: 'embedded' | 'external';
  /** The external endpoint; for the embedded store, undefined unless exposeOnLoopback() was called. */
  readonly endpoint: string | undefined;
  /** What every request path uses. */
  readonly dataPlane: DataPlane;
  /** Table checks (lean DescribeTable) and creation (the SDK, loaded on first use). */
  readonly tables: TableTarget;
  /** For tests and tools: SDK commands sent through the data plane, or the control plane for the others. */
  readonly client: CommandView;
  /**
   * Embedded store only, for tests and tools: serve the store on a loopback TCP port as well (unauthenticated, so
   * the sidecar itself never does this) and return its URL.
   */
  exposeOnLoopback?(): Promise<string>;
  /** Embedded store with a data directory: write transactions a crash interrupted, rolled back at open. */
  readonly recovered?: number;
  close(): Promise<void>;
}

/** Settings of the lean data-plane client shared by the sidecar's own client and every partner's. */
export function leanClientOptions(
  endpoint: string | undefined,
  region: string,
  credentials: CredentialProvider,
  onCall?: (call: CallRecord) => void,
  socketPath?: string,
): LeanClientOptions {
  return { region, endpoint, credentials, maxAttempts: 3, requestTimeoutMs: 10_000, ...(socketPath ? { socketPath } : {}), ...(onCall ? { onCall } : {}) };
}

/** The store's name in boot errors: its endpoint, or AWS's for the region. */
export function whereOf(endpoint: string | undefined, region: string): string {
  if (!endpoint) return `DynamoDB in ${region}`;
  try {
    const url = new URL(endpoint);
    return `${url.protocol}//${url.host}`;
  } catch {
    return endpoint;
  }
}

let sdk: Promise<typeof import('@aws-sdk/client-dynamodb')> | undefined;
/** The SDK client for the control plane (CreateTable, UpdateTimeToLive), built on first use only. */
export function lazyControlClient(config: () => DynamoDBClientConfig): { get(): Promise<DynamoDBClient>; destroy(): void } {
  let client: Promise<DynamoDBClient> | undefined;
  let built: DynamoDBClient | undefined;
  return {
    get: () =>
      (client ??= (sdk ??= import('@aws-sdk/client-dynamodb')).then(({ DynamoDBClient }) => (built = new DynamoDBClient(config())))),
    destroy: () => built?.destroy(),
  };
}

/**
 * The first link of the SDK's default chain, read here: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (with
 * AWS_SESSION_TOKEN, AWS_CREDENTIAL_EXPIRATION), skipped when AWS_PROFILE is set, as `fromEnv` in
 * @aws-sdk/credential-provider-node does. Lambda and most containers have them: the chain's modules then never load.
 */
export function environmentCredentials(env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  const { AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_CREDENTIAL_EXPIRATION } = env;
  if (AWS_PROFILE || !AWS_ACCESS_KEY_ID || !AWS_SECRET_ACCESS_KEY) return undefined;
  return {
    accessKeyId: AWS_ACCESS_KEY_ID,
    secretAccessKey: AWS_SECRET_ACCESS_KEY,
    ...(AWS_SESSION_TOKEN ? { sessionToken: AWS_SESSION_TOKEN } : {}),
    ...(AWS_CREDENTIAL_EXPIRATION ? { expiration: new Date(AWS_CREDENTIAL_EXPIRATION) } : {}),
  };
}

let chain: Promise<CredentialProvider> | undefined;
/**
 * The SDK's default credential chain (env, profile, SSO, IMDS, …): environment credentials read directly, the rest
 * loaded on first use; the lean client caches what it gives.
 */
export const defaultCredentials: CredentialProvider = async () =>
  environmentCredentials() ??
  (await (chain ??= import('@aws-sdk/credential-provider-node').then(({ defaultProvider }) => defaultProvider() as CredentialProvider)))();

/** SDK client settings for the control plane (and the differential test's reference client). */
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
    requestHandler: new (require('@smithy/node-http-handler') as typeof import('@smithy/node-http-handler')).NodeHttpHandler({
      // With socketPath every connection goes to that Unix socket, whatever host the endpoint names.
      httpAgent: new (http().Agent)({ keepAlive: true, maxSockets: 256, ...(socketPath ? { socketPath } : {}) }),
      httpsAgent: new (https().Agent)({ keepAlive: true, maxSockets: 256 }),
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
  // dynalite has no transactions: this data plane runs them in-process. The host is never dialled (socketPath wins).
  const endpoint = 'http://embedded.localhost';
  const client = new EmbeddedDataPlane(leanClientOptions(endpoint, options.region, async () => EMBEDDED_CREDENTIALS, options.onCall, socketPath), {
    dataDir: options.dataDir,
  });
  const control = lazyControlClient(() => dynamoClientConfig(endpoint, options.region, EMBEDDED_CREDENTIALS, socketPath));
  // Before anything is served: no request may see a transaction half-applied by a crash.
  let recovered: number;
  try {
    recovered = await client.recover();
  } catch (err) {
    client.close();
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
    dataPlane: client,
    tables: { describe: client, control: control.get, where: 'the embedded store' },
    client: new CommandView(client, control.get),
    async exposeOnLoopback() {
      if (!loopback) {
        const tcp = http().createServer(server.listeners('request')[0] as RequestListener);
        tcp.listen(0, '127.0.0.1');
        await once(tcp, 'listening');
        loopback = { server: tcp, url: `http://127.0.0.1:${(tcp.address() as AddressInfo).port}` };
      }
      return loopback.url;
    },
    async close() {
      client.close();
      control.destroy();
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
  const client = new LeanDynamoClient(leanClientOptions(options.endpoint, options.region, defaultCredentials, options.onCall));
  const control = lazyControlClient(() => dynamoClientConfig(options.endpoint, options.region));
  return {
    kind: 'external',
    endpoint: options.endpoint,
    dataPlane: client,
    tables: { describe: client, control: control.get, where: whereOf(options.endpoint, options.region) },
    client: new CommandView(client, control.get),
    async close() {
      client.close();
      control.destroy();
    },
  };
}
