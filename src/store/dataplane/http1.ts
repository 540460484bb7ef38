import { connect as netConnect, type Socket } from 'node:net';

/** Where the connections go: host and port (TLS when `tls`), or one Unix socket whatever the host. */
export interface Http1Target {
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  /** TLS server name (SNI); '' sends none (an IP address). */
  readonly servername?: string | undefined;
  /** Trusted CAs instead of Node's defaults (tests with a private CA). */
  readonly ca?: string | Buffer | undefined;
  readonly socketPath?: string | undefined;
  /** Connections open at once; further requests wait for one. */
  readonly maxSockets: number;
  /** An idle connection is closed after this long (servers drop idle keep-alive connections on their own too). */
  readonly idleTimeoutMs?: number;
}

export interface Http1Answer {
  readonly status: number;
  /** name, value, … as received. */
  readonly rawHeaders: string[];
  readonly body: Buffer;
}

/** An error of the connection, shaped like node:http's (`code` ECONNRESET for a connection closed mid-answer). */
function connectionError(message: string, code = 'ECONNRESET'): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(message);
  err.code = code;
  return err;
}

/** A truncated or malformed answer: the connection cannot be trusted any further. */
export class Http1ProtocolError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.name = 'Http1ProtocolError';
    this.status = status;
  }
}

const CRLF2 = Buffer.from('\r\n\r\n');
const CONNECT_TIMEOUT_MS = 10_000;
const CRLF = Buffer.from('\r\n');

