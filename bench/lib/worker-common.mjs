// IPC protocol of the load-generator processes. The parent sends {id, spec}; the worker warms up (same load,
// not measured), sends {id, event:'start'} as the measured window opens and {id, event:'end'} as it closes
// (the parent samples the other processes' CPU and RSS between the two), then {id, result}.
import { cpuMsSince } from './stats.mjs';

export function serve(run) {
  process.on('message', async (msg) => {
    if (msg?.cmd === 'exit') process.exit(0);
    const { id, spec } = msg;
    try {
      if (spec.warmupMs > 0) await run(spec, spec.warmupMs, () => {}, () => {});
      let cpuFrom;
      let cpuMs = 0;
      const result = await run(
        spec,
        spec.durationMs,
        () => {
          cpuFrom = process.cpuUsage();
          process.send({ id, event: 'start' });
        },
        () => {
          cpuMs = cpuMsSince(cpuFrom);
          process.send({ id, event: 'end' });
        },
      );
      process.send({ id, result: { ...result, loadgenCpuMs: cpuMs } });
    } catch (err) {
      process.send({ id, error: String(err?.stack ?? err) });
    }
  });
  process.send({ ready: true, pid: process.pid });
}
