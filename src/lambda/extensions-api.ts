import type { IncomingHttpHeaders } from 'node:http';

// node:http as a CommonJS module: an ESM import builds its ESM facade, which reads every lazy export (fetch's undici
// among them), ≈ 30 ms of a cold start.
const { Agent, request } = process.getBuiltinModule('node:http');

/** Events an external extension registers for (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html). */
export type ExtensionEventType = 'INVOKE' | 'SHUTDOWN';

export interface InvokeEvent {
  readonly eventType: 'INVOKE';
  /** Epoch milliseconds at which the invocation times out. */
  readonly deadlineMs: number;
  readonly requestId: string;
  readonly invokedFunctionArn?: string;
  readonly tracing?: { readonly type: string; readonly value: string };
}

export interface ShutdownEvent {
  readonly eventType: 'SHUTDOWN';
  /** Epoch milliseconds by which the extension process must have exited. */
  readonly deadlineMs: number;
  /** `spindown`, `timeout` or `failure`. */
  readonly shutdownReason?: string;
  readonly requestId?: string;
}

export type ExtensionEvent = InvokeEvent | ShutdownEvent;

export interface RegisterResponse {
  readonly functionName?: string;
  readonly functionVersion?: string;
  readonly handler?: string;
  readonly accountId?: string;
}

export class ExtensionsApiError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly body: string,
  ) {
    super(message);
  }
}

interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

const API_VERSION = '2020-01-01';

/**
 * Client of the Lambda Extensions API at `http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension`.
 * One keep-alive connection is reused for the long-poll `GET /event/next`; no timeout is set on it, since the
 * execution environment is frozen while that request is pending.
 */
export class ExtensionsApiClient {
  readonly #host: string;
  readonly #port: number;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 4 });
  #identifier: string | undefined;

  constructor(runtimeApi: string) {
    const match = /^(\[[^\]]+\]|[^:/]+)(?::(\d+))?$/.exec(runtimeApi.trim());
    if (!match) throw new ExtensionsApiError(`AWS_LAMBDA_RUNTIME_API must be host:port, got ${JSON.stringify(runtimeApi)}`, undefined, '');
    this.#host = match[1].replace(/^\[|\]$/g, '');
    this.#port = match[2] ? Number(match[2]) : 80;
  }

  /** `POST /register`: must happen during the init phase; `name` is the file name of the extension in /opt/extensions. */
  async register(name: string, events: readonly ExtensionEventType[] = ['INVOKE', 'SHUTDOWN']): Promise<RegisterResponse> {
    const res = await this.#call('POST', '/register', { 'Lambda-Extension-Name': name }, { events });
    if (res.status !== 200) throw this.#failure('register', res);
    const id = res.headers['lambda-extension-identifier'];
    if (typeof id !== 'string' || !id) throw new ExtensionsApiError('register: no Lambda-Extension-Identifier in the response', res.status, res.body);
    this.#identifier = id;
    return parseJson<RegisterResponse>(res.body) ?? {};
  }

  /** `GET /event/next`: blocks until Lambda has the next event for this extension. */
  async next(): Promise<ExtensionEvent> {
    const res = await this.#call('GET', '/event/next', this.#idHeader());
    if (res.status !== 200) throw this.#failure('event/next', res);
    const event = parseJson<ExtensionEvent>(res.body);
    if (!event || (event.eventType !== 'INVOKE' && event.eventType !== 'SHUTDOWN')) {
      throw new ExtensionsApiError(`event/next: unexpected event ${res.body.slice(0, 200)}`, res.status, res.body);
    }
    return event;
  }

  /** `POST /init/error`: Lambda fails the init phase; the process should exit afterwards. */
  async initError(errorType: string, message: string, stackTrace: readonly string[] = []): Promise<void> {
    await this.#reportError('/init/error', errorType, message, stackTrace);
  }

  /** `POST /exit/error`: reported before exiting after an unrecoverable error outside init. */
  async exitError(errorType: string, message: string, stackTrace: readonly string[] = []): Promise<void> {
    await this.#reportError('/exit/error', errorType, message, stackTrace);
  }

  /** Releases the keep-alive sockets. */
  close(): void {
    this.#agent.destroy();
  }

  async #reportError(path: string, errorType: string, message: string, stackTrace: readonly string[]): Promise<void> {
    const res = await this.#call(
      'POST',
      path,
      { ...this.#idHeader(), 'Lambda-Extension-Function-Error-Type': errorType },
      { errorMessage: message, errorType, stackTrace },
    );
    if (res.status < 200 || res.status > 299) throw this.#failure(path.slice(1), res);
  }

  #idHeader(): Record<string, string> {
    if (!this.#identifier) throw new ExtensionsApiError('the extension is not registered', undefined, '');
    return { 'Lambda-Extension-Identifier': this.#identifier };
  }

  #failure(what: string, res: RawResponse): ExtensionsApiError {
    return new ExtensionsApiError(`${what}: Extensions API answered ${res.status} ${res.body.slice(0, 300)}`, res.status, res.body);
  }

  #call(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<RawResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.#host,
          port: this.#port,
          method,
          path: `/${API_VERSION}/extension${path}`,
          agent: this.#agent,
          headers: {
            ...headers,
            ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      req.on('error', (err) => reject(new ExtensionsApiError(`${method} ${path}: ${err.message}`, undefined, '')));
      req.end(payload);
    });
  }
}

function parseJson<T>(text: string): T | undefined {
  try {
    return text ? (JSON.parse(text) as T) : undefined;
  } catch {
    return undefined;
  }
}
