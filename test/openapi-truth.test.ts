// The OpenAPI document tells the truth: the examples /docs pre-fills succeed against the example schemas, the
// statuses a route can answer (404, 409, 412) are documented, and the schemas refuse what the API refuses.
import t from 'tap';
import { startTestSidecar } from './helpers/sidecar.js';

type Json = Record<string, any>;

const s = await startTestSidecar();
t.teardown(() => s.close());
const doc = (await s.request('GET', '/openapi.json')).json as Json;
const MODELS = ['User', 'Session', 'Order', 'Blob'];
/** A single-value schema (`const`, which the generator may write as a one-value `enum`). */
const only = (schema: Json | undefined): unknown => schema?.const ?? (schema?.enum?.length === 1 ? schema.enum[0] : undefined);

const op = (path: string, method: string): Json => {
  const found = doc.paths[path]?.[method];
  if (!found) throw new Error(`no ${method} ${path} in the document`);
  return found;
};
/** The body example Swagger UI pre-fills: the media type's, or the referenced component schema's. */
function bodyExample(o: Json): unknown {
  const media = o.requestBody?.content?.['application/json'];
  if (media?.example !== undefined) return media.example;
  const ref = media?.schema?.$ref as string | undefined;
  return ref ? doc.components.schemas[ref.split('/').at(-1)!].examples?.[0] : undefined;
}
const itemPath = (model: string) => Object.keys(doc.paths).find((p) => p.startsWith(`/v1/models/${model}/items/{pk}`))!;

/** The path with each parameter replaced by its documented example. */
function fill(path: string, o: Json): string {
  return path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const param = (o.parameters as Json[]).find((p) => p.in === 'path' && p.name === name);
    const example = param?.example ?? param?.schema?.examples?.[0];
    if (example === undefined) throw new Error(`no example for ${name} in ${path}`);
    return encodeURIComponent(String(example));
  });
}

t.test('every pre-filled example is a request that succeeds', async (t) => {
  for (const model of MODELS) {
    const items = `/v1/models/${model}/items`;
    const one = itemPath(model);
    const steps: [string, string, string, number][] = [
      ['post', items, items, 201],
      ['get', one, fill(one, op(one, 'get')), 200],
      ['put', one, fill(one, op(one, 'put')), 200],
      ['patch', one, fill(one, op(one, 'patch')), 200],
      ['post', `/v1/models/${model}/query`, `/v1/models/${model}/query`, 200],
      ['post', `/v1/models/${model}/scan`, `/v1/models/${model}/scan`, 200],
      ['post', `/v1/models/${model}/batch-write`, `/v1/models/${model}/batch-write`, 200],
      ['post', `/v1/models/${model}/batch-get`, `/v1/models/${model}/batch-get`, 200],
    ];
    for (const [method, path, url, status] of steps) {
      const o = op(path, method);
      const example = bodyExample(o);
      if (method !== 'get' && method !== 'delete') t.ok(example !== undefined, `${model}: ${method} ${path} has an example body`);
      const res = await s.request(method.toUpperCase(), url, example);
      t.equal(res.status, status, `${model}: the ${method} ${path} example → ${status}`, { body: res.text, example });
    }
    const query = bodyExample(op(`/v1/models/${model}/query`, 'post')) as Json;
    const found = await s.request('POST', `/v1/models/${model}/query`, query);
    t.equal(found.json?.items?.length, 1, `${model}: the query example finds the item the examples wrote`);
    const del = await s.request('DELETE', fill(one, op(one, 'delete')));
    t.equal(del.status, 204, `${model}: the delete example → 204`);
  }
  for (const path of ['/v1/transactions/write', '/v1/transactions/get']) {
    const example = bodyExample(op(path, 'post'));
    t.ok(example, `${path} has an example body`);
    const res = await s.request('POST', path, example);
    t.equal(res.status, 200, `the ${path} example → 200`, { body: res.text });
  }
});

t.test('no example carries a version the API would refuse', async (t) => {
  for (const model of MODELS) {
    const example = bodyExample(op(`/v1/models/${model}/items`, 'post')) as Json;
    t.notOk('version' in example, `${model}: the create example has no version`);
  }
});

