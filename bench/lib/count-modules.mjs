// Preloaded with `node --import ./bench/lib/count-modules.mjs`: counts the modules a process loads (ESM and CommonJS,
// node: built-ins excluded) and, on exit, prints `{"modules":N,"packages":{name:count}}` to stderr (with
// COUNT_MODULES_FILES=1 also `"files":[…]`, the paths below node_modules or the project).
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
  const list = process.env.COUNT_MODULES_FILES === '1' ? { files: [...files].map((u) => u.replace(/^.*?node_modules\//, '')) } : {};
  process.stderr.write(`${JSON.stringify({ modules: files.size, packages, ...list })}\n`);
});
