import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as cdk from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { loadModels } from '../src/dms/index.js';
import type { DmsKey, ProjectionType } from '../src/dms/index.js';
import { ModelRegistry } from '../src/model/index.js';
import type { TableDef } from '../src/model/index.js';

/** Repository root (this file lives in `cdk/`; the esbuild runner writes its bundle into `cdk/` too). */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Port the sidecar listens on, in the task (shared loopback of the awsvpc ENI) and in the Lambda sandbox. */
export const SIDECAR_PORT = 8787;

/**
 * Where the schemas layer puts the DMS files in the Lambda sandbox (layers are extracted under /opt). SCHEMAS_DIR
 * points there, so the function's sidecar loads exactly the models the tables were made from (the extension bundle
 * also carries a copy of the repository's schemas/, used only when SCHEMAS_DIR is unset).
 */
export const LAMBDA_SCHEMAS_DIR = '/opt/dynamorm-schemas';

/** Lambda layer layout of the sidecar extension bundle (built outside this app). */
export const EXTENSION_LAUNCHER = path.join('extensions', 'dynamorm-sidecar');
export const EXTENSION_BUNDLE = 'dynamorm-sidecar';

/** The DynamoDB data actions the sidecar issues (transactions are authorised per contained action). */
export const TABLE_ACTIONS = [
  'dynamodb:BatchGetItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:ConditionCheckItem',
  'dynamodb:DeleteItem',
  'dynamodb:DescribeTable',
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:Query',
  'dynamodb:Scan',
  'dynamodb:UpdateItem',
] as const;

/** Reads on an index are the only operations DynamoDB authorises against an index ARN. */
export const INDEX_ACTIONS = ['dynamodb:Query', 'dynamodb:Scan'] as const;

/** Envelope encryption: a fresh data key per batch of values, and unwrapping stored data keys. */
export const KMS_ACTIONS = ['kms:Decrypt', 'kms:GenerateDataKey'] as const;

const MODEL_EXTENSIONS = new Set(['.yml', '.yaml', '.json']);
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

export interface SidecarStackProps extends cdk.StackProps {
  /** Directory of DMS model files: one DynamoDB table per DMS table, and the Lambda example's schemas layer. */
  readonly schemasDir: string;
  /** Partner (tenant) roles the sidecar may assume. Empty or absent: no sts statement at all. */
  readonly partnerRoleArns?: readonly string[];
  /**
   * Image of the sidecar container. Default: built from the repository `Dockerfile` at deploy time (a
   * DockerImageAsset; synth only stages the build context). The image must carry the same models as `schemasDir`
   * (the repository image bakes `schemas/` into `/app/schemas`).
   */
  readonly sidecarImage?: ecs.ContainerImage;
  /** Image of the example application container. Default: busybox polling the sidecar. */
  readonly appImage?: ecs.ContainerImage;
  /**
   * The sidecar Lambda extension layer: a directory laid out as `extensions/dynamorm-sidecar` (launcher) plus
   * `dynamorm-sidecar/` (bundle), or any `lambda.Code` holding that layout. Default: `<repo>/dist-lambda/layer`, what
   * `scripts/bundle.mjs` (`npm run bundle`) writes.
   */
  readonly extensionLayer?: string | lambda.Code;
}

/** Reads and validates every DMS model in `schemasDir` (the sidecar's own loader) and returns the physical tables. */
export async function loadTables(schemasDir: string): Promise<TableDef[]> {
  return new ModelRegistry(await loadModels(schemasDir)).tables();
}

const attributeType = (type: DmsKey['type']): dynamodb.AttributeType =>
  ({ S: dynamodb.AttributeType.STRING, N: dynamodb.AttributeType.NUMBER, B: dynamodb.AttributeType.BINARY })[type];

const attribute = (key: DmsKey): dynamodb.Attribute => ({ name: key.attribute, type: attributeType(key.type) });

const projectionType = (type: ProjectionType | undefined): dynamodb.ProjectionType =>
  ({ ALL: dynamodb.ProjectionType.ALL, KEYS_ONLY: dynamodb.ProjectionType.KEYS_ONLY, INCLUDE: dynamodb.ProjectionType.INCLUDE })[
    type ?? 'ALL'
  ];

function checkPartnerRoleArns(arns: readonly string[]): void {
  for (const arn of arns) {
    if (cdk.Token.isUnresolved(arn)) continue;
    if (!ROLE_ARN.test(arn) || arn.includes('*')) {
      throw new Error(`partnerRoleArns: ${JSON.stringify(arn)} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)`);
    }
  }
}