t.test('404, 409 and 412 are documented problem+json responses where they happen', async (t) => {
  const problemJson = (r: Json | undefined) => r?.content?.['application/problem+json']?.schema?.$ref;
  for (const model of MODELS) {
    const one = itemPath(model);
    const expect: [string, string, string[]][] = [
      [`/v1/models/${model}/items`, 'post', ['409', '412']],
      [one, 'get', ['404']],
      [one, 'put', ['412']],
      [one, 'patch', ['404', '412']],
      [one, 'delete', ['404', '412']],
    ];
    for (const [path, method, statuses] of expect) {
      for (const status of statuses) {
        const response = op(path, method).responses[status];
        t.equal(problemJson(response), '#/components/schemas/Problem', `${model}: ${method} ${path} documents ${status}`);
        t.ok(response?.description, `${model}: ${method} ${path} ${status} says why`);
      }
    }
  }
  t.ok(op('/v1/transactions/write', 'post').responses['409'], 'transactions/write documents 409');
  // The documented 412 is what the API answers.
  t.equal((await s.request('POST', '/v1/models/Blob/items', { ns: 412, digest: 'AQID' })).status, 201);
  const stale = await s.request('PUT', '/v1/models/Blob/items/412/AQID', {}, { 'if-match': '"7"' });
  t.equal(stale.status, 412, 'a stale If-Match is a 412');
});

t.test('the schemas refuse what the API refuses', async (t) => {
  const blob = op(itemPath('Blob'), 'get').parameters as Json[];
  const param = (name: string) => blob.find((p) => p.name === name)!.schema;
  t.match(param('pk'), { pattern: String }, 'an N key in the path has a decimal pattern');
  t.match(param('sk'), { minLength: 1, pattern: String }, 'a B key in the path is non-empty base64url');
  t.notOk(new RegExp(param('pk').pattern).test('x7'), 'x7 is not a decimal');
  t.notOk(new RegExp(param('sk').pattern).test('a'), 'a is not base64url');
  t.ok(new RegExp(param('sk').pattern).test('3q2-7w'), '3q2-7w is base64url');
  t.equal(doc.components.schemas.UserKey.properties.PK.minLength, 1, 'key strings are non-empty');
  t.equal(doc.components.schemas.UserCreate.properties.email.minLength, 1, 'index key strings are non-empty');

  const query = op('/v1/models/User/query', 'post').requestBody.content['application/json'].schema;
  const shapes = query.anyOf as Json[];
  const gsi = shapes.find((b) => only(b.properties.index) === 'gsi-email')!;
  t.ok(gsi, 'a query shape per index');
  t.notOk('sort' in gsi.properties, 'an index without a sort key has no sort condition');
  t.ok('sort' in shapes.find((b) => !b.properties.index)!.properties, 'the table (with a sort key) has one');

  const tx = op('/v1/transactions/write', 'post').requestBody.content['application/json'].schema.properties.items.items.anyOf as Json[];
  const put = tx.find((b) => only(b.properties.op) === 'put' && only(b.properties.model) === 'User')!;
  t.ok(put.required.includes('item'), 'a transaction put requires item');
  const check = tx.filter((b) => only(b.properties.op) === 'check' && only(b.properties.model) === 'User');
  t.ok(check.every((b) => b.required.includes('condition') || b.required.includes('version')), 'a check requires a condition or a version');

  // What the document refuses, the API refuses with the stable codes.
  t.equal((await s.request('GET', '/v1/models/Blob/items/x7/AQID')).json?.code, 'ErrMissingPrimaryKey');
  t.equal((await s.request('POST', '/v1/models/User/items', { PK: '', SK: 'b', email: 'e' })).json?.code, 'ErrMissingPrimaryKey');
  t.equal((await s.request('POST', '/v1/transactions/write', { items: [{ op: 'put', model: 'User' }] })).json?.code, 'ErrInvalidRequest');
  t.equal((await s.request('POST', '/v1/models/User/query', { index: 'gsi-email', partition: 'e', sort: { op: '=', value: 'x' } })).json?.code, 'ErrInvalidRequest');
});
