import { readFile } from 'node:fs/promises';
import t from 'tap';
import { parse } from 'yaml';
import { startTestSidecar } from './helpers/sidecar.js';

const s = await startTestSidecar();
t.teardown(() => s.close());

t.test('committed openapi.yaml matches what the server serves', async (t) => {
  const committed = parse(await readFile('openapi.yaml', 'utf8'));
  const served = await s.request('GET', '/openapi.json');
  t.equal(served.status, 200);
  t.same(served.json, committed, 'run `npm run openapi` after changing schemas/ or routes');
  const yaml = await s.request('GET', '/openapi.yaml');
  t.same(parse(yaml.text), served.json);
});

t.test('the document is OpenAPI 3.1 with typed per-model operations', async (t) => {
  const doc = (await s.request('GET', '/openapi.json')).json;
  t.equal(doc.openapi, '3.1.0');
  for (const op of ['createUser', 'getUser', 'putUser', 'updateUser', 'deleteUser', 'createOrder', 'getBlob', 'listModels']) {
    const found = Object.values(doc.paths).some((p: any) => Object.values(p).some((o: any) => o.operationId === op));
    t.ok(found, `operation ${op} documented`);
  }
  t.ok(doc.components.schemas.User, 'User component');
  t.ok(doc.components.schemas.UserCreate.required.includes('PK'));
  t.equal(doc.components.schemas.UserCreate.additionalProperties, false);
});
