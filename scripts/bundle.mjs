#!/usr/bin/env node
// Single-file esbuild bundles of the sidecar (`npm run bundle`).
//
//   <out>/layer/extensions/dynamorm-sidecar        POSIX sh launcher: the Lambda external extension
//   <out>/layer/dynamorm-sidecar/extension.mjs     bundle of src/lambda/main.ts
//   <out>/layer/dynamorm-sidecar/schemas/          copy of schemas/ (default SCHEMAS_DIR in the layer)
//   <out>/maps/extension.mjs.map                   its source map, kept out of the layer (not linked)
//   <out>/cli.mjs (+ .map)                         bundle of src/cli.ts, for boot-time measurements
//   <out>/swagger-ui/static/                       Swagger UI assets for cli.mjs (/docs)
//
// <out> is dist-lambda/ unless `--out <dir>` says otherwise. `<out>/layer` is the layer's content (it is mounted at
// /opt). dynalite (embedded store only) stays external: the Lambda bundle never loads it; cli.mjs loads it from
// node_modules when run with the embedded backend.
import { build } from 'esbuild';
import { chmod, cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const { values } = parseArgs({ options: { out: { type: 'string' }, quiet: { type: 'boolean' } } });
const OUT = path.resolve(ROOT, values.out ?? 'dist-lambda');
const LAYER = path.join(OUT, 'layer');
const NAME = 'dynamorm-sidecar';

// ESM output with CommonJS dependencies inside: give them require, __filename and __dirname.
const BANNER = [
  "import { createRequire as __bundleCreateRequire } from 'node:module';",
  "import { fileURLToPath as __bundleFileURLToPath } from 'node:url';",
  "import { dirname as __bundleDirname } from 'node:path';",
  'const require = __bundleCreateRequire(import.meta.url);',
  'const __filename = __bundleFileURLToPath(import.meta.url);',
  'const __dirname = __bundleDirname(__filename);',
].join(' ');

// @fastify/swagger-ui finds its assets through __dirname (index.js: ./static, lib/routes.js: ../static). In a bundle
// every module shares the bundle's __dirname, so each of its files gets its own, under <bundle dir>/swagger-ui/.
const SWAGGER_UI = path.join(ROOT, 'node_modules', '@fastify', 'swagger-ui');
/** @type {import('esbuild').Plugin} */
const swaggerUiAssets = {
  name: 'swagger-ui-assets',
  setup(b) {
    b.onLoad({ filter: /[\\/]@fastify[\\/]swagger-ui[\\/].*\.js$/ }, async (args) => {
      const rel = path.relative(SWAGGER_UI, path.dirname(args.path)).split(path.sep).filter(Boolean);
      const dir = JSON.stringify(['swagger-ui', ...rel]).slice(1, -1);
      const prelude = `var __dirname = require('node:path').join(require('node:path').dirname(__filename), ${dir});\n`;
      return { contents: prelude + (await readFile(args.path, 'utf8')), loader: 'js' };
    });
  },
};

// src/yaml.ts loads `yaml` with a runtime require (a dist boot from JSON files never needs it); a bundle has no
// node_modules to require from, so there the module imports it statically instead.
/** @type {import('esbuild').Plugin} */
const bundledYaml = {
  name: 'bundled-yaml',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]yaml\.ts$/ }, () => ({ contents: "import * as y from 'yaml'; export const yaml = () => y;", loader: 'ts' }));
  },
};

/** @type {import('esbuild').BuildOptions} */
const common = {
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  minify: true,
  // Minified class names would reach logs as `err.type: "kw"`: error classes keep their readable names.
  keepNames: true,
  // The lean DynamoDB client names the sidecar's version in its user agent; a bundle has no package.json to read.
  define: { __SIDECAR_VERSION__: JSON.stringify(JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')).version) },
  sourcemap: 'external',
  legalComments: 'none',
  banner: { js: BANNER },
  external: ['dynalite'],
  logLevel: 'warning',
  metafile: true,
  absWorkingDir: ROOT,
  plugins: [swaggerUiAssets, bundledYaml],
};

const LAUNCHER = `#!/bin/sh
# ${NAME}: AWS Lambda external extension (the file name is the extension name).
# Runs the bundled sidecar with the node of the function's runtime: the first of $DYNAMORM_NODE, node on PATH,
# /var/lang/bin/node (Lambda's Node.js runtimes), a node binary shipped next to the bundle, /opt/bin/node.
root=$(cd "$(dirname "$0")/../${NAME}" && pwd) || exit 1
node_bin=\${DYNAMORM_NODE:-}
if [ -z "$node_bin" ]; then
  for candidate in "$(command -v node 2>/dev/null)" /var/lang/bin/node "$root/node" /opt/bin/node; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      node_bin=$candidate
      break
    fi
  done
fi
if [ -z "$node_bin" ]; then
  echo "${NAME}: no node binary found; use a Node.js runtime (nodejs24.x) or set DYNAMORM_NODE" >&2
  exit 127
fi
DYNAMORM_EXTENSION_NAME=\${DYNAMORM_EXTENSION_NAME:-\${0##*/}}
export DYNAMORM_EXTENSION_NAME
exec "$node_bin" "$root/extension.mjs"
`;

/** Moves a source map, keeping its `sources` pointing at the same files. */
async function moveMap(from, to) {
  const map = JSON.parse(await readFile(from, 'utf8'));
  map.sources = map.sources.map((source) => path.relative(path.dirname(to), path.resolve(path.dirname(from), source)));
  await mkdir(path.dirname(to), { recursive: true });
  await writeFile(to, JSON.stringify(map));
  await rm(from);
}

async function size(file) {
  return (await stat(file)).size;
}

const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

await rm(LAYER, { recursive: true, force: true });
await mkdir(path.join(LAYER, 'extensions'), { recursive: true });
await mkdir(path.join(LAYER, NAME), { recursive: true });

const extensionFile = path.join(LAYER, NAME, 'extension.mjs');
const cliFile = path.join(OUT, 'cli.mjs');
await Promise.all([
  build({ ...common, entryPoints: [path.join(ROOT, 'src/lambda/main.ts')], outfile: extensionFile }),
  build({ ...common, entryPoints: [path.join(ROOT, 'src/cli.ts')], outfile: cliFile }),
]);

const extensionMap = path.join(OUT, 'maps', 'extension.mjs.map');
await moveMap(`${extensionFile}.map`, extensionMap);
await cp(path.join(ROOT, 'schemas'), path.join(LAYER, NAME, 'schemas'), { recursive: true });
await rm(path.join(OUT, 'swagger-ui'), { recursive: true, force: true });
await cp(path.join(SWAGGER_UI, 'static'), path.join(OUT, 'swagger-ui', 'static'), { recursive: true });
const launcher = path.join(LAYER, 'extensions', NAME);
await writeFile(launcher, LAUNCHER);
await chmod(launcher, 0o755);

if (!values.quiet) {
  const lines = [
    [path.relative(ROOT, extensionFile), await size(extensionFile)],
    [path.relative(ROOT, extensionMap), await size(extensionMap)],
    [path.relative(ROOT, cliFile), await size(cliFile)],
    [path.relative(ROOT, launcher), await size(launcher)],
  ];
  for (const [file, bytes] of lines) process.stdout.write(`${file.padEnd(52)} ${kb(bytes).padStart(12)}\n`);
}
