#!/usr/bin/env node
// CPU profile of the sidecar's hot path: GetItem at saturation against the null endpoint (and, with --boot, of
// its boot with 50 models). The sidecar runs under `node --cpu-prof`; only the samples taken while the load ran
// are summarised (V8 stamps samples with the machine's monotonic clock, which process.hrtime reads here too).
//
//   npm run build && node bench/profile.mjs [--op get] [--seconds 10] [--boot] [--entry dist/cli.js] [--out bench/results]
//
// Writes <out>/profile-<op>.txt / .json (and profile-boot.*) and keeps the raw .cpuprofile files in <out>/profiles/.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MODEL_COUNT, tableSpecs, writeModels } from './lib/models.mjs';
import { OP_NAMES } from './lib/workload.mjs';
import { formatSummary, summarize } from './lib/cpuprofile.mjs';
import { stop } from './lib/procs.mjs';
import { CPU, LoadGen, ROOT, initPinning, log, sleep, startBackend, startSidecar, stopAll, waitQuiet } from './lib/harness.mjs';

const { values: argv } = parseArgs({
  options: {
    op: { type: 'string', default: 'get' },
    seconds: { type: 'string', default: '10' },
    boot: { type: 'boolean', default: false },
    entry: { type: 'string', default: 'dist/cli.js' },
    out: { type: 'string', default: 'bench/results' },
    connections: { type: 'string', default: '32' },
  },
});
if (!OP_NAMES.includes(argv.op)) {
  process.stderr.write(`profile: unknown op ${argv.op} (${OP_NAMES.join(', ')})\n`);
  process.exit(2);
}
const OUT = path.resolve(ROOT, argv.out);
const RAW = path.join(OUT, 'profiles');
const hrUs = () => Number(process.hrtime.bigint() / 1000n);

async function profiled(name, schemasDir, endpoint, during) {
  const dir = path.join(RAW, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const sc = await startSidecar({ entry: argv.entry, endpoint, schemasDir, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
  const window = await during(sc);
  await stop(sc.child);
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
  const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
  return { summary: summarize(profile, { top: 30, window }), window, file: path.relative(ROOT, path.join(dir, file)), sc };
}

async function main() {
  const pinning = initPinning(true);
  const schemasDir = await writeModels();
  mkdirSync(OUT, { recursive: true });
  await waitQuiet(30_000, 'profile');
  const backend = await startBackend('null', tableSpecs());
  const gen = await LoadGen.start('http-load.mjs', CPU.httpLoadgen);
  try {
    const seconds = Number(argv.seconds);
    let throughput = 0;
    const { summary, file, window } = await profiled(argv.op, schemasDir, backend.endpoint, async (sc) => {
      let window;
      const result = await gen.run(
        { op: argv.op, load: { type: 'closed', concurrency: Number(argv.connections) }, durationMs: seconds * 1000, warmupMs: 2000, ...sc.where },
        { onStart: () => (window = { fromUs: hrUs() }), onEnd: () => (window.toUs = hrUs()) },
      );
      throughput = Math.round(result.ok / (result.elapsedMs / 1000));
      return window;
    });
    const title = `sidecar ${argv.entry}, ${argv.op} at saturation (${argv.connections} connections, null endpoint, ${seconds} s, ${throughput} req/s under the profiler, pinned to one core: ${pinning.on})`;
    const text = formatSummary(summary, title);
    writeFileSync(path.join(OUT, `profile-${argv.op}.txt`), text);
    writeFileSync(path.join(OUT, `profile-${argv.op}.json`), `${JSON.stringify({ title, cpuprofile: file, window: { fromUs: window.fromUs, toUs: window.toUs }, ...summary }, null, 2)}\n`);
    process.stdout.write(text);
    if (argv.boot) {
      const boot = await profiled('boot', schemasDir, backend.endpoint, async (sc) => {
        await sleep(200);
        return { fromUs: 0, toUs: Number.MAX_SAFE_INTEGER, bootMs: sc.bootMs };
      });
      const bootTitle = `sidecar ${argv.entry} boot with ${MODEL_COUNT} models (spawn → /readyz 200: ${Math.round(boot.sc.bootMs)} ms under --cpu-prof)`;
      const bootText = formatSummary(boot.summary, bootTitle);
      writeFileSync(path.join(OUT, 'profile-boot.txt'), bootText);
      writeFileSync(path.join(OUT, 'profile-boot.json'), `${JSON.stringify({ title: bootTitle, cpuprofile: boot.file, ...boot.summary }, null, 2)}\n`);
      process.stdout.write(`\n${bootText}`);
    }
  } finally {
    await gen.close();
    await stopAll();
    rmSync(schemasDir, { recursive: true, force: true });
  }
  log(`profile: wrote ${path.relative(ROOT, OUT)}/profile-${argv.op}.txt${argv.boot ? ' and profile-boot.txt' : ''}`);
}

main().catch(async (err) => {
  process.stderr.write(`profile: ${err?.stack ?? err}\n`);
  await stopAll();
  process.exit(1);
});
