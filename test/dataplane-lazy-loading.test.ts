// What a sidecar loads at boot (counted by a module hook in the real CLI process): the KMS client only with a KMS key,
// the STS client only with partners, Swagger UI and @fastify/swagger's document builder only once /docs or
// /openapi.* is asked for, dynalite only for the embedded store; on the aws backend without --create-tables,
// @aws-sdk/client-dynamodb not at all, requests of every kind included (the lean data-plane client serves them).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ROOT, cliEnv, launchCli } from './helpers/cli.js';
import { startMoto } from './helpers/moto.js';
import { tools, withTool } from './helpers/tools.js';
const HOOK = path.join(ROOT, 'bench', 'lib', 'count-modules.mjs');

const HEAVY = {
  kms: /@aws-sdk\/client-kms\//,
  sts: /@aws-sdk\/client-sts\//,
  swaggerUi: /@fastify\/swagger-ui\//,
  specBuilder: /@fastify\/swagger\/lib\/spec\//,
  dynalite: /^dynalite\//,
  otel: /@opentelemetry\/(sdk-trace-base|sdk-trace|exporter-trace-otlp-http|otlp-exporter-base|resources)\//,
  dynamodb: /@aws-sdk\/client-dynamodb\//,
  yaml: /^yaml\//,
  ajv: /^ajv\//,
  credentialChain: /@aws-sdk\/credential-provider-node\//,
};

/** Span export stays off whatever the host's environment says. */
const NO_OTEL = { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '' };

/** A request made before the sidecar stops: a GET path, or a method, path and JSON body. */
type Request = string | { method: string; path: string; body?: unknown };