function extensionLayerCode(layer: string | lambda.Code | undefined): lambda.Code {
  if (layer instanceof lambda.Code) return layer;
  const dir = path.resolve(layer ?? path.join(REPO_ROOT, 'dist-lambda', 'layer'));
  if (!existsSync(path.join(dir, EXTENSION_LAUNCHER)) || !existsSync(path.join(dir, EXTENSION_BUNDLE))) {
    throw new Error(
      `extension layer directory ${dir} must hold ${EXTENSION_LAUNCHER} and ${EXTENSION_BUNDLE}/ ` +
        '(build it with node scripts/bundle.mjs, or point extensionLayer / SIDECAR_LAYER_DIR at it)',
    );
  }
  return lambda.Code.fromAsset(dir);
}

/** The model files exactly as the sidecar's loader picks them (directly inside the directory). */
function modelFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => MODEL_EXTENSIONS.has(path.extname(name)) && statSync(path.join(dir, name)).isFile())
    .sort();
}

/**
 * The DMS files as a layer: `<layer>/dynamorm-schemas/*` → `/opt/dynamorm-schemas/*`. Local bundling (a file copy)
 * always succeeds, so Docker is never needed; the image below is only the required fallback.
 */
const SCHEMAS_SUBDIR = path.posix.basename(LAMBDA_SCHEMAS_DIR);

function schemasLayerCode(schemasDir: string): lambda.Code {
  return lambda.Code.fromAsset(schemasDir, {
    bundling: {
      image: cdk.DockerImage.fromRegistry('public.ecr.aws/docker/library/busybox:stable'),
      command: ['sh', '-c', `mkdir -p /asset-output/${SCHEMAS_SUBDIR} && cp /asset-input/* /asset-output/${SCHEMAS_SUBDIR}/`],
      local: {
        tryBundle(outputDir: string): boolean {
          const target = path.join(outputDir, SCHEMAS_SUBDIR);
          mkdirSync(target, { recursive: true });
          for (const name of modelFiles(schemasDir)) copyFileSync(path.join(schemasDir, name), path.join(target, name));
          return true;
        },
      },
    },
  });
}

/**
 * Example function: calls the sidecar that the extension runs next to it in the same sandbox. In Lambda the sidecar
 * accepts the function's own session token as bearer token (other local processes do not have it).
 */
const EXAMPLE_HANDLER = `
exports.handler = async () => {
  const res = await fetch(process.env.SIDECAR_URL + '/v1/models', {
    headers: { authorization: 'Bearer ' + process.env.AWS_SESSION_TOKEN },
  });
  return { statusCode: res.status, body: await res.text() };
};
`;

/** Example application: waits for the sidecar (container dependency), then lists the models once a minute. */
const EXAMPLE_APP_COMMAND = `while true; do wget -qO- http://127.0.0.1:${SIDECAR_PORT}/v1/models; echo; sleep 60; done`;

const HEALTH_CHECK_SCRIPT =
  `fetch('http://127.0.0.1:${SIDECAR_PORT}/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`;

/**
 * DynamoDB tables for the DMS models, the envelope-encryption KMS key, least-privilege IAM, and two ways to run the
 * sidecar: next to an app container in an ECS Fargate task, and as a Lambda extension layer under a Node 24 function.
 *
 * Loading models is asynchronous (the sidecar's own loader): use `await SidecarStack.fromSchemas(...)`, or pass
 * `loadTables(schemasDir)`'s result to the constructor.
 */
export class SidecarStack extends cdk.Stack {
  readonly tables: ReadonlyMap<string, dynamodb.Table>;
  readonly envelopeKey: kms.Key;
  readonly taskRole: iam.Role;
  readonly functionRole: iam.Role;
  readonly dataAccessPolicy: iam.Policy;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly service: ecs.FargateService;
  readonly extensionLayer: lambda.LayerVersion;
  readonly schemasLayer: lambda.LayerVersion;
  readonly exampleFunction: lambda.Function;

  static async fromSchemas(scope: Construct, id: string, props: SidecarStackProps): Promise<SidecarStack> {
    return new SidecarStack(scope, id, props, await loadTables(props.schemasDir));
  }

