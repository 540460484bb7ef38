import { startSidecar, type Sidecar } from '../../src/server.js';
import type { SidecarConfig } from '../../src/config.js';

export interface TestSidecar {
  readonly sidecar: Sidecar;
  readonly url: string;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse>;
  close(): Promise<void>;
}

export interface TestResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: any;
}

export const baseConfig: SidecarConfig = {
  port: 0,
  host: '127.0.0.1',
  socket: undefined,
  schemasDir: 'schemas',
  backend: 'embedded',
  dataDir: undefined,
  dynamodbEndpoint: undefined,
  region: 'us-east-1',
  createTables: false,
  idempotencyTable: 'dynamorm_sidecar_idempotency',
  logLevel: 'silent',
  bodyLimit: 1024 * 1024,
  batchMaxItems: 1000,
  retryDeadlineMs: 5000,
  partnersFile: undefined,
  partnerHeader: 'x-partner-id',
  requirePartner: false,
  maxPartners: 100,
  stsEndpoint: undefined,
  kmsEndpoint: undefined,
  kmsKeyArn: undefined,
  localKek: undefined,
  localKekFile: undefined,
  dataKeyMaxAgeMs: 300_000,
  dataKeyMaxUses: 10_000,
  authToken: undefined,
  docs: true,
  maxEventLoopDelayMs: 0,
  requestTimeoutMs: 30_000,
  maxConnections: 1_000,
};

export async function send(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<TestResponse> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Uint8Array ? (body as BodyInit) : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(url + path, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A real sidecar listening on a free loopback port, embedded store unless `overrides` says otherwise. */
export async function startTestSidecar(overrides: Partial<SidecarConfig> = {}): Promise<TestSidecar> {
  const config = { ...baseConfig, ...overrides };
  // Tests that name an endpoint mean the AWS-compatible backend.
  if (overrides.dynamodbEndpoint && !overrides.backend) Object.assign(config, { backend: 'aws' });
  const sidecar = await startSidecar(config);
  // Tests reach the embedded store's data directly (other sidecars, fault proxies) through this loopback port.
  await sidecar.backend.exposeOnLoopback?.();
  const url = sidecar.url;
  return {
    sidecar,
    url,
    request: (method, path, body, headers) => send(url, method, path, body, headers),
    close: () => sidecar.close(),
  };
}
