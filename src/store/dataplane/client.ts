import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { crc32 } from 'node:zlib';
import { CachedCredentials, type CredentialProvider } from './credentials.js';
import { Http1Pool, Http1ProtocolError } from './http1.js';
import { DATA_PLANE_OPERATIONS, DataPlaneError, type DataPlane, type DataPlaneOperation, type Json } from './port.js';
import { attemptWindow, deadlineExceededError, isThrottling, isTransient, retryFitsDeadline, RetryQuota, retryDelay, STANDARD } from './retry.js';
import { currentDeadline, noteDeadlineHit } from '../deadline.js';
import { signatureHeaders, type Credentials } from './sigv4.js';
import { traceHooks } from '../../trace/context.js';

/** DescribeTable is not a data-plane operation: the embedded transaction coordinator and the readiness check use it. */
export type LeanOperation = DataPlaneOperation | 'DescribeTable';

export interface CallRecord {
  readonly operation: LeanOperation;
  readonly seconds: number;
  readonly outcome: 'ok' | 'error' | 'throttled';
  readonly attempts: number;
}

export interface LeanClientOptions {
  readonly region: string;
  /** A DynamoDB-compatible endpoint URL; unset means AWS's regional endpoint. */
  readonly endpoint?: string | undefined;
  /** Every connection goes to this Unix socket, whatever host the endpoint names (the embedded store). */
  readonly socketPath?: string | undefined;
  readonly credentials: CredentialProvider | Credentials;
  /** Attempts per call, retries included (the SDK's maxAttempts; default 3). */
  readonly maxAttempts?: number;
  /** No retry starts after this long since the call began. */
  readonly retryDeadlineMs?: number;
  /** One attempt, connection included, fails with TimeoutError after this long (default 10 s). */
  readonly requestTimeoutMs?: number;
  readonly maxSockets?: number;
  /** CAs to trust for an https endpoint instead of Node's (a private CA; tests). */
  readonly tlsCa?: string | Buffer;
  /** Each finished call, for metrics. */
  readonly onCall?: (call: CallRecord) => void;
  readonly random?: () => number;
  /** The clock signatures are dated with. */
  readonly now?: () => Date;
}

