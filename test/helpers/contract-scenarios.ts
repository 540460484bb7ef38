// A small runner for DynamORM's contract scenarios (contract-tests/scenarios/*.yml), played over the sidecar's HTTP
// API: create → POST …/items (conditional when `if_not_exists`, else an upsert), get → GET, update (`fields` +
// `version`) → PATCH `set` of those fields with If-Match, delete → DELETE, sleep. Every expectation is checked; an
// op or expectation the runner does not know fails the step instead of being skipped, and a scenario pinned to any
// DMS version but 0.1 is refused before it runs.
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Test } from 'tap';
import { parse } from 'yaml';
import type { TestResponse } from './sidecar.js';

export const PINNED_DMS_VERSION = '0.1';

type Json = Record<string, any>;

export interface Step {
  readonly op: string;
  readonly [field: string]: any;
}

export interface Scenario {
  readonly name: string;
  readonly dms_version: string;
  readonly model: string;
  readonly table: { readonly name: string };
  readonly steps: readonly Step[];
}

export interface ScenarioTarget {
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse>;
  /** The stored item as the backend holds it (for raw_attribute_types), or undefined when absent. */
  rawItem(table: string, key: Record<string, AttributeValue>): Promise<Record<string, AttributeValue> | undefined>;
}

/** Parses a scenario file; refuses any DMS version but the pinned one, and a file without steps. */
export function loadScenario(text: string, file: string): Scenario {
  const doc = parse(text) as Json | null;
  if (doc === null || typeof doc !== 'object') throw new Error(`${file}: not a scenario`);
  if (doc.dms_version !== PINNED_DMS_VERSION) {
    throw new Error(`${file}: dms_version ${JSON.stringify(doc.dms_version)} is not supported; this runner is pinned to DMS ${PINNED_DMS_VERSION}`);
  }
  if (typeof doc.name !== 'string' || typeof doc.model !== 'string' || typeof doc.table?.name !== 'string') {
    throw new Error(`${file}: name, model and table.name are required`);
  }
  if (!Array.isArray(doc.steps) || doc.steps.length === 0) throw new Error(`${file}: steps must be a non-empty list`);
  return doc as Scenario;
}

interface ModelInfo {
  readonly keys: readonly { attribute: string; type: string }[];
  readonly types: ReadonlyMap<string, string>;
}

const SETS = new Set(['SS', 'NS', 'BS']);
const EXPECTATIONS = new Set([
  'ok',
  'error',
  'item_contains',
  'item_has_fields',
  'item_missing_fields',
  'item_field_equals_var',
  'item_field_not_equals_var',
  'raw_attribute_types',
]);

async function modelInfo(target: ScenarioTarget, model: string): Promise<ModelInfo> {
  const res = await target.request('GET', `/v1/models/${encodeURIComponent(model)}`);
  if (res.status !== 200) throw new Error(`model ${model} is not served: ${res.status} ${res.text}`);
  const keys = [res.json.keys.partition, res.json.keys.sort].filter(Boolean);
  return { keys, types: new Map(res.json.attributes.map((a: Json) => [a.attribute, a.type])) };
}

function itemPath(scenario: Scenario, info: ModelInfo, key: Json): string {
  const parts = info.keys.map((k) => {
    if (key?.[k.attribute] === undefined) throw new Error(`step key is missing ${k.attribute}`);
    return encodeURIComponent(String(key[k.attribute]));
  });
  return `/v1/models/${encodeURIComponent(scenario.model)}/items/${parts.join('/')}`;
}

function rawKey(info: ModelInfo, key: Json): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const k of info.keys) {
    const v = key[k.attribute];
    out[k.attribute] = k.type === 'N' ? { N: String(v) } : k.type === 'B' ? { B: Buffer.from(String(v), 'base64') } : { S: String(v) };
  }
  return out;
}

const typeOf = (av: AttributeValue): string | undefined => Object.entries(av).find(([, v]) => v !== undefined)?.[0];

/** Sets compare order-insensitively (the fixtures' convention); everything else exactly. */
function sameValue(type: string | undefined, got: unknown, want: unknown): boolean {
  if (type && SETS.has(type) && Array.isArray(got) && Array.isArray(want)) {
    const norm = (a: unknown[]) => JSON.stringify(a.map((x) => JSON.stringify(x)).sort());
    return norm(got) === norm(want);
  }
  return JSON.stringify(got) === JSON.stringify(want);
}

