// AWS Lambda external extension mode: the sidecar runs next to the function in its execution environment.
//
// Lifecycle: register with the Extensions API (INVOKE, SHUTDOWN) → start the sidecar; it listens before the first
// `GET /event/next`, which tells Lambda init is done → INVOKE: the invocation's deadlineMs becomes the deadline of
// requests that bring no X-Request-Timeout-Ms (504 ErrDeadlineExceeded before the function times out); the
// function calls the sidecar over loopback while it runs → SHUTDOWN: stop accepting connections, let in-flight requests finish, exit 0 no later than
// deadlineMs − 200 ms (logging when draining had to be cut short). An init failure (config, models, missing tables,
// unreachable backend) is posted to `/init/error` with type `Extension.<Reason>` and the process exits 1.
//
// Defaults inside Lambda (each overridable by the function's environment): BACKEND=aws, HOST=127.0.0.1, PORT=8787,
// SCHEMAS_DIR=/opt/dynamorm-sidecar/schemas, DOCS=false, MAX_EVENT_LOOP_DELAY_MS=0, CREATE_TABLES=false.
//
// Caller auth: with no AUTH_TOKEN / AUTH_TOKEN_FILE, callers send the function's own session token as a bearer token,
//   Authorization: Bearer $AWS_SESSION_TOKEN
// (the header the sidecar's bearer auth already reads; /healthz stays open).
import { ConfigError, loadConfig, type SidecarConfig } from '../config.js';
import type { Sidecar } from '../server.js';
import { ExtensionsApiClient, type ExtensionEvent } from './extensions-api.js';
import { setAmbientDeadline } from '../store/deadline.js';

/** Where the layer puts the models: `/opt/dynamorm-sidecar/schemas` (SCHEMAS_DIR overrides). */
export const LAYER_SCHEMAS_DIR = '/opt/dynamorm-sidecar/schemas';
/** Default extension name: the launcher's file name in /opt/extensions (DYNAMORM_EXTENSION_NAME overrides). */
export const DEFAULT_EXTENSION_NAME = 'dynamorm-sidecar';
/** Exit this long before the SHUTDOWN deadline whether draining has finished or not. */
export const SHUTDOWN_MARGIN_MS = 200;

export interface ExtensionOptions {
  /** SCHEMAS_DIR when the environment has none (default LAYER_SCHEMAS_DIR). */
  readonly defaultSchemasDir?: string;
}

type Level = 'info' | 'warn' | 'error' | 'debug';
const LEVEL_NUMBERS: Record<Level, number> = { debug: 20, info: 30, warn: 40, error: 50 };

/** pino-shaped lines for the moments before (and after) the sidecar's own logger exists. */
function bootLog(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level: LEVEL_NUMBERS[level], time: Date.now(), pid: process.pid, name: 'lambda-extension', ...fields, msg });
  (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(`${line}\n`);
}

/**
 * The environment the sidecar sees inside Lambda: AWS backend (DynamoDB of the function's region, credentials from
 * the function's role), loopback host, port 8787, the layer's schemas, no Swagger UI (its assets are not in the
 * layer) and no load shedding, unless the function's configuration says otherwise. Shedding is off because the
 * event-loop delay it watches includes the time the execution environment spends frozen between invocations (and
 * the boot itself), so the first requests after a thaw would be refused with 503; an execution environment serves
 * one invocation at a time anyway.
 */
export function lambdaEnv(env: NodeJS.ProcessEnv, options: ExtensionOptions = {}): NodeJS.ProcessEnv {
  return {
    ...env,
    BACKEND: env.BACKEND || 'aws',
    HOST: env.HOST || '127.0.0.1',
    PORT: env.PORT || '8787',
    SCHEMAS_DIR: env.SCHEMAS_DIR || options.defaultSchemasDir || LAYER_SCHEMAS_DIR,
    DOCS: env.DOCS || 'false',
    MAX_EVENT_LOOP_DELAY_MS: env.MAX_EVENT_LOOP_DELAY_MS || '0',
  };
}

/**
 * Caller authentication in Lambda: an explicit AUTH_TOKEN / AUTH_TOKEN_FILE wins; otherwise the function's own
 * AWS_SESSION_TOKEN is the bearer token (`Authorization: Bearer $AWS_SESSION_TOKEN`). Function code has it in its
 * environment already; other processes on the loopback interface of the sandbox do not.
 */
export function lambdaConfig(env: NodeJS.ProcessEnv, options: ExtensionOptions = {}): { config: SidecarConfig; auth: 'token' | 'session-token' | 'none' } {
  const { config } = loadConfig([], lambdaEnv(env, options));
  if (config.authToken) return { config, auth: 'token' };
  if (env.AWS_SESSION_TOKEN) return { config: { ...config, authToken: env.AWS_SESSION_TOKEN }, auth: 'session-token' };
  return { config, auth: 'none' };
}

