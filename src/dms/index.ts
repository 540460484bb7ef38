export * from './types.js';
export { validateDocument } from './validate.js';
export { DmsLoadError, loadModels, parseDmsText } from './load.js';
