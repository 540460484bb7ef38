import { parseArgs } from 'node:util';

export interface SidecarConfig {
  readonly port: number;
  readonly host: string;
  readonly schemasDir: string;
  readonly dataDir: string | undefined;
  readonly dynamodbEndpoint: string | undefined;
  readonly region: string;
  readonly createTables: boolean;
  readonly logLevel: string;
  readonly bodyLimit: number;
  readonly batchMaxItems: number;
  readonly retryDeadlineMs: number;
}

export class ConfigError extends Error {}

interface OptionSpec {
  readonly flag: string;
  readonly env: string;
  readonly type: 'string' | 'boolean';
  readonly fallback: string;
  readonly help: string;
}

/** Every option: one flag, one env var, one default. `--help` prints this table. */
export const OPTIONS = {
  port: { flag: 'port', env: 'PORT', type: 'string', fallback: '8787', help: 'TCP port to listen on (0 = any free port)' },
  host: { flag: 'host', env: 'HOST', type: 'string', fallback: '127.0.0.1', help: 'interface to bind' },
  schemasDir: { flag: 'schemas', env: 'SCHEMAS_DIR', type: 'string', fallback: 'schemas/', help: 'directory of DMS model files (*.yml, *.yaml, *.json)' },
  dataDir: { flag: 'data-dir', env: 'DATA_DIR', type: 'string', fallback: '', help: 'embedded store: LevelDB directory that survives restarts (default: in memory)' },
  dynamodbEndpoint: { flag: 'dynamodb-endpoint', env: 'DYNAMODB_ENDPOINT', type: 'string', fallback: '', help: 'external DynamoDB-compatible endpoint (default: embedded store)' },
  region: { flag: 'region', env: 'AWS_REGION', type: 'string', fallback: 'us-east-1', help: 'AWS region for the DynamoDB client' },
  createTables: { flag: 'create-tables', env: 'CREATE_TABLES', type: 'boolean', fallback: 'false', help: 'external endpoint: create missing tables at boot (embedded: always)' },
  logLevel: { flag: 'log-level', env: 'LOG_LEVEL', type: 'string', fallback: 'info', help: 'pino level: fatal error warn info debug trace silent' },
  bodyLimit: { flag: 'body-limit', env: 'BODY_LIMIT', type: 'string', fallback: '1048576', help: 'largest accepted request body in bytes' },
  batchMaxItems: { flag: 'batch-max-items', env: 'BATCH_MAX_ITEMS', type: 'string', fallback: '1000', help: 'most keys in a batch-get, or puts + deletes in a batch-write' },
  retryDeadlineMs: { flag: 'retry-deadline-ms', env: 'RETRY_DEADLINE_MS', type: 'string', fallback: '5000', help: 'how long batch and transaction retries may take before giving back what is left' },
} as const satisfies Record<keyof SidecarConfig, OptionSpec>;

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

/** Flags win over env, env over defaults. Bad values throw ConfigError naming the flag and env var. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): { config: SidecarConfig; flags: CliFlags } {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' }, 'print-openapi': { type: 'boolean' } };
  for (const spec of Object.values(OPTIONS)) options[spec.flag] = { type: spec.type };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options, allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message} (see --help)`);
  }
  const raw = (key: keyof typeof OPTIONS): string | boolean => {
    const spec: OptionSpec = OPTIONS[key];
    return values[spec.flag] ?? env[spec.env] ?? spec.fallback;
  };
  const label = (key: keyof typeof OPTIONS) => `--${OPTIONS[key].flag} / ${OPTIONS[key].env}`;
  const text = (key: keyof typeof OPTIONS) => String(raw(key));
  const endpoint = text('dynamodbEndpoint');
  if (endpoint && !/^https?:\/\/[^\s/]+/.test(endpoint)) {
    throw new ConfigError(`${label('dynamodbEndpoint')} must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
  }
  const logLevel = text('logLevel');
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError(`${label('logLevel')} must be one of ${[...LOG_LEVELS].join(', ')}`);
  if (!text('host')) throw new ConfigError(`${label('host')} must not be empty`);
  if (!text('schemasDir')) throw new ConfigError(`${label('schemasDir')} must not be empty`);
  const dataDir = text('dataDir') || undefined;
  if (dataDir && endpoint) throw new ConfigError(`${label('dataDir')} applies to the embedded store only; drop it or ${label('dynamodbEndpoint')}`);
  const config: SidecarConfig = {
    port: integer(label('port'), text('port'), 0, 65535),
    host: text('host'),
    schemasDir: text('schemasDir'),
    dataDir,
    dynamodbEndpoint: endpoint || undefined,
    region: text('region'),
    createTables: bool(label('createTables'), raw('createTables')),
    logLevel,
    bodyLimit: integer(label('bodyLimit'), text('bodyLimit'), 1024, 64 * 1024 * 1024),
    batchMaxItems: integer(label('batchMaxItems'), text('batchMaxItems'), 1, 100_000),
    retryDeadlineMs: integer(label('retryDeadlineMs'), text('retryDeadlineMs'), 0, 120_000),
  };
  return { config, flags: { help: values.help === true, printOpenapi: values['print-openapi'] === true } };
}

export function helpText(): string {
  const rows = Object.values(OPTIONS).map((o: OptionSpec) => {
    const flag = o.type === 'boolean' ? `--${o.flag}` : `--${o.flag} <value>`;
    return `  ${flag.padEnd(28)} ${o.env.padEnd(18)} ${o.help}${o.fallback ? ` (default: ${o.fallback})` : ''}`;
  });
  return [
    'Usage: dynamorm-sidecar [options]',
    '',
    `  ${'flag'.padEnd(28)} ${'env'.padEnd(18)} meaning`,
    ...rows,
    `  ${'--print-openapi'.padEnd(28)} ${''.padEnd(18)} print the OpenAPI document (YAML) for the schemas and exit`,
    `  ${'--help'.padEnd(28)} ${''.padEnd(18)} show this help`,
  ].join('\n');
}