async function initErrorType(err: unknown): Promise<string> {
  if (err instanceof ConfigError) return 'Extension.ConfigError';
  try {
    const [{ DmsLoadError }, { MissingTablesError }, { PartnerConfigError }] = await Promise.all([
      import('../dms/index.js'),
      import('../store/tables.js'),
      import('../store/partners/config.js'),
    ]);
    if (err instanceof DmsLoadError) return 'Extension.InvalidModels';
    if (err instanceof MissingTablesError) return 'Extension.MissingTables';
    if (err instanceof PartnerConfigError) return 'Extension.PartnerConfigError';
  } catch {
    // The modules themselves failed to load: a generic init error.
  }
  return 'Extension.InitError';
}

function stackLines(err: unknown): string[] {
  const stack = err instanceof Error ? err.stack : undefined;
  return stack ? stack.split('\n').slice(1).map((line) => line.trim()) : [];
}

/** Close the sidecar (stop accepting, let in-flight requests finish), giving up `SHUTDOWN_MARGIN_MS` before the deadline. */
async function drain(sidecar: Sidecar, deadlineMs: number): Promise<'drained' | 'deadline'> {
  const budget = Math.max(0, deadlineMs - SHUTDOWN_MARGIN_MS - Date.now());
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => (timer = setTimeout(() => resolve('deadline'), budget)));
  const closed = sidecar.close().then(
    () => 'drained' as const,
    (err: unknown) => {
      sidecar.app.log.error({ err }, 'error while closing the sidecar');
      return 'drained' as const;
    },
  );
  try {
    return await Promise.race([closed, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The Lambda extension: register, start the sidecar (listening before the first `GET /event/next`), then follow
 * the event loop until SHUTDOWN. Resolves to the process exit code.
 */
export async function runExtension(env: NodeJS.ProcessEnv = process.env, options: ExtensionOptions = {}): Promise<number> {
  const started = performance.now();
  const runtimeApi = env.AWS_LAMBDA_RUNTIME_API;
  if (!runtimeApi) {
    bootLog('error', 'AWS_LAMBDA_RUNTIME_API is not set: not running as a Lambda extension');
    return 1;
  }
  let api: ExtensionsApiClient;
  const name = env.DYNAMORM_EXTENSION_NAME || DEFAULT_EXTENSION_NAME;
  try {
    api = new ExtensionsApiClient(runtimeApi);
    // Registration must happen during init, before anything slow.
    const info = await api.register(name);
    bootLog('info', 'registered with the Extensions API', { extension: name, functionName: info.functionName, functionVersion: info.functionVersion });
  } catch (err) {
    bootLog('error', `registration failed: ${(err as Error).message}`, { extension: name });
    return 1;
  }

  let sidecar: Sidecar;
  try {
    const { config, auth } = lambdaConfig(env, options);
    const { startSidecar } = await import('../server.js');
    sidecar = await startSidecar(config, { level: config.logLevel });
    sidecar.app.log.info(
      { url: sidecar.url, backend: sidecar.backend.kind, endpoint: sidecar.backend.endpoint ?? null, auth, bootMs: Math.round(performance.now() - started) },
      'dynamorm sidecar ready',
    );
  } catch (err) {
    const errorType = await initErrorType(err);
    const message = err instanceof Error ? err.message : String(err);
    bootLog('error', `init failed: ${message}`, { errorType });
    try {
      await api.initError(errorType, message, errorType === 'Extension.InitError' ? stackLines(err) : []);
    } catch (reportErr) {
      bootLog('error', `could not report the init error: ${(reportErr as Error).message}`);
    }
    api.close();
    return 1;
  }

  const log = sidecar.app.log;
  for (;;) {
    let event: ExtensionEvent;
    try {
      event = await api.next();
    } catch (err) {
      log.error({ err }, 'Extensions API event loop failed');
      try {
        await api.exitError('Extension.EventLoopError', (err as Error).message);
      } catch {
        // Nothing left to tell.
      }
      await sidecar.close().catch(() => undefined);
      api.close();
      return 1;
    }
    if (event.eventType === 'INVOKE') {
      // Requests without X-Request-Timeout-Ms are bounded by the invocation's own deadline.
      setAmbientDeadline(Number.isFinite(event.deadlineMs) ? event.deadlineMs : undefined);
      log.debug({ lambdaRequestId: event.requestId, msLeft: event.deadlineMs - Date.now() }, 'invoke');
      continue;
    }
    const deadlineMs = Number.isFinite(event.deadlineMs) ? event.deadlineMs : Date.now() + 2_000;
    log.info({ shutdownReason: event.shutdownReason ?? null, msLeft: deadlineMs - Date.now() }, 'shutdown: draining in-flight requests');
    const outcome = await drain(sidecar, deadlineMs);
    if (outcome === 'deadline') {
      log.warn({ marginMs: SHUTDOWN_MARGIN_MS, msLeft: deadlineMs - Date.now() }, 'shutdown: in-flight requests not finished before the deadline; exiting anyway');
    } else {
      log.info({ msLeft: deadlineMs - Date.now() }, 'shutdown: drained');
    }
    api.close();
    return 0;
  }
}
