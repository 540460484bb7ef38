// Preloaded with `node --import ./bench/lib/count-modules.mjs`: counts the modules a process loads (ESM and CommonJS,
// node: built-ins excluded) and, on exit, prints `{"modules":N,"packages":{name:count}}` to stderr.
import { registerHooks } from 'node:module';

const files = new Set();
registerHooks({
  load(url, context, next) {
    if (url.startsWith('file:')) files.add(url);
    return next(url, context);
  },
});
process.on('exit', () => {
  const packages = {};
  for (const url of files) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    const name = m ? m[1] : '(project)';
    packages[name] = (packages[name] ?? 0) + 1;
  }
  process.stderr.write(`${JSON.stringify({ modules: files.size, packages })}\n`);
});