/** Set by the bundler (scripts/bundle.mjs): a bundle has no package.json beside it. */
declare const __SIDECAR_VERSION__: string | undefined;
/** src/store/dataplane and dist/store/dataplane are both three levels below the package root. */
const VERSION =
  typeof __SIDECAR_VERSION__ === 'string'
    ? __SIDECAR_VERSION__
    : (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
export const USER_AGENT = `dynamorm-sidecar/${VERSION} lean-dataplane node/${process.versions.node}`;

const TARGET_PREFIX = 'DynamoDB_20120810.';
const CONTENT_TYPE = 'application/x-amz-json-1.0';

/** AWS's endpoint for a region (China regions live under amazonaws.com.cn). */
export function regionalEndpoint(region: string): string {
  return `https://dynamodb.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
}

/** host, content-type and x-amz-target of one operation: as signed, and as the start of the request's head. */
interface OperationHeaders {
  readonly signed: Readonly<Record<string, string>>;
  readonly head: string;
}

interface Answer {
  readonly status: number;
  /** The answer's headers as received (name, value, …): read by name on demand, no headers object built. */
  readonly rawHeaders: string[];
  readonly body: Buffer;
}

/**
 * A header of `raw` (name, value, … as received) as node:http's IncomingMessage#headers would give it: names compared
 * without case, repeated values joined with ', '. (Content-Length is http1.ts's business: it frames the answer.)
 */
function headerOf(raw: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!;
    if (key.length !== name.length || (key !== name && key.toLowerCase() !== name)) continue;
    value = value === undefined ? raw[i + 1]! : `${value}, ${raw[i + 1]!}`;
  }
  return value;
}

/** DynamoDB's error short name: `com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException` → the part after '#'. */
function shortName(type: string): string {
  const name = type.slice(type.lastIndexOf('#') + 1);
  const colon = name.indexOf(':');
  return colon >= 0 ? name.slice(0, colon) : name;
}

function errorOf(answer: Answer): DataPlaneError {
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>;
  } catch {
    // An answer that is not JSON (a proxy's HTML page): classified by its status alone.
  }
  const headerType = headerOf(answer.rawHeaders, 'x-amzn-errortype');
  const type = typeof body.__type === 'string' ? body.__type : typeof headerType === 'string' ? headerType : '';
  const name = type ? shortName(type) : answer.status >= 500 ? 'InternalServerError' : 'UnknownError';
  const message = String(body.message ?? body.Message ?? `DynamoDB answered ${answer.status}`);
  return new DataPlaneError(name, message, {
    statusCode: answer.status,
    throttling: isThrottling(name, answer.status),
    retryable: isTransient(name, answer.status),
    CancellationReasons: body.CancellationReasons as DataPlaneError['CancellationReasons'],
    Item: body.Item as DataPlaneError['Item'],
  });
}

function corrupt(name: 'CRC32CheckFailed' | 'TruncatedResponse', message: string, status: number): DataPlaneError {
  return new DataPlaneError(name, message, { statusCode: status, retryable: true });
}

function networkError(err: NodeJS.ErrnoException): DataPlaneError {
  if (err instanceof DataPlaneError) return err;
  const code = err.code;
  // No network code but a name of its own (CredentialsProviderError from the credential chain): kept, not retried.
  if (code === undefined && err.name && err.name !== 'Error') return new DataPlaneError(err.name, err.message, { cause: err });
  return new DataPlaneError(code ?? 'NetworkingError', err.message, { code, retryable: isTransient('', undefined, code ?? 'ECONNRESET'), cause: err });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * DynamoDB's data plane over its JSON protocol on keep-alive HTTP/1.1 connections (http1.ts): one JSON.stringify, one SigV4
 * signature from a cached signing key, one request, one JSON.parse per attempt. Retries, errors and checksums as
 * described in port.ts and retry.ts.
 */
export class LeanDynamoClient implements DataPlane {
  readonly #options: LeanClientOptions;
  readonly #credentials: CachedCredentials;
  readonly #quota = new RetryQuota();
  readonly #pool: Http1Pool;
  readonly #host: string;
  readonly #path: string;
  readonly #maxAttempts: number;
  readonly #random: () => number;
  readonly #operations = new Map<LeanOperation, OperationHeaders>();

  constructor(options: LeanClientOptions) {
    this.#options = options;
    this.#credentials = new CachedCredentials(options.credentials);
    const url = new URL(options.endpoint ?? regionalEndpoint(options.region));
    const https = url.protocol === 'https:';
    this.#host = url.host;
    this.#path = url.pathname || '/';
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.#pool = new Http1Pool({
      hostname,
      port: url.port ? Number(url.port) : https ? 443 : 80,
      tls: https,
      // SNI as node:https sends it: the host name, none for an IP address.
      servername: https && !isIP(hostname) ? hostname : undefined,
      ca: options.tlsCa,
      socketPath: options.socketPath,
      maxSockets: options.maxSockets ?? 256,
    });
    this.#maxAttempts = options.maxAttempts ?? STANDARD.maxAttempts;
    this.#random = options.random ?? Math.random;
  }

  GetItem(input: Json) { return this.call('GetItem', input); }
  PutItem(input: Json) { return this.call('PutItem', input); }
  UpdateItem(input: Json) { return this.call('UpdateItem', input); }
  DeleteItem(input: Json) { return this.call('DeleteItem', input); }
  Query(input: Json) { return this.call('Query', input); }
  Scan(input: Json) { return this.call('Scan', input); }
  BatchGetItem(input: Json) { return this.call('BatchGetItem', input); }
  BatchWriteItem(input: Json) { return this.call('BatchWriteItem', input); }
  TransactGetItems(input: Json) { return this.call('TransactGetItems', input); }
  TransactWriteItems(input: Json) { return this.call('TransactWriteItems', input); }

  /** Not part of the DataPlane port (a control-plane read): a table's key schema, status, … */
  DescribeTable(input: { TableName: string }) { return this.#call('DescribeTable', input); }

  /** The Unix socket every connection goes to, if any (the embedded store). */
  get socketPath(): string | undefined {
    return this.#options.socketPath;
  }

  /** Tokens left in the retry quota (for tests and diagnostics). */
  get retryTokens(): number {
    return this.#quota.available;
  }

  close(): void {
    this.#pool.close();
  }

  call(operation: DataPlaneOperation, input: Json): Promise<Json> {
    // Not async: the call's own promise is the one returned (a refusal still comes as a rejection).
    if (!DATA_PLANE_OPERATIONS.includes(operation)) return Promise.reject(new TypeError(`not a data-plane operation: ${operation}`));
    return this.#call(operation, input);
  }

  async #call(operation: LeanOperation, input: Json): Promise<Json> {
    const started = performance.now();
    const deadline = this.#options.retryDeadlineMs === undefined ? Infinity : Date.now() + this.#options.retryDeadlineMs;
    // The request's own deadline (X-Request-Timeout-Ms, a Lambda invocation): bounds each attempt and every retry.
    const requestDeadline = currentDeadline()?.at ?? Infinity;
    // As the SDK does (idempotencyToken trait): a retried TransactWriteItems whose first attempt landed but whose
    // answer was lost must not run twice, so every call carries a token that its own retries resend.
    if (operation === 'TransactWriteItems' && input.ClientRequestToken === undefined) input = { ...input, ClientRequestToken: randomUUID() };
    // Sent as the JSON text itself: node:http writes a string body in one write with the request head (a Buffer
    // body goes as a second chunk), and the signature hashes the same UTF-8 bytes.
    const body = JSON.stringify(input);
    const bodyLength = String(Buffer.byteLength(body));
    const traced = traceHooks.beforeCall('DynamoDB', operation, input);
    let spent = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        const window = attemptWindow(this.#options.requestTimeoutMs ?? 10_000, requestDeadline);
        if (window.timeoutMs <= 0) throw deadlineExceededError(operation);
        const answer = await this.#attempt(operation, body, bodyLength, window, traced?.header);
        if (answer.status !== 200) throw errorOf(answer);
        let output: Json;
        try {
          output = JSON.parse(answer.body.toString('utf8')) as Json;
        } catch {
          throw corrupt('TruncatedResponse', 'DynamoDB answered with a body that is not complete JSON', answer.status);
        }
        this.#quota.release(spent);
        this.#record(operation, started, 'ok', attempt);
        traced?.end({ output, attempts: attempt });
        return output;
      } catch (e) {
        const err = e instanceof DataPlaneError ? e : networkError(e as NodeJS.ErrnoException);
        err.attempts = attempt;
        const delay = retryDelay(err, attempt - 1, this.#random);
        const inTime = retryFitsDeadline(delay, requestDeadline);
        const cost = err.retryable && attempt < this.#maxAttempts && Date.now() + delay < deadline && inTime ? this.#quota.acquire(err) : undefined;
        if (cost === undefined) {
          this.#record(operation, started, err.throttling ? 'throttled' : 'error', attempt);
          traced?.end({ error: err, attempts: attempt });
          if (err.name === 'DeadlineExceeded' || (err.retryable && attempt < this.#maxAttempts && !inTime)) {
            noteDeadlineHit();
            throw err.name === 'DeadlineExceeded' ? err : deadlineExceededError(operation);
          }
          throw err;
        }
        spent = cost;
        await sleep(delay);
      }
    }
  }

  #record(operation: LeanOperation, started: number, outcome: CallRecord['outcome'], attempts: number): void {
    this.#options.onCall?.({ operation, seconds: (performance.now() - started) / 1000, outcome, attempts });
  }

  #attempt(operation: LeanOperation, body: string, bodyLength: string, window: { timeoutMs: number; byDeadline: boolean }, traceHeader?: string): Promise<Answer> {
    // Credentials in hand (nearly always): signed and sent without an async step of its own.
    const credentials = this.#credentials.fresh();
    if (credentials) return this.#signAndSend(operation, body, bodyLength, window, traceHeader, credentials);
    return this.#credentials.get().then((fetched) => this.#signAndSend(operation, body, bodyLength, window, traceHeader, fetched));
  }

  #signAndSend(operation: LeanOperation, body: string, bodyLength: string, window: { timeoutMs: number; byDeadline: boolean }, traceHeader: string | undefined, credentials: Credentials): Promise<Answer> {
    const { signed, head: fixed } = this.#operationHeaders(operation);
    const signature = signatureHeaders({
      method: 'POST',
      path: this.#path,
      headers: signed,
      body,
      credentials,
      region: this.#options.region,
      service: 'dynamodb',
      date: this.#options.now?.() ?? new Date(),
    });
    // Host, content-type, x-amz-target, the signature's headers, content-length, user-agent, x-amzn-trace-id.
    let head = fixed;
    for (const name in signature) head += `${name}: ${signature[name]!}\r\n`;
    head += `content-length: ${bodyLength}\r\nuser-agent: ${USER_AGENT}\r\n`;
    // Not signed, as the SDK does: X-Ray may rewrite it on the way. (Never a line break: it would split the head.)
    if (traceHeader && !/[\r\n]/.test(traceHeader)) head += `x-amzn-trace-id: ${traceHeader}\r\n`;
    return this.#send(operation, `${head}\r\n`, body, window);
  }

  /** An operation's headers that never change, built once: the ones signed beside the signature's, and as head text. */
  #operationHeaders(operation: LeanOperation): OperationHeaders {
    let headers = this.#operations.get(operation);
    if (!headers) {
      const target = TARGET_PREFIX + operation;
      headers = {
        signed: Object.freeze({ host: this.#host, 'content-type': CONTENT_TYPE, 'x-amz-target': target }),
        head: `POST ${this.#path} HTTP/1.1\r\nhost: ${this.#host}\r\ncontent-type: ${CONTENT_TYPE}\r\nx-amz-target: ${target}\r\n`,
      };
      this.#operations.set(operation, headers);
    }
    return headers;
  }

  async #send(operation: LeanOperation, head: string, body: string, window: { timeoutMs: number; byDeadline: boolean }): Promise<Answer> {
    let answer: Answer;
    try {
      answer = await this.#pool.request(head, body, window.timeoutMs, () =>
        window.byDeadline
          ? deadlineExceededError(operation)
          : new DataPlaneError('TimeoutError', `DynamoDB did not answer within ${window.timeoutMs} ms`, { retryable: true }),
      );
    } catch (err) {
      if (err instanceof Http1ProtocolError) throw corrupt('TruncatedResponse', err.message, err.status);
      throw err;
    }
    const crc = headerOf(answer.rawHeaders, 'x-amz-crc32');
    if (typeof crc === 'string' && crc32(answer.body) >>> 0 !== Number(crc)) {
      throw corrupt('CRC32CheckFailed', 'the answer does not match its x-amz-crc32 checksum', answer.status);
    }
    return answer;
  }
}