/** How the answer's body ends: after N bytes, with the last chunk, or when the server closes. */
type Framing = { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

interface Exchange {
  resolve(answer: Http1Answer): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One keep-alive connection: one request at a time, its answer parsed from the bytes as they come (status line,
 * headers, then a Content-Length or chunked body). Only what a DynamoDB JSON-protocol answer needs: no pipelining,
 * no upgrades, 1xx answers skipped.
 */
class Connection {
  readonly socket: Socket;
  #pending: Buffer | undefined;
  #exchange: Exchange | undefined;
  #status = 0;
  #rawHeaders: string[] | undefined;
  #framing: Framing | undefined;
  #keepAlive = true;
  #body: Buffer[] = [];
  #bodyLength = 0;
  /** Chunked bodies: bytes of the current chunk still to come, or -1 while a size line is awaited. */
  #chunkLeft = -1;
  #broken = false;
  readonly #onGone: (c: Connection) => void;

  constructor(socket: Socket, onGone: (c: Connection) => void, idleTimeoutMs: number) {
    this.socket = socket;
    this.#onGone = onGone;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 1000);
    // Idle this long: closed. (During an exchange the request's own timer is the bound.)
    socket.setTimeout(idleTimeoutMs);
    socket.on('timeout', () => {
      if (!this.#exchange) this.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.#data(chunk));
    socket.on('error', (err) => this.#fail(err));
    socket.on('end', () => this.#ended());
    socket.on('close', () => this.#fail(connectionError('socket hang up')));
  }

  get reusable(): boolean {
    return !this.#broken && this.#keepAlive && !this.socket.destroyed;
  }

  send(head: string, body: string, exchange: Exchange): void {
    this.#exchange = exchange;
    this.#status = 0;
    this.#rawHeaders = undefined;
    this.#framing = undefined;
    this.#keepAlive = true;
    this.#body = [];
    this.#bodyLength = 0;
    this.#chunkLeft = -1;
    // One write: the head and the body leave in the same packet when they fit.
    this.socket.write(head + body);
  }

  destroy(err?: Error): void {
    this.#broken = true;
    if (err) this.#fail(err);
    this.socket.destroy();
  }

  #data(chunk: Buffer): void {
    if (!this.#exchange) {
      // Bytes nobody asked for: the connection is out of step.
      this.destroy();
      return;
    }
    this.#pending = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    try {
      this.#parse();
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  #parse(): void {
    while (this.#exchange && this.#pending && this.#pending.length > 0) {
      if (!this.#rawHeaders) {
        const end = this.#pending.indexOf(CRLF2);
        if (end < 0) {
          if (this.#pending.length > 64 * 1024) throw new Http1ProtocolError('the answer\'s headers exceed 64 KiB', 0);
          return;
        }
        const head = this.#pending.toString('latin1', 0, end);
        this.#pending = this.#pending.subarray(end + 4);
        if (!this.#head(head)) continue; // a 1xx answer: the real one follows
        if (!this.#exchange || !this.#pending) return; // complete without a body, or the body is still to come
      }
      if (!this.#bodyBytes()) return;
    }
  }

  /** Parses the status line and headers; false for an interim (1xx) answer. */
  #head(head: string): boolean {
    const lines = head.split('\r\n');
    const status = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0]!);
    if (!status) throw new Http1ProtocolError('the answer does not start with an HTTP/1.x status line', 0);
    const code = Number(status[2]);
    if (code >= 100 && code < 200) return false;
    const raw: string[] = [];
    let length: number | undefined;
    let chunked = false;
    let connection: string | undefined;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Http1ProtocolError('the answer has a malformed header line', code);
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      raw.push(name, value);
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        if (!/^\d{1,15}$/.test(value) || (length !== undefined && length !== Number(value))) {
          throw new Http1ProtocolError('the answer has an invalid Content-Length', code);
        }
        length = Number(value);
      } else if (lower === 'transfer-encoding') {
        chunked = value.toLowerCase().split(',').map((s) => s.trim()).at(-1) === 'chunked';
        if (!chunked) throw new Http1ProtocolError(`the answer's Transfer-Encoding ${value} is not supported`, code);
      } else if (lower === 'connection') {
        connection = value.toLowerCase();
      }
    }
    this.#status = code;
    this.#rawHeaders = raw;
    this.#keepAlive = status[1] === '1' ? !/\bclose\b/.test(connection ?? '') : /\bkeep-alive\b/.test(connection ?? '');
    // No body at all: 204, 304 (DynamoDB sends neither, a proxy might).
    if (code === 204 || code === 304) this.#framing = { kind: 'length', length: 0 };
    else if (chunked) this.#framing = { kind: 'chunked' };
    else if (length !== undefined) this.#framing = { kind: 'length', length };
    else {
      this.#framing = { kind: 'close' };
      this.#keepAlive = false;
    }
    if (this.#framing.kind === 'length' && this.#framing.length === 0) this.#complete();
    return true;
  }

  /** Takes body bytes from #pending; true when it may go on parsing (the answer completed), false to wait. */
  #bodyBytes(): boolean {
    const framing = this.#framing!;
    const pending = this.#pending!;
    if (framing.kind === 'close') {
      this.#take(pending, pending.length);
      return false;
    }
    if (framing.kind === 'length') {
      const want = framing.length - this.#bodyLength;
      if (pending.length > want) throw new Http1ProtocolError('the server sent more bytes than its answer declared', this.#status);
      this.#take(pending, pending.length);
      if (this.#bodyLength === framing.length) this.#complete();
      return false;
    }
    // chunked
    for (;;) {
      const buf = this.#pending;
      if (!buf || buf.length === 0) return false;
      if (this.#chunkLeft < 0) {
        const eol = buf.indexOf(CRLF);
        if (eol < 0) return false;
        const size = /^([0-9a-fA-F]{1,8})(?:;.*)?$/.exec(buf.toString('latin1', 0, eol).trim());
        if (!size) throw new Http1ProtocolError('the answer has a malformed chunk size', this.#status);
        const n = parseInt(size[1]!, 16);
        if (n === 0) {
          // The last chunk: trailers (ignored) end with an empty line (right after the size line when there are none).
          const end = buf.indexOf(CRLF2, eol);
          if (end < 0) return false;
          this.#pending = buf.subarray(end + 4);
          if (this.#pending.length > 0) throw new Http1ProtocolError('the server sent bytes after its answer', this.#status);
          this.#complete();
          return false;
        }
        this.#chunkLeft = n;
        this.#pending = buf.subarray(eol + 2);
        continue;
      }
      if (this.#chunkLeft > 0) {
        const n = Math.min(this.#chunkLeft, buf.length);
        this.#take(buf, n);
        this.#chunkLeft -= n;
        if (this.#chunkLeft > 0) return false;
      }
      // The chunk's data ends with CRLF.
      const rest = this.#pending;
      if (!rest || rest.length < 2) return false;
      if (rest[0] !== 0x0d || rest[1] !== 0x0a) throw new Http1ProtocolError('the answer has a malformed chunk', this.#status);
      this.#pending = rest.subarray(2);
      this.#chunkLeft = -1;
    }
  }

  #take(buf: Buffer, n: number): void {
    if (n > 0) {
      this.#body.push(n === buf.length ? buf : buf.subarray(0, n));
      this.#bodyLength += n;
    }
    this.#pending = n === buf.length ? undefined : buf.subarray(n);
  }

  #complete(): void {
    const exchange = this.#exchange!;
    this.#exchange = undefined;
    clearTimeout(exchange.timer);
    const body = this.#body.length === 1 ? this.#body[0]! : Buffer.concat(this.#body, this.#bodyLength);
    this.#body = [];
    const answer = { status: this.#status, rawHeaders: this.#rawHeaders!, body };
    if (this.#pending && this.#pending.length > 0) this.#broken = true;
    this.#pending = undefined;
    exchange.resolve(answer);
    this.#onGone(this);
  }

  #ended(): void {
    // The server closed its side: an answer framed by the close is complete now, any other is cut short.
    if (this.#exchange && this.#framing?.kind === 'close') return this.#complete();
    this.#fail(this.#rawHeaders ? new Http1ProtocolError('the connection broke while DynamoDB was answering', this.#status) : connectionError('socket hang up'));
  }

  #fail(err: Error): void {
    this.#broken = true;
    const exchange = this.#exchange;
    if (exchange) {
      this.#exchange = undefined;
      clearTimeout(exchange.timer);
      exchange.reject(err);
    }
    this.#onGone(this);
  }
}

/**
 * HTTP/1.1 keep-alive connections to one endpoint, for the data plane's POSTs. node:http's client (ClientRequest,
 * Agent, IncomingMessage streams) allocated about a third of a sidecar GetItem's memory; this writes the request as
 * one string and collects the answer's bytes.
 */
export class Http1Pool {
  readonly #target: Http1Target;
  readonly #idle: Connection[] = [];
  readonly #busy = new Set<Connection>();
  readonly #waiting: (() => void)[] = [];
  #connecting = 0;
  #closed = false;

  constructor(target: Http1Target) {
    this.#target = target;
  }

  /** Sends `head` (request line and headers, ending with an empty line) and `body`; the answer, or why there is none. */
  request(head: string, body: string, timeoutMs: number, timeoutError: () => Error): Promise<Http1Answer> {
    if (this.#closed) return Promise.reject(connectionError('the client is closed', 'ERR_CLIENT_CLOSED'));
    return new Promise<Http1Answer>((resolve, reject) => {
      let connection: Connection | undefined;
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        if (connection) connection.destroy(); // the exchange's reject below wins: it is settled already
        reject(timeoutError());
      }, timeoutMs);
      const exchange: Exchange = {
        timer,
        resolve: (a) => {
          if (settled) return;
          settled = true;
          resolve(a);
        },
        reject: (e) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#acquire((err, c) => {
        if (settled) {
          if (c) this.#release(c);
          return;
        }
        if (err || !c) return exchange.reject(err ?? connectionError('no connection'));
        connection = c;
        c.send(head, body, exchange);
      });
    });
  }

  close(): void {
    this.#closed = true;
    for (const c of [...this.#idle, ...this.#busy]) c.destroy(connectionError('the client is closed', 'ERR_CLIENT_CLOSED'));
    this.#idle.length = 0;
    this.#busy.clear();
  }

  #acquire(done: (err: Error | undefined, c?: Connection) => void): void {
    while (this.#idle.length > 0) {
      const c = this.#idle.pop()!;
      if (!c.reusable) continue;
      c.socket.ref();
      this.#busy.add(c);
      return done(undefined, c);
    }
    if (this.#busy.size + this.#connecting >= this.#target.maxSockets) {
      this.#waiting.push(() => this.#acquire(done));
      return;
    }
    this.#connect(done);
  }

  #connect(done: (err: Error | undefined, c?: Connection) => void): void {
    const t = this.#target;
    this.#connecting += 1;
    let socket: Socket;
    if (t.tls) {
      // node:tls loads with the first https connection (a local endpoint never needs it).
      socket = process.getBuiltinModule('node:tls').connect({
        ...(t.socketPath ? { path: t.socketPath } : { host: t.hostname, port: t.port }),
        ...(t.servername ? { servername: t.servername } : {}),
        ...(t.ca ? { ca: t.ca } : {}),
        ALPNProtocols: ['http/1.1'],
      });
    } else {
      socket = t.socketPath ? netConnect({ path: t.socketPath }) : netConnect({ host: t.hostname, port: t.port });
    }
    const ready = t.tls ? 'secureConnect' : 'connect';
    const onError = (err: Error) => {
      this.#connecting -= 1;
      socket.destroy();
      done(err);
      this.#next();
    };
    socket.once('error', onError);
    // A connection attempt that hangs (a black-holed address) gives its slot back after this long.
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(connectionError(`no connection within ${CONNECT_TIMEOUT_MS} ms`, 'ETIMEDOUT')));
    socket.once(ready, () => {
      this.#connecting -= 1;
      socket.removeListener('error', onError);
      socket.removeAllListeners('timeout');
      const c = new Connection(socket, (gone) => this.#gone(gone), this.#target.idleTimeoutMs ?? 15_000);
      this.#busy.add(c);
      done(undefined, c);
    });
  }

  /** An exchange ended (or the connection broke): back to the idle list if it can carry another. */
  #gone(c: Connection): void {
    if (!this.#busy.delete(c)) {
      // Closed while idle.
      const i = this.#idle.indexOf(c);
      if (i >= 0) this.#idle.splice(i, 1);
      return;
    }
    this.#release(c);
  }

  #release(c: Connection): void {
    this.#busy.delete(c);
    if (c.reusable && !this.#closed) {
      // As node:http's Agent does: an idle connection does not keep the process alive.
      c.socket.unref();
      this.#idle.push(c);
    } else {
      c.socket.destroy();
    }
    this.#next();
  }

  #next(): void {
    const next = this.#waiting.shift();
    if (next) next();
  }
}
