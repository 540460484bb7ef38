import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { helpText, loadConfig, OPTIONS } from '../src/config.js';

const dir = await mkdtemp(path.join(tmpdir(), 'dynamorm-config-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const file = async (name: string, text: string) => {
  const p = path.join(dir, name);
  await writeFile(p, text);
  return p;
};

t.test('flags > env > config file > defaults', async (t) => {
  const f = await file('a.yml', 'port: 8001\nlog-level: warn\nbatch-max-items: 50\nregion: eu-west-1\n');
  const fromFile = loadConfig(['--config', f], {}).config;
  t.equal(fromFile.port, 8001);
  t.equal(fromFile.logLevel, 'warn');
  t.equal(fromFile.batchMaxItems, 50);
  t.equal(fromFile.region, 'eu-west-1');
  t.equal(fromFile.host, '127.0.0.1', 'defaults fill the rest');
  t.equal(loadConfig(['--config', f], { PORT: '8002' }).config.port, 8002, 'env beats the file');
  t.equal(loadConfig(['--config', f, '--port', '8003'], { PORT: '8002' }).config.port, 8003, 'flag beats env');
  t.equal(loadConfig([], { CONFIG_FILE: f }).config.port, 8001, 'CONFIG_FILE names the file too');
  const json = await file('b.json', '{"port": 8004, "create-tables": true}');
  t.equal(loadConfig(['--config', json], {}).config.createTables, true, 'JSON works');
});

t.test('the file is validated with everything else', async (t) => {
  const unknown = await file('c.yml', 'port: 1\nnope: 2\ncolour: red\n');
  t.throws(() => loadConfig(['--config', unknown], {}), { message: /unknown option nope; unknown option colour/ });
  const bad = await file('d.yml', 'port: 99999\n');
  t.throws(() => loadConfig(['--config', bad], {}), { name: 'ConfigError' });
  t.throws(() => loadConfig(['--config', bad], {}), { message: /--port \/ PORT must be an integer between 0 and 65535/ });
  const nested = await file('e.yml', 'port: { a: 1 }\n');
  t.throws(() => loadConfig(['--config', nested], {}), { message: /port must be a string, number or boolean/ });
  t.throws(() => loadConfig(['--config', path.join(dir, 'missing.yml')], {}), { message: /cannot read/ });
});

t.test('--help lists every option with its env var', async (t) => {
  const help = helpText();
  for (const o of Object.values(OPTIONS)) {
    t.match(help, new RegExp(`--${o.flag}\\b[^\\n]*\\b${o.env}\\b`), `--${o.flag} / ${o.env}`);
  }
  t.match(help, /--config <file>\s+CONFIG_FILE/);
  t.match(help, /LOCAL_KEK/);
  t.match(help, /AUTH_TOKEN\b/);
});
