// openapi.yaml (committed) and /openapi.yaml (served) must read the same in YAML 1.1 parsers — PyYAML and ruamel,
// which openapi-python-client uses — as in YAML 1.2: PyYAML loads both and must give back /openapi.json exactly.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { portableYaml } from '../src/http/openapi.js';
import { startTestSidecar } from './helpers/sidecar.js';
import { tools, withTool } from './helpers/tools.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const LOAD = 'import json, sys, yaml\nwith open(sys.argv[1], encoding="utf-8") as f:\n    print(json.dumps(yaml.safe_load(f)))';

/** The file as PyYAML's safe_load reads it, through JSON. */
function pyyamlLoad(python: string, file: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-c', LOAD, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`PyYAML on ${file}: exit ${code}\n${stderr.slice(-2000)}`))));
  });
}

await withTool(t, tools.pyyaml(), 'PyYAML (YAML 1.1)', async (t, python) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dynamorm-yaml11-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  await t.test('committed openapi.yaml and served /openapi.yaml load as the JSON document', async (t) => {
    const s = await startTestSidecar();
    t.teardown(() => s.close());
    const json = (await s.request('GET', '/openapi.json')).json;
    const served = await s.request('GET', '/openapi.yaml');
    t.equal(served.status, 200);
    const servedFile = path.join(dir, 'served.yaml');
    writeFileSync(servedFile, served.text);
    t.same(await pyyamlLoad(python, servedFile), json, '/openapi.yaml');
    t.same(await pyyamlLoad(python, path.join(ROOT, 'openapi.yaml')), json, 'openapi.yaml (run `npm run openapi` after changing schemas/ or routes)');
  });

  await t.test('every string YAML 1.1 resolves to another type stays a string, as key and as value', async (t) => {
    const tricky = ['=', '<<', 'y', 'Y', 'n', 'yes', 'No', 'on', 'OFF', 'true', 'False', 'null', '~', '', '0755', '0o17', '0x1F', '0b101',
      '1_000', '1:20', '-1:20:30.5', '2026-01-16', '2026-01-16T10:20:30Z', '.inf', '-.Inf', '.NaN', '.5', '+1', '-2', '1e3', '3.0', 'plain words'];
    const value = { list: tricky, map: Object.fromEntries(tricky.map((s, i) => [s, i])), nested: { on: { yes: '=' } } };
    const text = await portableYaml(value);
    const file = path.join(dir, 'tricky.yaml');
    writeFileSync(file, text);
    t.same(await pyyamlLoad(python, file), value, 'PyYAML reads back the same strings and keys');
    t.match(text, /^ {2}- plain words$/m, 'ordinary strings stay plain');
  });
});
