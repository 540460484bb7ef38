// A loopback fake of the AWS Lambda Extensions API (2020-01-01), speaking its documented wire protocol:
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html
//
//   POST /2020-01-01/extension/register     Lambda-Extension-Name, {"events":[...]} → 200, Lambda-Extension-Identifier,
//                                           {functionName, functionVersion, handler}
//   GET  /2020-01-01/extension/event/next   Lambda-Extension-Identifier → blocks until the test releases an event
//                                           → 200, Lambda-Extension-Event-Identifier, the event JSON
//   POST /2020-01-01/extension/init/error   Lambda-Extension-Identifier, Lambda-Extension-Function-Error-Type → 202
//   POST /2020-01-01/extension/exit/error   same → 202
import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const PREFIX = '/2020-01-01/extension';

export interface RecordedCall {
  readonly at: number;
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly json: any;
}

export interface InvokeEvent {
  eventType: 'INVOKE';
  deadlineMs: number;
  requestId: string;
  invokedFunctionArn: string;
  tracing: { type: string; value: string };
}

export interface ShutdownEvent {
  eventType: 'SHUTDOWN';
  shutdownReason: string;
  deadlineMs: number;
}

export type FakeEvent = InvokeEvent | ShutdownEvent;

export interface FakeExtensionsApiOptions {
  readonly functionName?: string;
  readonly functionVersion?: string;
  readonly handler?: string;
}

export class FakeExtensionsApi {
  readonly functionName: string;
  /** Every request, in arrival order. */
  readonly calls: RecordedCall[] = [];
  readonly registrations: RecordedCall[] = [];
  readonly initErrors: RecordedCall[] = [];
  readonly exitErrors: RecordedCall[] = [];
  /** Events handed out by `/event/next`, with the time they were sent. */
  readonly delivered: { at: number; event: FakeEvent }[] = [];
  /** Number of `/event/next` requests received. */
  polls = 0;
  /** The identifier handed out at registration. */
  identifier: string | undefined;

  readonly #server: Server;
  readonly #options: FakeExtensionsApiOptions;
  readonly #queue: FakeEvent[] = [];
  readonly #changed = new EventEmitter();
  #waiting: ServerResponse | undefined;

  private constructor(options: FakeExtensionsApiOptions) {
    this.#options = options;
    this.functionName = options.functionName ?? 'dynamorm-test-function';
    this.#changed.setMaxListeners(0);
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  static async start(options: FakeExtensionsApiOptions = {}): Promise<FakeExtensionsApi> {
    const fake = new FakeExtensionsApi(options);
    fake.#server.listen(0, '127.0.0.1');
    await once(fake.#server, 'listening');
    return fake;
  }

  /** The value of AWS_LAMBDA_RUNTIME_API: `host:port`. */
  get runtimeApi(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `127.0.0.1:${port}`;
  }

  /** True while a `GET /event/next` is held open waiting for an event. */
  get pending(): boolean {
    return this.#waiting !== undefined;
  }

  /** Queues an event; a pending `/event/next` gets it at once, otherwise the next one does. */
  release(event: FakeEvent): void {
    this.#queue.push(event);
    this.#flush();
  }

  invoke(overrides: Partial<InvokeEvent> = {}): InvokeEvent {
    const event: InvokeEvent = {
      eventType: 'INVOKE',
      deadlineMs: Date.now() + 30_000,
      requestId: randomUUID(),
      invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${this.functionName}`,
      tracing: { type: 'X-Amzn-Trace-Id', value: `Root=1-${Date.now().toString(16)}-${randomUUID().replace(/-/g, '').slice(0, 24)};Sampled=0` },
      ...overrides,
    };
    this.release(event);
    return event;
  }

  shutdown(deadlineMs: number, shutdownReason = 'spindown'): ShutdownEvent {
    const event: ShutdownEvent = { eventType: 'SHUTDOWN', shutdownReason, deadlineMs };
    this.release(event);
    return event;
  }

  /** Resolves once `predicate` holds (checked after every request and event); rejects after `timeoutMs`. */
  async until(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    if (predicate()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#changed.off('change', check);
        reject(new Error(`fake Extensions API: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.#changed.off('change', check);
        resolve();
      };
      this.#changed.on('change', check);
    });
  }

