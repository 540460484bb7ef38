#!/usr/bin/env node
// Offline runner for the CDK app: bundles cdk/app.ts (and the src/ modules it imports) with esbuild — a
// devDependency — into a throw-away ESM file next to it, runs it, and removes it. npm packages stay external and
// resolve from the repository's node_modules. Works on Node >= 20; no tsx/ts-node, no network, no Docker.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

process.setSourceMapsEnabled(true);
const here = path.dirname(fileURLToPath(import.meta.url));
const bundle = path.join(here, `.app-${process.pid}.mjs`);
try {
  await build({
    entryPoints: [path.join(here, 'app.ts')],
    outfile: bundle,
    tsconfig: path.join(here, 'tsconfig.json'),
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
  await import(pathToFileURL(bundle).href);
} finally {
  rmSync(bundle, { force: true });
}
