import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Document } from 'yaml';
import { yaml } from '../yaml.js';
import type { LoadedModel } from './types.js';
import { checkAcrossModels, checkDocument, type CheckedDocument } from './validate.js';

const MODEL_EXTENSIONS = new Set(['.yml', '.yaml', '.json']);
const TAG_WARNINGS = new Set(['TAG_RESOLVE_FAILED', 'BAD_COLLECTION_TYPE']);

export class DmsLoadError extends Error {
  readonly errors: string[];

  constructor(errors: string[]) {
    super(`Invalid DMS models:\n${errors.map((error) => `  - ${error}`).join('\n')}`);
    this.name = 'DmsLoadError';
    this.errors = errors;
  }
}

const stripBom = (text: string): string => (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);

function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}

function endOfJsonString(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
  return i;
}

function findDuplicateJsonKeys(text: string): Array<{ key: string; offset: number }> {
  const duplicates: Array<{ key: string; offset: number }> = [];
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      const end = endOfJsonString(text, i);
      const keys = stack[stack.length - 1];
      if (keys && expectKey) {
        // A key without escapes is its text (the common case: JSON.parse per key was most of this scan's time).
        const raw = text.slice(i + 1, end);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        if (keys.has(key)) duplicates.push({ key, offset: i });
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (ch === '{' || ch === '[') {
      stack.push(ch === '{' ? new Set() : null);
      expectKey = ch === '{';
    } else if (ch === '}' || ch === ']') {
      stack.pop();
      expectKey = false;
    } else if (ch === ',') {
      expectKey = Boolean(stack[stack.length - 1]);
    }
  }
  return duplicates;
}

function parseJson(text: string, file: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DmsLoadError([`${file}: invalid JSON: ${(err as Error).message}`]);
  }
  const duplicates = findDuplicateJsonKeys(text);
  if (duplicates.length > 0) {
    throw new DmsLoadError(
      duplicates.map(({ key, offset }) => `${file}: ${lineColumn(text, offset)}: duplicate key "${key}"`),
    );
  }
  return value;
}

function findNonJsonYaml(doc: Document, report: (offset: number | undefined, message: string) => void): void {
  const { isAlias, isCollection, isScalar, visit } = yaml();
  visit(doc, {
    Node(_, node) {
      const offset = node.range?.[0];
      if (isAlias(node)) report(offset, `YAML aliases are not supported (*${node.source}); write the value out`);
      if ((isScalar(node) || isCollection(node)) && node.anchor) {
        report(offset, `YAML anchors are not supported (&${node.anchor})`);
      }
      if (node.tag) report(offset, `explicit YAML tags are not supported (${node.tag})`);
      if (isScalar(node) && typeof node.value === 'number' && !Number.isFinite(node.value)) {
        report(offset, `non-finite number ${String(node.source ?? node.value)} is not JSON-compatible`);
      }
    },
    Pair(_, pair) {
      if (isCollection(pair.key)) report(pair.key.range?.[0], 'mapping keys must be plain strings');
      if (isScalar(pair.key) && pair.key.value === '<<' && pair.key.type === 'PLAIN') {
        report(pair.key.range?.[0], 'YAML merge keys (<<) are not supported');
      }
    },
  });
}

const YAML_KEY_RE = /^(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s:#,[\]{}]+)/;

function keyAt(text: string, offset: number): string {
  const match = YAML_KEY_RE.exec(text.slice(offset));
  if (!match) return `at offset ${offset}`;
  return /^["']/.test(match[0]) ? match[0] : `"${match[0]}"`;
}

function parseYaml(text: string, file: string): unknown {
  const doc = yaml().parseDocument(text, {
    version: '1.2',
    schema: 'core',
    uniqueKeys: true,
    prettyErrors: false,
  });
  const errors: string[] = [];
  const report = (offset: number | undefined, message: string): void => {
    errors.push(offset === undefined ? `${file}: ${message}` : `${file}: ${lineColumn(text, offset)}: ${message}`);
  };
  for (const problem of doc.errors) {
    const [start] = problem.pos;
    const message = problem.code === 'DUPLICATE_KEY' ? `duplicate key ${keyAt(text, start)}` : problem.message;
    report(start, message);
  }
  for (const problem of doc.warnings) if (!TAG_WARNINGS.has(problem.code)) report(problem.pos[0], problem.message);
  if (doc.errors.length === 0) findNonJsonYaml(doc, report);
  if (errors.length > 0) throw new DmsLoadError(errors);
  return doc.toJS();
}

/** Parses `.json` as JSON and `.yml`/`.yaml` as the JSON-compatible subset of YAML 1.2; throws DmsLoadError. */
export function parseDmsText(text: string, file: string): unknown {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.json') return parseJson(stripBom(text), file);
  if (ext === '.yml' || ext === '.yaml') return parseYaml(stripBom(text), file);
  throw new DmsLoadError([`${file}: unsupported file extension "${ext}" (expected .yml, .yaml or .json)`]);
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

async function listModelFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'is not a directory' : String(err);
    throw new DmsLoadError([`${dir}: model directory ${reason}`]);
  }
  const candidates = names
    .filter((name) => MODEL_EXTENSIONS.has(path.extname(name)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((name) => path.join(dir, name));
  const files: string[] = [];
  for (const file of candidates) if (await isFile(file)) files.push(file);
  if (files.length === 0) throw new DmsLoadError([`${dir}: no model files (*.yml, *.yaml, *.json) found`]);
  return files;
}

async function loadFile(file: string): Promise<CheckedDocument> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { entries: [], errors: [`${file}: cannot read file: ${(err as Error).message}`] };
  }
  try {
    return checkDocument(parseDmsText(text, file), file);
  } catch (err) {
    if (err instanceof DmsLoadError) return { entries: [], errors: err.errors };
    throw err;
  }
}

/** Loads and validates every model file directly inside `dir`; throws DmsLoadError listing every problem. */
export async function loadModels(dir: string): Promise<LoadedModel[]> {
  const files = await listModelFiles(dir);
  const documents = await Promise.all(files.map(loadFile));
  const errors = documents.flatMap((doc) => doc.errors);
  const entries = documents.flatMap((doc) => doc.entries);
  checkAcrossModels(entries, errors);
  if (errors.length > 0) throw new DmsLoadError(errors);
  return documents.flatMap((doc, i) => toLoadedModels(doc, files[i]));
}

function toLoadedModels(doc: CheckedDocument, file: string): LoadedModel[] {
  const namespace = doc.namespace === undefined ? {} : { namespace: doc.namespace };
  return doc.entries.flatMap((entry) => (entry.model ? [{ file, ...namespace, model: entry.model }] : []));
}
