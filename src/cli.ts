#!/usr/bin/env node
import './node-version.js';
import closeWithGrace from 'close-with-grace';
import { ConfigError, helpText, loadConfig } from './config.js';
import { DmsLoadError, loadModels } from './dms/index.js';
import { ModelRegistry } from './model/index.js';
import { MissingTablesError } from './store/tables.js';
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
  process.stdout.write(openApiYaml(app));
  await app.close();
}

async function main(): Promise<void> {
  const { config, flags } = loadConfig(process.argv.slice(2), process.env);
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
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an error');
    else log.info({ signal }, 'shutting down');
    await sidecar.close();
  });
}

main().catch((err: unknown) => {
  const known =
    err instanceof ConfigError || err instanceof DmsLoadError || err instanceof MissingTablesError || err instanceof PartnerConfigError;
  process.stderr.write(`dynamorm-sidecar: ${known ? (err as Error).message : (err as Error)?.stack ?? String(err)}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
