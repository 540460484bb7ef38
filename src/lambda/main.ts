#!/usr/bin/env node
// Process entry of the Lambda extension; bundled to /opt/dynamorm-sidecar/extension.mjs by `npm run bundle`.
import '../node-version.js';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LAYER_SCHEMAS_DIR, runExtension } from './extension.js';

// In the layer the models sit next to the bundle (/opt/dynamorm-sidecar/schemas); SCHEMAS_DIR overrides.
const besideBundle = fileURLToPath(new URL('./schemas/', import.meta.url));
const defaultSchemasDir = existsSync(besideBundle) ? besideBundle : LAYER_SCHEMAS_DIR;

runExtension(process.env, { defaultSchemasDir }).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`dynamorm-sidecar extension: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
