import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { yaml } from './yaml.js';

export interface SidecarConfig {
  readonly port: number;
  readonly host: string;
  /** Listen on this Unix domain socket instead of TCP. */
  readonly socket: string | undefined;
  readonly schemasDir: string;
  /** `embedded` (dynalite in-process) or `aws` (DynamoDB or a compatible endpoint). */
  readonly backend: 'embedded' | 'aws';
  readonly dataDir: string | undefined;
  readonly dynamodbEndpoint: string | undefined;
  readonly region: string;
  readonly createTables: boolean;
  /** Sidecar-owned table of idempotency records (own account and every partner account). */
  readonly idempotencyTable: string;
  readonly logLevel: string;
  readonly bodyLimit: number;
  readonly batchMaxItems: number;
  readonly retryDeadlineMs: number;
  readonly partnersFile: string | undefined;
  readonly partnerHeader: string;
  readonly requirePartner: boolean;
  readonly maxPartners: number;
  readonly stsEndpoint: string | undefined;
  readonly kmsEndpoint: string | undefined;
  readonly kmsKeyArn: string | undefined;
  /** Local key-encryption key (base64 or hex, 32 bytes) — LOCAL_KEK env only, never a flag. */
  readonly localKek: string | undefined;
  readonly localKekFile: string | undefined;
  readonly dataKeyMaxAgeMs: number;
  readonly dataKeyMaxUses: number;
  /** Bearer token callers must send — AUTH_TOKEN env or --auth-token-file, never a flag value. */
  readonly authToken: string | undefined;
  /** Swagger UI at /docs (off by default when NODE_ENV=production). */
  readonly docs: boolean;
  readonly maxEventLoopDelayMs: number;
  /** A request whose headers and body have not all arrived after this long is answered 408 and its connection closed. */
  readonly requestTimeoutMs: number;
  /** Open client connections at most; connections over it are closed at once (keeps descriptors for the rest). */
  readonly maxConnections: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

interface OptionSpec {
  readonly flag: string;
  readonly env: string;
  readonly type: 'string' | 'boolean';
  readonly fallback: string;
  readonly help: string;
}

type Key = keyof Omit<SidecarConfig, 'localKek' | 'authToken'> | 'authTokenFile';

/** Every option: one flag, one env var, one default. `--help` prints this table. */
export const OPTIONS = {
  port: { flag: 'port', env: 'PORT', type: 'string', fallback: '8787', help: 'TCP port to listen on (0 = any free port)' },
  host: { flag: 'host', env: 'HOST', type: 'string', fallback: '127.0.0.1', help: 'interface to bind; anything but loopback needs a bearer token' },
  socket: { flag: 'socket', env: 'SOCKET_PATH', type: 'string', fallback: '', help: 'listen on this Unix domain socket instead of TCP' },
  schemasDir: { flag: 'schemas', env: 'SCHEMAS_DIR', type: 'string', fallback: 'schemas/', help: 'directory of DMS model files (*.yml, *.yaml, *.json)' },
  backend: { flag: 'backend', env: 'BACKEND', type: 'string', fallback: '', help: 'embedded | aws (default: aws when an endpoint is set, else embedded)' },
  dataDir: { flag: 'data-dir', env: 'DATA_DIR', type: 'string', fallback: '', help: 'embedded store: LevelDB directory that survives restarts (default: in memory)' },
  dynamodbEndpoint: { flag: 'dynamodb-endpoint', env: 'DYNAMODB_ENDPOINT', type: 'string', fallback: '', help: 'DynamoDB-compatible endpoint URL, implies --backend aws (default: embedded store; with --backend aws and no endpoint: AWS)' },
  region: { flag: 'region', env: 'AWS_REGION', type: 'string', fallback: 'us-east-1', help: 'AWS region of the sidecar\'s own clients' },
  createTables: { flag: 'create-tables', env: 'CREATE_TABLES', type: 'boolean', fallback: 'false', help: 'aws backend: create missing tables at boot, also in every partner account (embedded: always)' },
  idempotencyTable: { flag: 'idempotency-table', env: 'IDEMPOTENCY_TABLE', type: 'string', fallback: 'dynamorm_sidecar_idempotency', help: 'table the sidecar owns for transactions\' idempotency records (created with --create-tables; embedded: always)' },
  logLevel: { flag: 'log-level', env: 'LOG_LEVEL', type: 'string', fallback: 'info', help: 'pino level: fatal error warn info debug trace silent' },
  bodyLimit: { flag: 'body-limit', env: 'BODY_LIMIT', type: 'string', fallback: '1048576', help: 'largest accepted request body in bytes' },
  batchMaxItems: { flag: 'batch-max-items', env: 'BATCH_MAX_ITEMS', type: 'string', fallback: '1000', help: 'most keys in a batch-get, or puts + deletes in a batch-write' },
  retryDeadlineMs: { flag: 'retry-deadline-ms', env: 'RETRY_DEADLINE_MS', type: 'string', fallback: '5000', help: 'how long batch and transaction retries may take before giving back what is left' },
  partnersFile: { flag: 'partners', env: 'PARTNERS_FILE', type: 'string', fallback: '', help: 'YAML/JSON file of partners (tenants) and their roles' },
  partnerHeader: { flag: 'partner-header', env: 'PARTNER_HEADER', type: 'string', fallback: 'x-partner-id', help: 'request header naming the partner' },
  requirePartner: { flag: 'require-partner', env: 'REQUIRE_PARTNER', type: 'string', fallback: '', help: 'reject requests without the partner header (default: true when a partners file is set)' },
  maxPartners: { flag: 'max-partners', env: 'MAX_PARTNERS', type: 'string', fallback: '100', help: 'partners with live clients at once (least recently used released first)' },
  stsEndpoint: { flag: 'sts-endpoint', env: 'STS_ENDPOINT', type: 'string', fallback: '', help: 'STS endpoint URL for AssumeRole (default: AWS)' },
  kmsEndpoint: { flag: 'kms-endpoint', env: 'KMS_ENDPOINT', type: 'string', fallback: '', help: 'KMS endpoint URL (default: AWS)' },
  kmsKeyArn: { flag: 'kms-key-arn', env: 'KMS_KEY_ARN', type: 'string', fallback: '', help: 'KMS key for encrypted attributes when no partner is named' },
  localKekFile: { flag: 'local-kek-file', env: 'LOCAL_KEK_FILE', type: 'string', fallback: '', help: 'development key provider: file holding a 32-byte key (or set LOCAL_KEK)' },
  dataKeyMaxAgeMs: { flag: 'data-key-max-age-ms', env: 'DATA_KEY_MAX_AGE_MS', type: 'string', fallback: '300000', help: 'reuse a data key for at most this long (max 300000)' },
  dataKeyMaxUses: { flag: 'data-key-max-uses', env: 'DATA_KEY_MAX_USES', type: 'string', fallback: '10000', help: 'reuse a data key for at most this many values (max 10000)' },
  docs: { flag: 'docs', env: 'DOCS', type: 'string', fallback: '', help: 'serve Swagger UI at /docs (default: true, false when NODE_ENV=production)' },
  maxEventLoopDelayMs: { flag: 'max-event-loop-delay-ms', env: 'MAX_EVENT_LOOP_DELAY_MS', type: 'string', fallback: '1000', help: 'shed load with 503 above this event-loop delay (0 = never)' },
  requestTimeoutMs: { flag: 'request-timeout-ms', env: 'REQUEST_TIMEOUT_MS', type: 'string', fallback: '30000', help: 'answer 408 and close when headers and body take longer than this to arrive' },
  maxConnections: { flag: 'max-connections', env: 'MAX_CONNECTIONS', type: 'string', fallback: '', help: 'most open client connections; more are closed at once (default: the open-files limit minus a reserve)' },
  authTokenFile: { flag: 'auth-token-file', env: 'AUTH_TOKEN_FILE', type: 'string', fallback: '', help: 'file holding the bearer token callers must send (or set AUTH_TOKEN)' },
} as const satisfies Record<Key, OptionSpec>;

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export interface CliFlags {
  readonly help: boolean;
  readonly printOpenapi: boolean;
}

function integer(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function bool(name: string, raw: string | boolean): boolean {
  if (typeof raw === 'boolean') return raw;
  if (['true', '1', 'yes'].includes(raw.toLowerCase())) return true;
  if (['false', '0', 'no', ''].includes(raw.toLowerCase())) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

function tableName(name: string, raw: string): string {
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(raw)) throw new ConfigError(`${name} must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -), got ${JSON.stringify(raw)}`);
  return raw;
}

function url(name: string, raw: string): string | undefined {
  if (raw && !/^https?:\/\/[^\s/]+/.test(raw)) throw new ConfigError(`${name} must be an http(s) URL, got ${JSON.stringify(raw)}`);
  return raw || undefined;
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '::ffff:127.0.0.1';
}

export const MIN_AUTH_TOKEN_LENGTH = 16;

/** Soft RLIMIT_NOFILE of this process (Linux: /proc/self/limits), undefined where it cannot be read. */
export function openFilesLimit(limits = '/proc/self/limits'): number | undefined {
  try {
    const line = readFileSync(limits, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft && /^\d+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Connections that fit under the open-files limit with a reserve left for backend sockets, LevelDB, logs and
 * files (a quarter of the limit, 64 to 1024); 768 where the limit cannot be read (fits under 1024, Lambda's).
 */
export function defaultMaxConnections(softLimit: number | undefined): number {
  if (softLimit === undefined) return 768;
  const reserve = Math.min(1024, Math.max(64, Math.floor(softLimit / 4)));
  return Math.max(16, softLimit - reserve);
}

function readSecretFile(name: string, file: string): string {
  try {
    const value = readFileSync(file, 'utf8').trim();
    if (!value) throw new ConfigError(`${name}: ${file} is empty`);
    return value;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * An optional config file (YAML or JSON): a map from flag names (`port`, `data-dir`, …) to values. Secrets stay
 * out of it: use the *-file options. Unknown names are errors, like unknown flags.
 */
function readConfigFile(file: string): Record<string, string> {
  let doc: unknown;
  try {
    doc = yaml().parse(readFileSync(file, 'utf8'), { version: '1.2', schema: 'core', uniqueKeys: true });
  } catch (err) {
    throw new ConfigError(`--config / CONFIG_FILE: cannot read ${file}: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError(`${file}: expected a map of option names to values`);
  const known = new Map(Object.values(OPTIONS).map((o: OptionSpec) => [o.flag, o]));
  const out: Record<string, string> = {};
  const errors: string[] = [];
  for (const [name, value] of Object.entries(doc)) {
    if (!known.has(name)) errors.push(`unknown option ${name}`);
    else if (!['string', 'number', 'boolean'].includes(typeof value)) errors.push(`${name} must be a string, number or boolean`);
    else out[name] = String(value);
  }
  if (errors.length > 0) throw new ConfigError(`${file}: ${errors.join('; ')}`);
  return out;
}

/** Flags win over env, env over the config file, the file over defaults. Bad values throw ConfigError naming the flag and env var. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): { config: SidecarConfig; flags: CliFlags } {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    help: { type: 'boolean' },
    'print-openapi': { type: 'boolean' },
    config: { type: 'string' },
  };
  for (const spec of Object.values(OPTIONS)) options[spec.flag] = { type: spec.type };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options, allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (see --help)`);
  }
  const configFile = (values.config as string | undefined) ?? env.CONFIG_FILE;
  const fromFile = configFile ? readConfigFile(configFile) : {};
  const raw = (key: Key): string | boolean => {
    const spec: OptionSpec = OPTIONS[key];
    return values[spec.flag] ?? env[spec.env] ?? fromFile[spec.flag] ?? spec.fallback;
  };
  const label = (key: Key) => `--${OPTIONS[key].flag} / ${OPTIONS[key].env}`;
  const text = (key: Key) => String(raw(key));
  const endpoint = url(label('dynamodbEndpoint'), text('dynamodbEndpoint'));
  const backendRaw = text('backend') || (endpoint ? 'aws' : 'embedded');
  if (backendRaw !== 'embedded' && backendRaw !== 'aws') throw new ConfigError(`${label('backend')} must be embedded or aws`);
  if (backendRaw === 'embedded' && endpoint) throw new ConfigError(`${label('dynamodbEndpoint')} needs --backend aws`);
  const logLevel = text('logLevel');
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError(`${label('logLevel')} must be one of ${[...LOG_LEVELS].join(', ')}`);
  if (!text('host')) throw new ConfigError(`${label('host')} must not be empty`);
  if (!text('schemasDir')) throw new ConfigError(`${label('schemasDir')} must not be empty`);
  if (!/^[A-Za-z0-9-]{1,64}$/.test(text('partnerHeader'))) throw new ConfigError(`${label('partnerHeader')} must be a header name`);
  const dataDir = text('dataDir') || undefined;
  if (dataDir && backendRaw !== 'embedded') {
    throw new ConfigError(`${label('dataDir')} applies to the embedded store only; drop it, or drop ${label('dynamodbEndpoint')} / --backend aws`);
  }
  const partnersFile = text('partnersFile') || undefined;
  if (partnersFile && backendRaw === 'embedded') {
    throw new ConfigError(`${label('partnersFile')} needs --backend aws: partners are AWS accounts reached through STS`);
  }
  const authTokenFile = text('authTokenFile');
  const authToken = authTokenFile ? readSecretFile(label('authTokenFile'), authTokenFile) : env.AUTH_TOKEN || undefined;
  if (authToken !== undefined && authToken.length < MIN_AUTH_TOKEN_LENGTH) {
    throw new ConfigError(
      `${label('authTokenFile')} (or AUTH_TOKEN): the bearer token must be at least ${MIN_AUTH_TOKEN_LENGTH} characters, got ${authToken.length}`,
    );
  }
  const socket = text('socket') || undefined;
  const host = text('host');
  if (!socket && !isLoopback(host) && !authToken) {
    throw new ConfigError(`${label('host')} is not a loopback address: set AUTH_TOKEN or --auth-token-file so callers must authenticate`);
  }
  const config: SidecarConfig = {
    port: integer(label('port'), text('port'), 0, 65535),
    host,
    socket,
    schemasDir: text('schemasDir'),
    backend: backendRaw,
    dataDir,
    dynamodbEndpoint: endpoint,
    region: text('region'),
    createTables: bool(label('createTables'), raw('createTables')),
    idempotencyTable: tableName(label('idempotencyTable'), text('idempotencyTable')),
    logLevel,
    bodyLimit: integer(label('bodyLimit'), text('bodyLimit'), 1024, 64 * 1024 * 1024),
    batchMaxItems: integer(label('batchMaxItems'), text('batchMaxItems'), 1, 100_000),
    retryDeadlineMs: integer(label('retryDeadlineMs'), text('retryDeadlineMs'), 0, 120_000),
    partnersFile,
    partnerHeader: text('partnerHeader').toLowerCase(),
    requirePartner: text('requirePartner') === '' ? partnersFile !== undefined : bool(label('requirePartner'), text('requirePartner')),
    maxPartners: integer(label('maxPartners'), text('maxPartners'), 1, 100_000),
    stsEndpoint: url(label('stsEndpoint'), text('stsEndpoint')),
    kmsEndpoint: url(label('kmsEndpoint'), text('kmsEndpoint')),
    kmsKeyArn: text('kmsKeyArn') || undefined,
    localKek: env.LOCAL_KEK || undefined,
    localKekFile: text('localKekFile') || undefined,
    dataKeyMaxAgeMs: integer(label('dataKeyMaxAgeMs'), text('dataKeyMaxAgeMs'), 1, 300_000),
    dataKeyMaxUses: integer(label('dataKeyMaxUses'), text('dataKeyMaxUses'), 1, 10_000),
    authToken,
    docs: text('docs') === '' ? env.NODE_ENV !== 'production' : bool(label('docs'), text('docs')),
    maxEventLoopDelayMs: integer(label('maxEventLoopDelayMs'), text('maxEventLoopDelayMs'), 0, 60_000),
    requestTimeoutMs: integer(label('requestTimeoutMs'), text('requestTimeoutMs'), 100, 600_000),
    maxConnections: text('maxConnections') === '' ? defaultMaxConnections(openFilesLimit()) : integer(label('maxConnections'), text('maxConnections'), 1, 1_000_000),
  };
  return { config, flags: { help: values.help === true, printOpenapi: values['print-openapi'] === true } };
}

export function helpText(): string {
  const rows = Object.values(OPTIONS).map((o: OptionSpec) => {
    const flag = o.type === 'boolean' ? `--${o.flag}` : `--${o.flag} <value>`;
    return `  ${flag.padEnd(30)} ${o.env.padEnd(20)} ${o.help}${o.fallback ? ` (default: ${o.fallback})` : ''}`;
  });
  return [
    'Usage: dynamorm-sidecar [options]',
    '',
    `  ${'flag'.padEnd(30)} ${'env'.padEnd(20)} meaning`,
    ...rows,
    `  ${''.padEnd(30)} ${'LOCAL_KEK'.padEnd(20)} development key provider: 32-byte key, base64 or hex (env only)`,
    `  ${''.padEnd(30)} ${'AUTH_TOKEN'.padEnd(20)} bearer token callers must send (env only)`,
    `  ${'--config <file>'.padEnd(30)} ${'CONFIG_FILE'.padEnd(20)} YAML/JSON file of options by flag name (flags > env > file > defaults)`,
    `  ${'--print-openapi'.padEnd(30)} ${''.padEnd(20)} print the OpenAPI document (YAML) for the schemas and exit`,
    `  ${'--help'.padEnd(30)} ${''.padEnd(20)} show this help`,
  ].join('\n');
}