  constructor(scope: Construct, id: string, props: SidecarStackProps, tableDefs: readonly TableDef[]) {
    super(scope, id, props);
    const partnerRoleArns = [...(props.partnerRoleArns ?? [])];
    checkPartnerRoleArns(partnerRoleArns);
    if (tableDefs.length === 0) throw new Error(`${props.schemasDir}: no DMS tables`);

    // ---- Tables: one per DMS table, exactly its keys, indexes and TTL. ----
    const tables = new Map<string, dynamodb.Table>();
    for (const def of tableDefs) {
      const table = new dynamodb.Table(this, `Table-${def.name}`, {
        tableName: def.name,
        partitionKey: attribute(def.partition),
        ...(def.sort ? { sortKey: attribute(def.sort) } : {}),
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        // AWS owned → AWS managed key (aws/dynamodb): encryption at rest with no key policy to keep in sync and no
        // extra kms grants for callers. Attributes marked `encryption` in DMS are additionally envelope-encrypted
        // by the sidecar with the customer managed key below.
        encryption: dynamodb.TableEncryption.AWS_MANAGED,
        ...(def.ttlAttribute ? { timeToLiveAttribute: def.ttlAttribute } : {}),
        removalPolicy: cdk.RemovalPolicy.RETAIN,
      });
      for (const index of def.indexes) {
        const projection = {
          projectionType: projectionType(index.projection?.type),
          ...(index.projection?.type === 'INCLUDE' ? { nonKeyAttributes: [...(index.projection.fields ?? [])] } : {}),
        };
        if (index.type === 'GSI') {
          table.addGlobalSecondaryIndex({
            indexName: index.name,
            partitionKey: attribute(index.partition),
            ...(index.sort ? { sortKey: attribute(index.sort) } : {}),
            ...projection,
          });
        } else {
          if (!index.sort) throw new Error(`${def.name}: LSI ${index.name} has no sort key`);
          table.addLocalSecondaryIndex({ indexName: index.name, sortKey: attribute(index.sort), ...projection });
        }
      }
      tables.set(def.name, table);
    }
    this.tables = tables;

    // ---- Envelope encryption key (customer managed, yearly automatic rotation). ----
    this.envelopeKey = new kms.Key(this, 'EnvelopeKey', {
      description: 'dynamorm sidecar: envelope encryption of DMS attributes marked `encryption`',
      enableKeyRotation: true,
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });

    // ---- Least privilege, shared by the ECS task role and the Lambda role. ----
    const statements = [
      new iam.PolicyStatement({
        sid: 'TableData',
        actions: [...TABLE_ACTIONS],
        resources: [...tables.values()].map((t) => t.tableArn),
      }),
    ];
    const indexArns = tableDefs.flatMap((def) => def.indexes.map((i) => `${tables.get(def.name)!.tableArn}/index/${i.name}`));
    if (indexArns.length > 0) {
      statements.push(new iam.PolicyStatement({ sid: 'IndexReads', actions: [...INDEX_ACTIONS], resources: indexArns }));
    }
    statements.push(
      new iam.PolicyStatement({ sid: 'EnvelopeKey', actions: [...KMS_ACTIONS], resources: [this.envelopeKey.keyArn] }),
    );
    if (partnerRoleArns.length > 0) {
      statements.push(new iam.PolicyStatement({ sid: 'PartnerRoles', actions: ['sts:AssumeRole'], resources: partnerRoleArns }));
    }

    this.taskRole = new iam.Role(this, 'SidecarTaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'dynamorm sidecar in ECS: DMS tables, envelope key, partner roles',
    });
    this.functionRole = new iam.Role(this, 'SidecarFunctionRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'dynamorm sidecar Lambda example: DMS tables, envelope key, partner roles, its own log group',
    });
    this.dataAccessPolicy = new iam.Policy(this, 'SidecarDataAccess', {
      statements,
      roles: [this.taskRole, this.functionRole],
    });

    const sidecarEnvironment = {
      BACKEND: 'aws',
      KMS_KEY_ARN: this.envelopeKey.keyArn,
      HOST: '127.0.0.1',
      PORT: String(SIDECAR_PORT),
    };

    // ---- ECS Fargate example: app container + sidecar container in one task. ----
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 1,
      restrictDefaultSecurityGroup: true,
      gatewayEndpoints: { DynamoDb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB } },
    });
    const cluster = new ecs.Cluster(this, 'Cluster', { vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: 512,
      memoryLimitMiB: 1024,
      taskRole: this.taskRole,
    });
    const taskLogs = new logs.LogGroup(this, 'TaskLogs', { retention: logs.RetentionDays.ONE_MONTH });
    if (!props.sidecarImage && path.resolve(props.schemasDir) !== path.join(REPO_ROOT, 'schemas')) {
      cdk.Annotations.of(this).addWarningV2(
        'dynamorm:schemas-image',
        `the default sidecar image bakes in ${path.join(REPO_ROOT, 'schemas')}, but the tables come from ` +
          `${props.schemasDir}: pass a sidecarImage that carries the same models`,
      );
    }
    const sidecar = this.taskDefinition.addContainer('sidecar', {
      image:
        props.sidecarImage ??
        ecs.ContainerImage.fromAsset(REPO_ROOT, {
          file: 'Dockerfile',
          // Only what the Dockerfile copies: keeps node_modules, dist, cdk.out, .git … out of the build context.
          exclude: ['*', '!Dockerfile', '!package.json', '!package-lock.json', '!tsconfig.json', '!src', '!schemas'],
          ignoreMode: cdk.IgnoreMode.DOCKER,
        }),
      essential: true,
      portMappings: [{ containerPort: SIDECAR_PORT }],
      environment: { ...sidecarEnvironment, AWS_REGION: cdk.Aws.REGION },
      healthCheck: {
        command: ['CMD', 'node', '-e', HEALTH_CHECK_SCRIPT],
        interval: cdk.Duration.seconds(10),
        timeout: cdk.Duration.seconds(3),
        retries: 3,
        startPeriod: cdk.Duration.seconds(10),
      },
      logging: ecs.LogDrivers.awsLogs({ logGroup: taskLogs, streamPrefix: 'sidecar' }),
    });
    const app = this.taskDefinition.addContainer('app', {
      image: props.appImage ?? ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/busybox:stable'),
      essential: true,
      command: ['sh', '-c', EXAMPLE_APP_COMMAND],
      environment: { SIDECAR_URL: `http://127.0.0.1:${SIDECAR_PORT}` },
      logging: ecs.LogDrivers.awsLogs({ logGroup: taskLogs, streamPrefix: 'app' }),
    });
    app.addContainerDependencies({ container: sidecar, condition: ecs.ContainerDependencyCondition.HEALTHY });
    this.service = new ecs.FargateService(this, 'Service', {
      cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: 1,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    });

    // ---- Lambda example: the sidecar as an extension layer under a Node 24 function. ----
    this.extensionLayer = new lambda.LayerVersion(this, 'SidecarExtensionLayer', {
      code: extensionLayerCode(props.extensionLayer),
      compatibleRuntimes: [lambda.Runtime.NODEJS_24_X],
      description: 'dynamorm sidecar Lambda extension (extensions/dynamorm-sidecar + dynamorm-sidecar/)',
    });
    this.schemasLayer = new lambda.LayerVersion(this, 'SchemasLayer', {
      code: schemasLayerCode(props.schemasDir),
      compatibleRuntimes: [lambda.Runtime.NODEJS_24_X],
      description: `DMS models for the dynamorm sidecar (${LAMBDA_SCHEMAS_DIR})`,
    });
    const functionLogs = new logs.LogGroup(this, 'FunctionLogs', { retention: logs.RetentionDays.ONE_MONTH });
    this.exampleFunction = new lambda.Function(this, 'ExampleFunction', {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline(EXAMPLE_HANDLER),
      role: this.functionRole,
      layers: [this.extensionLayer, this.schemasLayer],
      memorySize: 1024,
      timeout: cdk.Duration.seconds(15),
      logGroup: functionLogs,
      // AWS_REGION is set by Lambda itself (a reserved variable).
      environment: {
        ...sidecarEnvironment,
        SCHEMAS_DIR: LAMBDA_SCHEMAS_DIR,
        SIDECAR_URL: `http://127.0.0.1:${SIDECAR_PORT}`,
      },
    });
    // Only its own log group: no AWSLambdaBasicExecutionRole (that one allows logs:* on every group).
    functionLogs.grantWrite(this.functionRole);

    new cdk.CfnOutput(this, 'EnvelopeKeyArn', { value: this.envelopeKey.keyArn });
    new cdk.CfnOutput(this, 'TableNames', { value: [...tables.keys()].join(',') });
    new cdk.CfnOutput(this, 'ServiceName', { value: this.service.serviceName });
    new cdk.CfnOutput(this, 'ExampleFunctionName', { value: this.exampleFunction.functionName });
  }
}
