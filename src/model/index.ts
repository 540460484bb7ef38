export { ModelRegistry, type ModelDef, type TableDef } from './registry.js';
export type { ModelSchemas } from './schemas.js';
