// The CDK app in cdk/: synthesized offline (no AWS account, no Docker, no network) and checked against the DMS
// models in schemas/, read here straight from the loader (not through the stack's own table derivation).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as cdk from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import t, { type Test } from 'tap';
import { loadModels, type DmsIndex, type DmsKey, type DmsModel } from '../src/dms/index.js';
import { SidecarStack } from '../cdk/stack.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SCHEMAS = path.join(ROOT, 'schemas');
const PARTNERS = ['arn:aws:iam::111122223333:role/partner-a', 'arn:aws:iam::444455556666:role/tenants/partner-b'];

type Json = any; // CloudFormation JSON
type Resources = Record<string, { Type: string; Properties: Json; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;

const scratch = mkdtempSync(path.join(os.tmpdir(), 'dynamorm-cdk-test-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

/** A stand-in for the extension bundle, laid out like dist-lambda/layer. */
const layerDir = path.join(scratch, 'layer');
mkdirSync(path.join(layerDir, 'extensions'), { recursive: true });
mkdirSync(path.join(layerDir, 'dynamorm-sidecar'), { recursive: true });
writeFileSync(path.join(layerDir, 'extensions', 'dynamorm-sidecar'), '#!/bin/sh\nexec node /opt/dynamorm-sidecar/extension.mjs\n');
chmodSync(path.join(layerDir, 'extensions', 'dynamorm-sidecar'), 0o755);
writeFileSync(path.join(layerDir, 'dynamorm-sidecar', 'extension.mjs'), '');

let appCount = 0;
async function synth(options: { partnerRoleArns?: string[]; sidecarImage?: ecs.ContainerImage; extensionLayer?: string | lambda.Code } = {}) {
  const app = new cdk.App({ outdir: path.join(scratch, `app-${appCount++}`) });
  const stack = await SidecarStack.fromSchemas(app, 'Sidecar', {
    schemasDir: SCHEMAS,
    partnerRoleArns: options.partnerRoleArns ?? [],
    sidecarImage: options.sidecarImage ?? ecs.ContainerImage.fromRegistry('example/sidecar:test'),
    extensionLayer: options.extensionLayer ?? layerDir,
  });
  const template = Template.fromStack(stack);
  return { stack, template, json: template.toJSON() as { Resources: Resources } };
}

const ofType = (resources: Resources, type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const only = <T>(list: T[], what: string): T => {
  if (list.length !== 1) throw new Error(`expected exactly one ${what}, found ${list.length}`);
  return list[0];
};
const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const byName = <T extends { IndexName: string }>(list: T[]) => [...list].sort((a, b) => a.IndexName.localeCompare(b.IndexName));
const sortedDefs = (defs: Json[]) => [...defs].sort((a, b) => a.AttributeName.localeCompare(b.AttributeName));

// ---------- Expected tables, straight from the DMS documents ----------

interface ExpectedTable {
  name: string;
  properties: Json;
}

function keySchema(partition: DmsKey, sort: DmsKey | undefined): Json[] {
  return [{ AttributeName: partition.attribute, KeyType: 'HASH' }, ...(sort ? [{ AttributeName: sort.attribute, KeyType: 'RANGE' }] : [])];
}

function projection(index: DmsIndex): Json {
  const type = index.projection?.type ?? 'ALL';
  return type === 'INCLUDE' ? { ProjectionType: type, NonKeyAttributes: index.projection?.fields ?? [] } : { ProjectionType: type };
}

function expectedTables(models: DmsModel[]): ExpectedTable[] {
  const byTable = new Map<string, DmsModel[]>();
  for (const m of models) byTable.set(m.table.name, [...(byTable.get(m.table.name) ?? []), m]);
  return [...byTable].map(([name, group]) => {
    const first = group[0];
    const indexes = new Map<string, DmsIndex>();
    for (const m of group) for (const i of m.indexes ?? []) if (!indexes.has(i.name)) indexes.set(i.name, i);
    const keyTypes = new Map<string, string>();
    for (const k of [first.keys.partition, first.keys.sort, ...[...indexes.values()].flatMap((i) => [i.partition, i.sort])]) {
      if (k) keyTypes.set(k.attribute, k.type);
    }
    const gsis = [...indexes.values()].filter((i) => i.type === 'GSI');
    const lsis = [...indexes.values()].filter((i) => i.type === 'LSI');
    const ttl = group.flatMap((m) => m.attributes.filter((a) => a.roles?.includes('ttl'))).map((a) => a.attribute)[0];
    return {
      name,
      properties: {
        TableName: name,
        KeySchema: keySchema(first.keys.partition, first.keys.sort),
        AttributeDefinitions: sortedDefs([...keyTypes].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType }))),
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        // AWS managed key (aws/dynamodb); CloudFormation's SSEType defaults to KMS when SSEEnabled is true.
        SSESpecification: { SSEEnabled: true },
        ...(ttl ? { TimeToLiveSpecification: { AttributeName: ttl, Enabled: true } } : {}),
        ...(gsis.length
          ? { GlobalSecondaryIndexes: byName(gsis.map((i) => ({ IndexName: i.name, KeySchema: keySchema(i.partition, i.sort), Projection: projection(i) }))) }
          : {}),
        ...(lsis.length
          ? { LocalSecondaryIndexes: byName(lsis.map((i) => ({ IndexName: i.name, KeySchema: keySchema(first.keys.partition, i.sort), Projection: projection(i) }))) }
          : {}),
      },
    };
  });
}

// ---------- IAM helpers ----------

interface Statement {
  where: string;
  Effect: string;
  Action?: string | string[];
  NotAction?: unknown;
  Resource?: Json;
  NotResource?: unknown;
  Sid?: string;
}

/** Every statement of every identity policy: AWS::IAM::Policy, AWS::IAM::ManagedPolicy and inline role policies. */
function identityStatements(resources: Resources): Statement[] {
  const out: Statement[] = [];
  const add = (where: string, doc: Json) => {
    for (const s of asList(doc?.Statement)) out.push({ where, ...(s as object) } as Statement);
  };
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') add(id, r.Properties.PolicyDocument);
    if (r.Type === 'AWS::IAM::Role') for (const p of asList(r.Properties.Policies)) add(`${id}/${(p as Json).PolicyName}`, (p as Json).PolicyDocument);
  }
  return out;
}

