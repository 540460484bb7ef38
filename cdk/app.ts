/**
 * CDK app entry. Run through `node cdk/synth.mjs` (bundles this file with esbuild, offline) or, with the CDK CLI,
 * `cd cdk && cdk synth` (cdk.json runs the same runner). Settings come from CDK context (`-c key=value`) or env:
 *
 *   context key      env                        meaning                    default
 *   schemasDir       SIDECAR_SCHEMAS_DIR        DMS model directory        <repo>/schemas
 *   partnerRoleArns  SIDECAR_PARTNER_ROLE_ARNS  comma-separated role ARNs  (none: no sts statement)
 *   extensionLayer   SIDECAR_LAYER_DIR          extension layer directory  <repo>/dist-lambda/layer
 *   stackName        SIDECAR_STACK_NAME         CloudFormation stack name  DynamormSidecar
 *
 * Output goes to $CDK_OUTDIR (set by the CLI) or cdk/cdk.out.
 */
import path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import { REPO_ROOT, SidecarStack } from './stack.js';

const app = new cdk.App(process.env.CDK_OUTDIR ? {} : { outdir: path.join(REPO_ROOT, 'cdk', 'cdk.out') });

function setting(contextKey: string, envName: string): string | undefined {
  const value: unknown = app.node.tryGetContext(contextKey) ?? process.env[envName];
  return value === undefined || value === null || value === '' ? undefined : String(value);
}

const schemasDir = path.resolve(setting('schemasDir', 'SIDECAR_SCHEMAS_DIR') ?? path.join(REPO_ROOT, 'schemas'));
const layerDir = setting('extensionLayer', 'SIDECAR_LAYER_DIR');
const partnerRoleArns = (setting('partnerRoleArns', 'SIDECAR_PARTNER_ROLE_ARNS') ?? '')
  .split(',')
  .map((arn) => arn.trim())
  .filter((arn) => arn !== '');
const stackName = setting('stackName', 'SIDECAR_STACK_NAME') ?? 'DynamormSidecar';

const stack = await SidecarStack.fromSchemas(app, stackName, {
  schemasDir,
  partnerRoleArns,
  ...(layerDir ? { extensionLayer: path.resolve(layerDir) } : {}),
  description: 'dynamorm sidecar: DMS tables, envelope key, IAM, ECS Fargate and Lambda extension examples',
});

const assembly = app.synth();
// The CLI prints annotations itself; running synth.mjs directly, print them here.
if (!process.env.CDK_CONTEXT_JSON) {
  for (const m of assembly.getStackArtifact(stack.artifactId).messages) {
    if (m.level !== 'info') process.stderr.write(`[${m.level}] ${m.id}: ${String(m.entry.data)}\n`);
  }
}
const template = path.join(assembly.directory, stack.templateFile);
process.stderr.write(`${stackName}: ${stack.tables.size} tables → ${template}\n`);
