#!/usr/bin/env node
import './node-version.js';
import closeWithGrace from 'close-with-grace';
import { ConfigError, helpText, loadConfig } from './config.js';
import { DmsLoadError, loadModels } from './dms/index.js';
import { ModelRegistry } from './model/index.js';
import { MissingTablesError } from './store/tables.js';
import { BootError } from './store/backend.js';
import { PartnerConfigError } from './store/partners/config.js';
import { buildApp, startSidecar } from './server.js';
import { openApiYaml } from './http/openapi.js';

async function printOpenApi(schemasDir: string): Promise<void> {
  const registry = new ModelRegistry(await loadModels(schemasDir));
  // The document needs no backend: no request is ever served here.
  const app = await buildApp({
    registry,
    tenancy: { header: 'x-partner-id', requirePartner: false, pool: undefined, defaultAccess: undefined },
  });
  await app.ready();
  process.stdout.write(await openApiYaml(app));
  await app.close();
}

/** The log level asked for, even when the configuration itself failed to load (then from argv/env directly). */
let logLevel: string | undefined;

function askedLogLevel(): string | undefined {
  if (logLevel) return logLevel;
  const argv = process.argv.slice(2);
  const i = argv.findIndex((a) => a === '--log-level' || a.startsWith('--log-level='));
  if (i >= 0) return argv[i].includes('=') ? argv[i].split('=')[1] : argv[i + 1];
  return process.env.LOG_LEVEL;
}

async function main(): Promise<void> {
  const { config, flags } = loadConfig(process.argv.slice(2), process.env);
  logLevel = config.logLevel;
  if (flags.help) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  if (flags.printOpenapi) return printOpenApi(config.schemasDir);
  const sidecar = await startSidecar(config, { level: config.logLevel });
  const log = sidecar.app.log;
  log.info(
    { url: sidecar.url, backend: sidecar.backend.kind, endpoint: sidecar.backend.endpoint, dataDir: config.dataDir ?? null },
    'dynamorm sidecar ready',
  );
  const partners = sidecar.partners;
  // With a partners file, SIGHUP re-reads it (the outcome is logged by the reloader); without one it still shuts down.
  if (partners) process.on('SIGHUP', () => void partners.reload('SIGHUP'));
  closeWithGrace({ delay: 10_000, ...(partners ? { skip: ['SIGHUP' as const] } : {}) }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an error');
    else log.info({ signal }, 'shutting down');
    await sidecar.close();
  });
}

const EXPLAINED = [ConfigError, DmsLoadError, MissingTablesError, PartnerConfigError, BootError];

/**
 * Boot failures print one line per problem (a DMS directory may have several), without a stack trace: the stack
 * only helps a developer, who asks for it with LOG_LEVEL=debug (or trace).
 */
main().catch((err: unknown) => {
  const debug = ['debug', 'trace'].includes(askedLogLevel() ?? '');
  const e = err instanceof Error ? err : new Error(String(err));
  const explained = EXPLAINED.some((cls) => err instanceof cls);
  const line = explained ? e.message : `${e.name}: ${e.message}`;
  const hint = debug || explained ? '' : ' (LOG_LEVEL=debug prints the stack trace)';
  process.stderr.write(`dynamorm-sidecar: ${line}${hint}\n`);
  if (debug) process.stderr.write(`${e.stack ?? ''}${e.cause instanceof Error ? `\ncaused by: ${e.cause.stack}` : ''}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