/** String literals inside a value, through CloudFormation intrinsics (Fn::Join parts, Fn::Sub templates, …). */
function literals(value: Json): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(literals);
  if (value && typeof value === 'object') {
    if ('Ref' in value || 'Fn::GetAtt' in value) return [];
    return Object.values(value).flatMap(literals);
  }
  return [];
}

/**
 * The one wildcard that is unavoidable: ecr:GetAuthorizationToken has no resource-level permissions, so pulling an
 * image from ECR (the default sidecar image is a Docker asset in the CDK assets repository) needs Resource "*".
 * It only exists on the ECS task *execution* role and only grants that single action.
 */
const isEcrAuthToken = (s: Statement) => s.Action === 'ecr:GetAuthorizationToken' && s.Resource === '*';

function checkNoWildcards(t: Test, resources: Resources, { allowEcrAuthToken }: { allowEcrAuthToken: boolean }) {
  const statements = identityStatements(resources);
  t.ok(statements.length > 0, 'there are identity policies to check');
  let exceptions = 0;
  for (const s of statements) {
    const label = `${s.where} ${s.Sid ?? JSON.stringify(s.Action)}`;
    t.equal(s.Effect, 'Allow', `${label}: Allow statement`);
    t.equal(s.NotAction, undefined, `${label}: no NotAction`);
    t.equal(s.NotResource, undefined, `${label}: no NotResource`);
    if (allowEcrAuthToken && isEcrAuthToken(s)) {
      exceptions++;
      continue;
    }
    for (const action of asList(s.Action)) {
      t.notOk(action === '*' || action.endsWith(':*') || action.includes('*'), `${label}: action ${action} has no wildcard`);
    }
    const resourceList = asList(s.Resource);
    t.ok(resourceList.length > 0, `${label}: names its resources`);
    for (const literal of resourceList.flatMap(literals)) t.notOk(literal.includes('*'), `${label}: resource part ${JSON.stringify(literal)} has no wildcard`);
  }
  t.equal(exceptions, allowEcrAuthToken ? 1 : 0, allowEcrAuthToken ? 'ecr:GetAuthorizationToken on * is the single exception' : 'no exception at all');
}