/** Boot the CLI with `env`, make `requests`, stop it; the module files it had loaded by then. */
async function loaded(env: Record<string, string>, requests: Request[] = []): Promise<string[]> {
  const cli = launchCli(['--host', '127.0.0.1', '--port', '0'], cliEnv({ LOG_LEVEL: 'info', NODE_OPTIONS: `--import ${HOOK}`, COUNT_MODULES_FILES: '1', ...env }));
  let url: string | undefined;
  for (let i = 0; i < 600 && !url; i++) {
    url = /"url":"([^"]+)".*dynamorm sidecar ready/.exec(cli.out())?.[1];
    if (!url) await new Promise((r) => setTimeout(r, 50));
    if (cli.child.exitCode !== null) break;
  }
  if (!url) throw new Error(`the sidecar did not start: ${cli.err()}${cli.out()}`);
  for (const request of requests) {
    const { method, path: at, body } = typeof request === 'string' ? { method: 'GET', path: request, body: undefined } : request;
    const res = await fetch(url + at, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    if (res.status !== 200 && res.status !== 201) throw new Error(`${method} ${at}: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  }
  cli.child.kill('SIGTERM');
  const exit = await cli.done;
  const line = exit.stderr.split('\n').find((l) => l.startsWith('{"modules"'));
  if (!line) throw new Error(`no module list: ${exit.stderr}`);
  return (JSON.parse(line) as { files: string[] }).files;
}

const has = (files: string[], pattern: RegExp) => files.some((f) => pattern.test(f));

t.test('embedded store, no key, no partners, nothing asked of /docs or /openapi', async (t) => {
  const files = await loaded({ BACKEND: 'embedded', DOCS: 'true', ...NO_OTEL });
  t.ok(files.length > 100, `the hook counted the modules (${files.length})`);
  t.ok(has(files, HEAVY.dynalite), 'dynalite: loaded for the embedded store');
  t.notOk(has(files, HEAVY.kms), 'no KMS client');
  t.notOk(has(files, HEAVY.sts), 'no STS client');
  t.notOk(has(files, HEAVY.swaggerUi), 'no Swagger UI');
  t.notOk(has(files, HEAVY.specBuilder), 'no OpenAPI document builder');
  t.notOk(has(files, HEAVY.otel), 'no OpenTelemetry SDK without OTEL_EXPORTER_OTLP_ENDPOINT');
});

t.test('JSON model files: no YAML parser; Ajv only once a request is validated', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lazy-json-models-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'catalog.json'), readFileSync(path.join(ROOT, 'schemas', 'catalog.json')));
  const env = { BACKEND: 'embedded', DOCS: 'false', SCHEMAS_DIR: dir, ...NO_OTEL };
  const idle = await loaded(env);
  t.notOk(has(idle, HEAVY.yaml), 'no yaml library for JSON model files');
  t.notOk(has(idle, HEAVY.ajv), 'no Ajv before the first request that has a schema');
  const served = await loaded(env, [{ method: 'POST', path: '/v1/models/Blob/query', body: { partition: 7 } }]);
  t.ok(has(served, HEAVY.ajv), 'Ajv loaded for the first validated request');
  t.notOk(has(served, HEAVY.yaml), 'still no yaml library');
});

t.test('OTEL_EXPORTER_OTLP_ENDPOINT set: the OpenTelemetry SDK and OTLP exporter load at boot', async (t) => {
  // Nothing listens there: export failures are the SDK's own (silent) business, the sidecar runs on.
  const files = await loaded({ BACKEND: 'embedded', DOCS: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }, ['/v1/models']);
  t.ok(has(files, /@opentelemetry\/sdk-trace-base\//), 'trace SDK loaded');
  t.ok(has(files, /@opentelemetry\/exporter-trace-otlp-http\//), 'OTLP/HTTP exporter loaded');
});

t.test('/docs and /openapi.yaml load what they need on the first request', async (t) => {
  const files = await loaded({ BACKEND: 'embedded', DOCS: 'true' }, ['/docs/', '/docs/json', '/openapi.yaml']);
  t.ok(has(files, HEAVY.swaggerUi), 'Swagger UI loaded');
  t.ok(has(files, HEAVY.specBuilder), 'the document builder loaded');
  t.notOk(has(files, HEAVY.kms), 'still no KMS client');
});

withTool(t, tools.moto(), 'aws backend (moto)', async (t) => {
  const moto = await startMoto();
  t.teardown(() => moto.stop());
  const aws = {
    BACKEND: 'aws',
    DYNAMODB_ENDPOINT: moto.endpoint,
    STS_ENDPOINT: moto.endpoint,
    DOCS: 'false',
    AWS_REGION: 'ap-northeast-3',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };

  await t.test('with a KMS key: the KMS client, no dynalite, no STS', async (t) => {
    const files = await loaded({
      ...aws,
      CREATE_TABLES: 'true',
      KMS_KEY_ARN: 'arn:aws:kms:ap-northeast-3:000000000000:key/00000000-0000-0000-0000-000000000000',
      KMS_ENDPOINT: moto.endpoint,
    });
    t.ok(has(files, HEAVY.kms), 'KMS client loaded for the configured key');
    t.notOk(has(files, HEAVY.dynalite), 'no dynalite');
    t.notOk(has(files, HEAVY.sts), 'no STS client without partners');
  });

  await t.test('tables made, then without --create-tables: every request kind served without the DynamoDB SDK', async (t) => {
    const pk = `LAZY#${process.pid}`;
    const user = { PK: pk, SK: 'PROFILE', email: 'lazy@example.com' };
    const key = { PK: pk, SK: 'PROFILE' };
    // The tables exist from the KMS boot above; this boot only checks them (lean DescribeTable).
    const files = await loaded({ ...aws, CREATE_TABLES: 'false' }, [
      { method: 'POST', path: '/v1/models/User/items', body: user },
      `/v1/models/User/items/${encodeURIComponent(pk)}/PROFILE`,
      { method: 'POST', path: '/v1/models/User/query', body: { partition: pk } },
      { method: 'POST', path: '/v1/models/User/batch-write', body: { puts: [{ ...user, SK: 'OTHER' }] } },
      { method: 'POST', path: '/v1/models/User/batch-get', body: { keys: [key, { PK: pk, SK: 'OTHER' }] } },
      { method: 'POST', path: '/v1/transactions/write', body: { items: [{ op: 'put', model: 'User', item: { ...user, SK: 'TX' } }] } },
      { method: 'POST', path: '/v1/transactions/get', body: { items: [{ model: 'User', key }] } },
      '/readyz',
    ]);
    t.ok(files.length > 100, `the hook counted the modules (${files.length})`);
    t.notOk(has(files, HEAVY.dynamodb), 'no @aws-sdk/client-dynamodb');
    t.notOk(has(files, HEAVY.dynalite), 'no dynalite');
    t.notOk(has(files, HEAVY.kms), 'no KMS client');
    t.notOk(has(files, HEAVY.credentialChain), 'credentials from the environment, without the SDK credential chain');
  });

  await t.test('with partners: the STS client, no KMS client', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lazy-partners-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'partners.json');
    writeFileSync(file, JSON.stringify({ partners: { acme: { roleArn: 'arn:aws:iam::000000000000:role/acme' } } }));
    const files = await loaded({ ...aws, CREATE_TABLES: 'false', PARTNERS_FILE: file });
    t.ok(has(files, HEAVY.sts), 'STS client loaded');
    t.notOk(has(files, HEAVY.kms), 'no KMS client without a key');
    t.notOk(has(files, HEAVY.dynalite), 'no dynalite');
  });
});
