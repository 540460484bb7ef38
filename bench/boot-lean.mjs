#!/usr/bin/env node
// Boot with 50 models, without the full bench: spawn → "dynamorm sidecar ready" log line, idle RSS one second later,
// and the modules loaded (a separate, hooked boot), for the aws backend (null endpoint) and the embedded store.
// Rounds interleave the entries. `npm run build && node bench/boot-lean.mjs [rounds] [entry …]`
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { MB, freePort, procSample } from './lib/procs.mjs';
import { tableSpecs, writeModels } from './lib/models.mjs';

const rounds = Number(process.argv[2] ?? 5);
const entries = process.argv.length > 3 ? process.argv.slice(3) : ['dist/cli.js'];
const rssMB = (pid) => MB(procSample(pid).rss);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const schemasDir = await writeModels(50);
const nullDynamo = spawn(process.execPath, [new URL('./lib/null-dynamo.mjs', import.meta.url).pathname], {
  stdio: ['ignore', 'pipe', 'ignore'],
  env: { ...process.env, NULL_DYNAMO_TABLES: JSON.stringify(tableSpecs(50)) },
});
process.on('exit', () => nullDynamo.kill());
const [line] = await once(createInterface({ input: nullDynamo.stdout }), 'line');
const endpoint = `http://127.0.0.1:${JSON.parse(line).port}`;

async function boot(entry, backend, countModules) {
  const env = {
    ...process.env,
    LOG_LEVEL: 'info',
    DOCS: process.env.BOOT_DOCS ?? 'false',
    SCHEMAS_DIR: schemasDir,
    HOST: '127.0.0.1',
    PORT: String(await freePort()),
    MAX_EVENT_LOOP_DELAY_MS: '0',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_REGION: 'us-east-1',
    ...(backend === 'aws' ? { BACKEND: 'aws', DYNAMODB_ENDPOINT: endpoint, CREATE_TABLES: 'false' } : { BACKEND: 'embedded' }),
  };
  const hook = countModules ? ['--import', new URL('./lib/count-modules.mjs', import.meta.url).pathname] : [];
  const t0 = performance.now();
  const child = spawn(process.execPath, [...hook, entry], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (c) => c.toString().includes('dynamorm sidecar ready') && resolve());
    child.once('exit', (code) => reject(new Error(`sidecar exited ${code}: ${stderr}`)));
  });
  const readyMs = performance.now() - t0;
  await sleep(1000);
  const rss = rssMB(child.pid);
  child.kill('SIGTERM');
  await once(child, 'exit');
  const counted = countModules ? JSON.parse(stderr.trim().split('\n').filter((l) => l.startsWith('{"modules"')).at(-1) ?? 'null') : undefined;
  return { readyMs, rss, counted };
}

const results = {};
for (let r = 0; r < rounds; r++) {
  for (const entry of entries) {
    for (const backend of ['aws', 'embedded']) {
      const key = `${entry} ${backend}`;
      (results[key] ??= []).push(await boot(entry, backend, false));
    }
  }
}
for (const entry of entries) {
  for (const backend of ['aws', 'embedded']) {
    const key = `${entry} ${backend}`;
    const rs = results[key];
    const { counted } = await boot(entry, backend, true);
    const top = Object.entries(counted?.packages ?? {}).sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 8)).map(([n, c]) => `${n} ${c}`).join(', ');
    console.log(`${key.padEnd(22)} ready ${Math.round(median(rs.map((x) => x.readyMs)))} ms [${rs.map((x) => Math.round(x.readyMs)).join(' ')}], idle RSS ${median(rs.map((x) => x.rss))} MB [${rs.map((x) => x.rss).join(' ')}], modules ${counted?.modules}`);
    console.log(`  ${top}`);
  }
}
nullDynamo.kill();
await rm(schemasDir, { recursive: true, force: true });