const getAttArn = (logicalId: string) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });
const statementsWith = (resources: Resources, prefix: string) =>
  identityStatements(resources).filter((s) => asList(s.Action).some((a) => a.startsWith(prefix)));

// ---------- Tests ----------

t.test('one DynamoDB table per DMS table, exactly as modelled', async (t) => {
  const models = (await loadModels(SCHEMAS)).map((l) => l.model);
  const expected = expectedTables(models);
  const { json } = await synth();
  const tables = ofType(json.Resources, 'AWS::DynamoDB::Table');

  t.strictSame(tables.map(([, r]) => r.Properties.TableName).sort(), expected.map((e) => e.name).sort(), 'the same table names, no others');
  // The schemas exercise every path: a GSI, an LSI, INCLUDE/KEYS_ONLY/ALL projections, TTL, a sort-less table.
  const all = expected.map((e) => e.properties);
  t.ok(all.some((p) => p.GlobalSecondaryIndexes), 'schemas/ has a GSI');
  t.ok(all.some((p) => p.LocalSecondaryIndexes), 'schemas/ has an LSI');
  t.ok(all.some((p) => p.TimeToLiveSpecification) && all.some((p) => !p.TimeToLiveSpecification), 'tables with and without TTL');
  const projections = new Set(all.flatMap((p) => [...(p.GlobalSecondaryIndexes ?? []), ...(p.LocalSecondaryIndexes ?? [])]).map((i: Json) => i.Projection.ProjectionType));
  t.strictSame([...projections].sort(), ['ALL', 'INCLUDE', 'KEYS_ONLY'], 'every projection type');

  for (const e of expected) {
    const [, resource] = only(tables.filter(([, r]) => r.Properties.TableName === e.name), `table ${e.name}`);
    const actual = { ...resource.Properties };
    actual.AttributeDefinitions = sortedDefs(actual.AttributeDefinitions);
    if (actual.GlobalSecondaryIndexes) actual.GlobalSecondaryIndexes = byName(actual.GlobalSecondaryIndexes);
    if (actual.LocalSecondaryIndexes) actual.LocalSecondaryIndexes = byName(actual.LocalSecondaryIndexes);
    t.strictSame(actual, e.properties, `${e.name}: keys, attribute definitions, indexes, TTL, billing, PITR, SSE`);
    t.equal(resource.DeletionPolicy, 'Retain', `${e.name}: DeletionPolicy Retain`);
    t.equal(resource.UpdateReplacePolicy, 'Retain', `${e.name}: UpdateReplacePolicy Retain`);
  }
});

t.test('KMS key for envelope encryption, and the sidecar points at it', async (t) => {
  const { template, json } = await synth();
  template.resourceCountIs('AWS::KMS::Key', 1);
  const [keyId, key] = only(ofType(json.Resources, 'AWS::KMS::Key'), 'KMS key');
  t.equal(key.Properties.EnableKeyRotation, true, 'rotation on');
  t.equal(key.DeletionPolicy, 'Retain', 'the key outlives the stack (stored envelopes need it)');

  const [, task] = only(ofType(json.Resources, 'AWS::ECS::TaskDefinition'), 'task definition');
  const sidecar = task.Properties.ContainerDefinitions.find((c: Json) => c.Name === 'sidecar');
  t.strictSame(sidecar.Environment.find((e: Json) => e.Name === 'KMS_KEY_ARN')?.Value, getAttArn(keyId), 'ECS sidecar KMS_KEY_ARN');
  const [, fn] = only(ofType(json.Resources, 'AWS::Lambda::Function').filter(([id]) => id.startsWith('ExampleFunction')), 'example function');
  t.strictSame(fn.Properties.Environment.Variables.KMS_KEY_ARN, getAttArn(keyId), 'Lambda KMS_KEY_ARN');

  const kms = only(statementsWith(json.Resources, 'kms:'), 'kms statement');
  t.strictSame(asList(kms.Action).sort(), ['kms:Decrypt', 'kms:GenerateDataKey'], 'only GenerateDataKey and Decrypt');
  t.strictSame(kms.Resource, getAttArn(keyId), 'on that key only');
});