async function send(target: ScenarioTarget, scenario: Scenario, info: ModelInfo, step: Step): Promise<TestResponse | undefined> {
  const items = `/v1/models/${encodeURIComponent(scenario.model)}/items`;
  switch (step.op) {
    case 'create':
      return target.request('POST', step.if_not_exists === true ? items : `${items}?ifNotExists=false`, step.item);
    case 'get':
      return target.request('GET', `${itemPath(scenario, info, step.key)}?consistent=true`);
    case 'update': {
      if (!Array.isArray(step.fields) || step.fields.length === 0) throw new Error('update needs fields');
      const set = Object.fromEntries(step.fields.map((f: string) => [f, step.item[f]]));
      const version = step.item.version;
      const headers: Record<string, string> = version === undefined ? {} : { 'if-match': `"${version}"` };
      return target.request('PATCH', itemPath(scenario, info, step.item), { set }, headers);
    }
    case 'delete':
      return target.request('DELETE', itemPath(scenario, info, step.key ?? step.item));
    case 'sleep':
      await new Promise((resolve) => setTimeout(resolve, Number(step.ms)));
      return undefined;
    default:
      throw new Error(`unknown op ${JSON.stringify(step.op)}`);
  }
}

async function check(t: Test, target: ScenarioTarget, scenario: Scenario, info: ModelInfo, step: Step, res: TestResponse, vars: Map<string, unknown>) {
  const expect: Json = step.expect ?? {};
  const unknown = Object.keys(expect).filter((k) => !EXPECTATIONS.has(k));
  t.same(unknown, [], 'every expectation is one the runner checks');
  const shown = `${res.status} ${res.text.slice(0, 300)}`;
  if (expect.error !== undefined) {
    t.ok(res.status >= 400 && res.status < 500, `fails with a 4xx (got ${shown})`);
    t.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, 'problem+json');
    t.equal(res.json?.code, expect.error, `code ${expect.error}`);
    return;
  }
  t.ok(res.status >= 200 && res.status < 300, `succeeds (got ${shown})`);
  const item: Json = res.json ?? {};
  for (const [field, want] of Object.entries((expect.item_contains ?? {}) as Json)) {
    const type = info.types.get(field);
    t.ok(sameValue(type, item[field], want), `${field} = ${JSON.stringify(want)} (got ${JSON.stringify(item[field])})`);
  }
  for (const field of expect.item_has_fields ?? []) t.ok(field in item, `has ${field}`);
  for (const field of expect.item_missing_fields ?? []) t.notOk(field in item, `has no ${field} (got ${JSON.stringify(item[field])})`);
  for (const [field, name] of Object.entries((expect.item_field_equals_var ?? {}) as Record<string, string>)) {
    t.ok(vars.has(name), `variable ${name} was saved`);
    t.equal(item[field], vars.get(name), `${field} equals saved ${name}`);
  }
  for (const [field, name] of Object.entries((expect.item_field_not_equals_var ?? {}) as Record<string, string>)) {
    t.ok(vars.has(name), `variable ${name} was saved`);
    t.not(item[field], vars.get(name), `${field} differs from saved ${name}`);
  }
  const rawTypes = (expect.raw_attribute_types ?? {}) as Record<string, string>;
  if (Object.keys(rawTypes).length > 0) {
    const raw = await target.rawItem(scenario.table.name, rawKey(info, step.key ?? step.item));
    if (!t.ok(raw, 'the item is in the backend table')) return;
    for (const [field, type] of Object.entries(rawTypes)) {
      t.equal(raw![field] ? typeOf(raw![field]) : undefined, type, `${field} is stored as ${type}`);
    }
  }
}

/** Plays every step in order, one subtest per step. */
export async function runScenario(t: Test, target: ScenarioTarget, scenario: Scenario): Promise<void> {
  const info = await modelInfo(target, scenario.model);
  const vars = new Map<string, unknown>();
  for (const [i, step] of scenario.steps.entries()) {
    await t.test(`step ${i + 1}: ${step.op}`, async (t) => {
      const res = await send(target, scenario, info, step);
      if (res === undefined) {
        t.same(Object.keys(step.expect ?? {}), [], `${step.op} expects nothing`);
        return;
      }
      await check(t, target, scenario, info, step, res, vars);
      for (const [name, field] of Object.entries((step.save ?? {}) as Record<string, string>)) {
        t.ok(res.json && field in res.json, `${field} is there to save as ${name}`);
        vars.set(name, res.json?.[field]);
      }
    });
  }
}
