// Suites that need a program a machine with only Node.js and npm lacks (moto, the Python generator, schemathesis,
// Chromium, an older Node) go through `withTool`: when the program is missing the suite is one skipped subtest whose
// reason says what to install; with REQUIRE_TOOLS=1 (set by .ci/run) it is a failure instead, so CI never skips.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const VENV_BIN = path.join(ROOT, '.venv', 'bin');
/** The Runtime Interface Emulator's module, at the version CI installs (.ci/run). */
export const RIE_MODULE = 'github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d';
const VENV = (pkg: string) => `python3 -m venv .venv && .venv/bin/pip install ${pkg}`;

export interface Tool {
  /** What the suite needs, as the skip line names it. */
  readonly name: string;
  /** Where it was found; undefined when it is missing. */
  readonly found: string | undefined;
  /** How to get it (a command or a sentence). */
  readonly install: string;
  /** An older variable that also makes this tool required (REQUIRE_BROWSER for Chromium). */
  readonly requiredBy?: string;
}

const venvBin = (name: string): string | undefined => {
  const file = path.join(VENV_BIN, name);
  return existsSync(file) ? file : undefined;
};

/** The major version of a `node` binary, or undefined when it does not run. */
function nodeMajor(bin: string): number | undefined {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const m = /^v(\d+)\./.exec(r.stdout ?? '');
  return m ? Number(m[1]) : undefined;
}

/** OLD_NODE, else the first `node` on PATH (or in /usr/bin, /usr/local/bin) older than 24. */
function findOldNode(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/local/bin'].filter(Boolean);
  const candidates = [process.env.OLD_NODE, ...dirs.map((d) => path.join(d, 'node'))].filter((c): c is string => !!c);
  for (const bin of new Set(candidates)) {
    if (!existsSync(bin)) continue;
    const major = nodeMajor(bin);
    if (major !== undefined && major < 24) return bin;
  }
  return undefined;
}

export const tools = {
  /** moto's DynamoDB/STS/KMS server: CI's (MOTO_ENDPOINT) or the venv's moto_server. */
  moto: (): Tool => ({
    name: 'moto_server',
    found: process.env.MOTO_ENDPOINT || venvBin('moto_server'),
    install: `${VENV('"moto[server]"')} (or set MOTO_ENDPOINT)`,
  }),
  openapiPythonClient: (): Tool => ({
    name: 'openapi-python-client',
    found: venvBin('openapi-python-client') && venvBin('python'),
    install: VENV('openapi-python-client'),
  }),
  schemathesis: (): Tool => ({ name: 'schemathesis', found: venvBin('st'), install: VENV('schemathesis') }),
  /** The venv's Python with PyYAML (a YAML 1.1 parser; moto depends on it). */
  pyyaml: (): Tool => {
    const python = venvBin('python');
    const ok = python && spawnSync(python, ['-c', 'import yaml'], { timeout: 30_000 }).status === 0;
    return { name: 'PyYAML', found: ok ? python : undefined, install: VENV('pyyaml') };
  },
  chromium: (): Tool => {
    const bin = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
    return { name: 'chromium', found: existsSync(bin) ? bin : undefined, install: `apt-get install chromium (or set CHROMIUM_PATH)`, requiredBy: 'REQUIRE_BROWSER' };
  },
  /**
   * AWS's Lambda Runtime Interface Emulator (.tools/bin, RIE_PATH or PATH) and a private mount namespace to lay a
   * layer over /opt in (`unshare -m`, root): the Lambda extension test runs under it.
   */
  rie: (): Tool => {
    const onPath = spawnSync('sh', ['-c', 'command -v aws-lambda-rie'], { encoding: 'utf8' }).stdout.trim();
    const bin = [process.env.RIE_PATH, path.join(ROOT, '.tools', 'bin', 'aws-lambda-rie'), onPath].find((b) => b && existsSync(b));
    const unshare = bin && spawnSync('unshare', ['-m', '--propagation', 'private', 'true'], { timeout: 10_000 }).status === 0;
    return {
      name: 'aws-lambda-rie',
      found: unshare ? bin : undefined,
      install: `GOBIN=$PWD/.tools/bin go install ${RIE_MODULE} (and root, for unshare -m)`,
    };
  },
  /** A Node.js older than 24, to see the CLI refuse it. */
  oldNode: (): Tool => ({
    name: 'node < 24',
    found: findOldNode(),
    install: 'apt-get install nodejs (Debian ships an older Node) or set OLD_NODE=/path/to/node',
  }),
};

/** True when a missing tool must fail the run instead of skipping (REQUIRE_TOOLS=1, or the tool's own variable). */
export function toolRequired(tool: Tool): boolean {
  return process.env.REQUIRE_TOOLS === '1' || (tool.requiredBy !== undefined && process.env[tool.requiredBy] === '1');
}

/** The skip reason: `needs <tool>: <how to install>`. .ci/run looks for `# SKIP needs ` lines. */
export const skipReason = (tool: Tool) => `needs ${tool.name}: ${tool.install}`;

/**
 * Runs `suite` as subtest `name` when `tool` is there. Otherwise: one skipped subtest whose reason names what to
 * install, or, when the tool is required, a failing one.
 */
export function withTool(t: Test, tool: Tool, name: string, suite: (t: Test, found: string) => Promise<void> | void): Promise<unknown> {
  const found = tool.found;
  if (found) return t.test(name, (t) => suite(t, found));
  if (!toolRequired(tool)) return t.test(name, { skip: skipReason(tool) }, () => {});
  const variable = process.env.REQUIRE_TOOLS === '1' ? 'REQUIRE_TOOLS=1' : `${tool.requiredBy}=1`;
  return t.test(name, async (t) => {
    t.fail(`${variable} but ${tool.name} is missing: ${tool.install}`);
  });
}