t.test('least privilege: no wildcard actions or resources', async (t) => {
  for (const partnerRoleArns of [[], PARTNERS]) {
    const { json } = await synth({ partnerRoleArns });
    await t.test(`${partnerRoleArns.length} partner roles, registry image`, async (t) => checkNoWildcards(t, json.Resources, { allowEcrAuthToken: false }));
  }
  // Both sidecar roles carry no managed policy (AWSLambdaBasicExecutionRole would allow logs on every group). The
  // only managed policy in the stack is on CDK's own provider for Vpc.restrictDefaultSecurityGroup.
  const { json } = await synth();
  const managed = ofType(json.Resources, 'AWS::IAM::Role').filter(([, r]) => asList(r.Properties.ManagedPolicyArns).length > 0);
  t.strictSame(managed.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')), ['CustomVpcRestrictDefaultSGCustomResourceProviderRole'], 'managed policies only on the CDK provider role');
});

t.test('dynamodb actions on exactly the table ARNs and their index ARNs', async (t) => {
  const models = (await loadModels(SCHEMAS)).map((l) => l.model);
  const { json } = await synth({ partnerRoleArns: PARTNERS });
  const tableIds = new Map(ofType(json.Resources, 'AWS::DynamoDB::Table').map(([id, r]) => [r.Properties.TableName as string, id]));
  const statements = statementsWith(json.Resources, 'dynamodb:');
  t.equal(statements.length, 2, 'a table statement and an index statement');

  const tableStatement = only(statements.filter((s) => s.Sid === 'TableData'), 'table statement');
  t.strictSame(
    asList(tableStatement.Action).sort(),
    ['BatchGetItem', 'BatchWriteItem', 'ConditionCheckItem', 'DeleteItem', 'DescribeTable', 'GetItem', 'PutItem', 'Query', 'Scan', 'UpdateItem'].map((a) => `dynamodb:${a}`),
    'the data actions the sidecar uses, nothing else (no CreateTable, no DeleteTable)',
  );
  const sortKey = (v: Json) => JSON.stringify(v);
  t.strictSame(
    asList(tableStatement.Resource).map(sortKey).sort(),
    [...tableIds.values()].map((id) => sortKey(getAttArn(id))).sort(),
    'every table ARN',
  );

  const indexStatement = only(statements.filter((s) => s.Sid === 'IndexReads'), 'index statement');
  t.strictSame(asList(indexStatement.Action).sort(), ['dynamodb:Query', 'dynamodb:Scan'], 'indexes are only read');
  const indexArns = [...new Map(models.flatMap((m) => (m.indexes ?? []).map((i) => [`${m.table.name}/${i.name}`, i] as const))).keys()].map((key) => {
    const [table, index] = key.split('/');
    return sortKey({ 'Fn::Join': ['', [getAttArn(tableIds.get(table)!), `/index/${index}`]] });
  });
  t.strictSame(asList(indexStatement.Resource).map(sortKey).sort(), indexArns.sort(), 'exactly the DMS index ARNs');

  const [policyId, policy] = only(ofType(json.Resources, 'AWS::IAM::Policy').filter(([, r]) => r.Properties.PolicyDocument.Statement.some((s: Json) => s.Sid === 'TableData')), 'data access policy');
  const roleIds = policy.Properties.Roles.map((r: Json) => r.Ref).sort();
  t.equal(roleIds.length, 2, `${policyId} is attached to the task role and the function role`);
  t.ok(roleIds.some((r: string) => r.startsWith('SidecarTaskRole')) && roleIds.some((r: string) => r.startsWith('SidecarFunctionRole')), 'the two sidecar roles');
});

t.test('sts:AssumeRole only on the partner roles, and absent without partners', async (t) => {
  const withPartners = await synth({ partnerRoleArns: PARTNERS });
  const sts = only(statementsWith(withPartners.json.Resources, 'sts:'), 'sts statement');
  t.strictSame(asList(sts.Action), ['sts:AssumeRole'], 'AssumeRole only');
  t.strictSame(asList(sts.Resource).sort(), [...PARTNERS].sort(), 'exactly the configured role ARNs');

  const without = await synth({ partnerRoleArns: [] });
  t.strictSame(statementsWith(without.json.Resources, 'sts:'), [], 'no sts statement at all');

  await t.rejects(synth({ partnerRoleArns: ['arn:aws:iam::111122223333:role/*'] }), /partnerRoleArns/, 'a wildcard role is refused');
  await t.rejects(synth({ partnerRoleArns: ['partner-a'] }), /partnerRoleArns/, 'a non-ARN is refused');
});

t.test('ECS Fargate task: app + sidecar, the app waits for a HEALTHY sidecar', async (t) => {
  const { json } = await synth();
  const [, task] = only(ofType(json.Resources, 'AWS::ECS::TaskDefinition'), 'task definition');
  t.strictSame(task.Properties.RequiresCompatibilities, ['FARGATE']);
  t.equal(task.Properties.NetworkMode, 'awsvpc', 'containers share loopback');
  t.strictSame(task.Properties.TaskRoleArn, getAttArn(Object.keys(json.Resources).find((id) => id.startsWith('SidecarTaskRole'))!), 'task role is the sidecar role');

  const containers: Json[] = task.Properties.ContainerDefinitions;
  t.strictSame(containers.map((c) => c.Name).sort(), ['app', 'sidecar'], 'two containers');
  const sidecar = containers.find((c) => c.Name === 'sidecar');
  const app = containers.find((c) => c.Name === 'app');
  t.equal(sidecar.Image, 'example/sidecar:test', 'the image given as prop');
  t.strictSame(sidecar.PortMappings.map((p: Json) => p.ContainerPort), [8787]);
  const env = Object.fromEntries(sidecar.Environment.map((e: Json) => [e.Name, e.Value]));
  t.equal(env.BACKEND, 'aws');
  t.equal(env.HOST, '127.0.0.1');
  t.strictSame(env.AWS_REGION, { Ref: 'AWS::Region' });
  t.ok(env.KMS_KEY_ARN, 'KMS_KEY_ARN set');
  t.equal(sidecar.HealthCheck.Command[0], 'CMD');
  t.match(sidecar.HealthCheck.Command.join(' '), /http:\/\/127\.0\.0\.1:8787\/healthz/, 'health check on /healthz');
  t.strictSame(app.DependsOn, [{ ContainerName: 'sidecar', Condition: 'HEALTHY' }], 'app depends on the sidecar being healthy');
  t.match(app.Command.join(' '), /127\.0\.0\.1:8787/, 'the app calls the sidecar on loopback');

  const [, service] = only(ofType(json.Resources, 'AWS::ECS::Service'), 'service');
  t.equal(service.Properties.LaunchType, 'FARGATE');
  t.equal(service.Properties.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp, 'DISABLED', 'private subnets');
});

t.test('Lambda: Node 24 function with the extension layer', async (t) => {
  const { json } = await synth();
  const layers = ofType(json.Resources, 'AWS::Lambda::LayerVersion');
  const [extensionId, extension] = only(layers.filter(([id]) => id.startsWith('SidecarExtensionLayer')), 'extension layer');
  t.strictSame(extension.Properties.CompatibleRuntimes, ['nodejs24.x']);
  const [schemasLayerId] = only(layers.filter(([id]) => id.startsWith('SchemasLayer')), 'schemas layer');

  const [, fn] = only(ofType(json.Resources, 'AWS::Lambda::Function').filter(([id]) => id.startsWith('ExampleFunction')), 'example function');
  t.equal(fn.Properties.Runtime, 'nodejs24.x', 'Node 24 runtime');
  t.strictSame(fn.Properties.Layers, [{ Ref: extensionId }, { Ref: schemasLayerId }], 'the function has the extension layer (and the models)');
  t.strictSame(fn.Properties.Role, getAttArn(Object.keys(json.Resources).find((id) => id.startsWith('SidecarFunctionRole'))!), 'the least-privilege role');
  const env = fn.Properties.Environment.Variables;
  t.equal(env.BACKEND, 'aws');
  t.equal(env.HOST, '127.0.0.1');
  t.equal(env.SCHEMAS_DIR, '/opt/dynamorm-schemas');
  t.equal(env.AWS_REGION, undefined, 'AWS_REGION is reserved: Lambda sets it');
  t.match(fn.Properties.Code.ZipFile, /AWS_SESSION_TOKEN/, 'the example authenticates with its session token');

  const logs = only(statementsWith(json.Resources, 'logs:').filter((s) => s.where.startsWith('SidecarFunctionRole')), 'function log statement');
  t.strictSame(asList(logs.Action).sort(), ['logs:CreateLogStream', 'logs:PutLogEvents']);
  t.strictSame(logs.Resource, getAttArn(fn.Properties.LoggingConfig.LogGroup.Ref), 'its own log group only');
});

t.test('the extension layer directory must have the documented layout', async (t) => {
  const empty = path.join(scratch, 'empty-layer');
  mkdirSync(empty, { recursive: true });
  await t.rejects(synth({ extensionLayer: empty }), /extensions\/dynamorm-sidecar/, 'missing launcher is reported');
});

t.test('documented synth path: node cdk/synth.mjs writes the template (default asset image)', async (t) => {
  const outdir = path.join(scratch, 'cdk.out');
  const child = spawn(process.execPath, [path.join(ROOT, 'cdk', 'synth.mjs')], {
    cwd: ROOT,
    env: { ...process.env, CDK_OUTDIR: outdir, SIDECAR_LAYER_DIR: layerDir, SIDECAR_PARTNER_ROLE_ARNS: PARTNERS.join(','), SIDECAR_STACK_NAME: 'DynamormSidecar' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
  const [code] = await once(child, 'exit');
  t.equal(code, 0, `synth exits 0\n${output}`);

  const file = path.join(outdir, 'DynamormSidecar.template.json');
  t.ok(existsSync(file), 'DynamormSidecar.template.json written');
  const template = JSON.parse(readFileSync(file, 'utf8')) as { Resources: Resources };
  t.equal(ofType(template.Resources, 'AWS::DynamoDB::Table').length, expectedTables((await loadModels(SCHEMAS)).map((l) => l.model)).length, 'every DMS table');
  t.strictSame(asList(only(statementsWith(template.Resources, 'sts:'), 'sts statement').Resource).sort(), [...PARTNERS].sort(), 'partners from the environment');
  await t.test('wildcards with the Docker asset image', async (t) => checkNoWildcards(t, template.Resources, { allowEcrAuthToken: true }));

  // The image asset is staged (not built: that happens at deploy) with only what the Dockerfile needs.
  const assets = JSON.parse(readFileSync(path.join(outdir, 'DynamormSidecar.assets.json'), 'utf8'));
  const image = only(Object.values(assets.dockerImages ?? {}) as Json[], 'docker image asset');
  const context = path.join(outdir, image.source.directory);
  for (const needed of ['Dockerfile', 'package.json', 'package-lock.json', 'tsconfig.json', 'src/cli.ts', 'schemas/users.yml']) {
    t.ok(existsSync(path.join(context, needed)), `build context has ${needed}`);
  }
  for (const excluded of ['node_modules', 'dist', 'cdk', '.git', 'test']) t.notOk(existsSync(path.join(context, excluded)), `build context has no ${excluded}`);
  t.notOk(existsSync(path.join(ROOT, 'cdk', `.app-${child.pid}.mjs`)), 'the runner removed its bundle');
});
