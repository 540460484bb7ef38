import { createRequire } from 'node:module';

type Yaml = typeof import('yaml');
let loaded: Yaml | undefined;

/**
 * The `yaml` library, loaded on first use: about 70 modules that a boot from JSON model files without a YAML config
 * or partners file never needs. (The Lambda bundle replaces this module by a static import: scripts/bundle.mjs.)
 */
export function yaml(): Yaml {
  return (loaded ??= createRequire(import.meta.url)('yaml') as Yaml);
}