  /** Waits until the `n`-th `/event/next` has arrived and is held open. */
  waitForPoll(n: number, timeoutMs?: number): Promise<void> {
    return this.until(() => this.polls >= n && this.pending, `GET /event/next #${n}`, timeoutMs);
  }

  async close(): Promise<void> {
    this.#waiting?.destroy();
    this.#waiting = undefined;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #flush(): void {
    const res = this.#waiting;
    if (!res || this.#queue.length === 0) return;
    const event = this.#queue.shift()!;
    this.#waiting = undefined;
    this.delivered.push({ at: Date.now(), event });
    this.#reply(res, 200, event, { 'Lambda-Extension-Event-Identifier': randomUUID() });
    this.#changed.emit('change');
  }

  #reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  #error(res: ServerResponse, status: number, errorType: string, errorMessage: string): void {
    this.#reply(res, status, { errorMessage, errorType });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    let json: unknown;
    try {
      json = body ? JSON.parse(body) : undefined;
    } catch {
      json = undefined;
    }
    const path = (req.url ?? '').split('?')[0];
    const call: RecordedCall = { at: Date.now(), method: req.method ?? '', path, headers: req.headers, body, json };
    this.calls.push(call);
    try {
      this.#route(call, res, req);
    } finally {
      this.#changed.emit('change');
    }
  }

  #route(call: RecordedCall, res: ServerResponse, req: IncomingMessage): void {
    const route = `${call.method} ${call.path.startsWith(PREFIX) ? call.path.slice(PREFIX.length) : call.path}`;
    if (route === 'POST /register') {
      this.registrations.push(call);
      const name = call.headers['lambda-extension-name'];
      const events = (call.json as { events?: unknown } | undefined)?.events;
      if (typeof name !== 'string' || !name) return this.#error(res, 400, 'InvalidRequest', 'missing Lambda-Extension-Name');
      if (!Array.isArray(events) || events.some((e) => e !== 'INVOKE' && e !== 'SHUTDOWN')) {
        return this.#error(res, 400, 'InvalidRequest', 'events must be a list of INVOKE and SHUTDOWN');
      }
      if (this.identifier) return this.#error(res, 403, 'Extension.AlreadyRegistered', 'already registered');
      this.identifier = randomUUID();
      return this.#reply(
        res,
        200,
        {
          functionName: this.functionName,
          functionVersion: this.#options.functionVersion ?? '$LATEST',
          handler: this.#options.handler ?? 'index.handler',
        },
        { 'Lambda-Extension-Identifier': this.identifier },
      );
    }
    if (!this.identifier || call.headers['lambda-extension-identifier'] !== this.identifier) {
      return this.#error(res, 403, 'Extension.Forbidden', 'missing or unknown Lambda-Extension-Identifier');
    }
    if (route === 'GET /event/next') {
      if (this.#waiting) return this.#error(res, 403, 'Extension.Forbidden', 'another /event/next is already pending');
      this.polls += 1;
      this.#waiting = res;
      req.socket.once('close', () => {
        if (this.#waiting === res) this.#waiting = undefined;
      });
      return this.#flush();
    }
    if (route === 'POST /init/error' || route === 'POST /exit/error') {
      if (typeof call.headers['lambda-extension-function-error-type'] !== 'string') {
        return this.#error(res, 400, 'InvalidRequest', 'missing Lambda-Extension-Function-Error-Type');
      }
      (route === 'POST /init/error' ? this.initErrors : this.exitErrors).push(call);
      return this.#reply(res, 202, { status: 'OK' });
    }
    return this.#error(res, 404, 'NotFound', `no route ${route}`);
  }
}
