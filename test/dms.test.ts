import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { DmsLoadError, loadModels, parseDmsText, validateDocument } from '../src/dms/index.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/dms/', import.meta.url));
const SCHEMAS = fileURLToPath(new URL('../schemas/', import.meta.url));

const fixture = (name: string): string => path.join(FIXTURES, name);

async function loadErrors(dir: string): Promise<string[]> {
  try {
    await loadModels(dir);
  } catch (err) {
    if (err instanceof DmsLoadError) return err.errors;
    throw err;
  }
  throw new Error(`expected ${dir} to be rejected`);
}

function parseErrors(text: string, file: string): string[] {
  try {
    parseDmsText(text, file);
  } catch (err) {
    if (err instanceof DmsLoadError) return err.errors;
    throw err;
  }
  throw new Error(`expected ${file} to be rejected`);
}

type Expectation = [file: string, ...parts: string[]];

async function rejects(t: Test, dir: string, ...expectations: Expectation[]): Promise<string[]> {
  const errors = await loadErrors(fixture(dir));
  for (const [file, ...parts] of expectations) {
    const prefix = `${path.join(fixture(dir), file)}: `;
    const hit = errors.find((error) => error.startsWith(prefix) && parts.every((part) => error.includes(part)));
    t.ok(hit, `${dir}: an error for ${file} mentions ${parts.map((p) => JSON.stringify(p)).join(' + ')}`, {
      errors,
    });
  }
  return errors;
}

const model = (name: string): string => `model "${name}"`;

t.test('schemas/ loads every example model', async (t) => {
  const loaded = await loadModels(SCHEMAS);
  t.same(
    loaded.map(({ model }) => model.name),
    ['Blob', 'Order', 'User', 'Session'],
  );
  t.same(
    loaded.map(({ file }) => path.basename(file)),
    ['catalog.json', 'orders.yml', 'users.yml', 'users.yml'],
  );
  t.equal(loaded[0].namespace, 'example.catalog');
  const user = loaded.find(({ model }) => model.name === 'User')?.model;
  t.equal(user?.attributes.length, 21);
  t.same(user?.indexes?.[0].partition, { attribute: 'email', type: 'S' });
  const order = loaded.find(({ model }) => model.name === 'Order')?.model;
  t.same(order?.indexes?.[1].projection, { type: 'INCLUDE', fields: ['total', 'currency'] });
});

t.test('a missing directory or one without model files is rejected', async (t) => {
  const missing = fixture('does-not-exist');
  t.same(await loadErrors(missing), [`${missing}: model directory does not exist`]);
  const empty = fixture('empty');
  t.same(await loadErrors(empty), [`${empty}: no model files (*.yml, *.yaml, *.json) found`]);
});

t.test('DmsLoadError lists every error in its message', async (t) => {
  const err = await loadModels(fixture('bad-format')).catch((e: unknown) => e);
  t.type(err, DmsLoadError);
  const { message, errors } = err as DmsLoadError;
  t.equal(message, `Invalid DMS models:\n${errors.map((e) => `  - ${e}`).join('\n')}`);
});

t.test('wrong dms_version', (t) =>
  rejects(t, 'wrong-version', ['model.yml', 'dms_version must be the string "0.1" (got 0.1)']),
);

t.test('missing partition key', (t) =>
  rejects(t, 'missing-partition', ['model.yml', model('Thing'), 'keys: partition key is required']),
);

t.test('key type not S/N/B', (t) =>
  rejects(t, 'key-type', ['model.yml', model('Thing'), 'keys: partition: type must be one of S, N, B']),
);

t.test('key attribute not declared', (t) =>
  rejects(t, 'key-undeclared', ['model.yml', model('Thing'), 'keys.sort: attribute "rev" is not declared']),
);

t.test('key type mismatch', (t) =>
  rejects(t, 'key-type-mismatch', [
    'model.yml',
    model('Thing'),
    'keys.partition: type N does not match attribute "id" declared type S',
  ]),
);

t.test('bad attribute type', (t) =>
  rejects(t, 'bad-attribute-type', ['model.yml', model('Thing'), 'attributes[1] (label): type must be one of']),
);

t.test('bad format/type combinations', async (t) => {
  const errors = await rejects(
    t,
    'bad-format',
    ['model.yml', 'attributes[1] (count): format int requires type N (got S)'],
    ['model.yml', 'attributes[2] (seenAt): format rfc3339nano requires type S (got N)'],
    ['model.yml', 'attributes[3] (expiry): format unix_seconds requires type N (got S)'],
    ['model.yml', 'attributes[4] (when): format must be one of'],
  );
  t.equal(errors.length, 4);
});

t.test('json on a non-S attribute', (t) =>
  rejects(t, 'json-non-s', ['model.yml', 'attributes[1] (settings): json: true requires type S (got M)']),
);

t.test('binary on a non-B attribute', (t) =>
  rejects(t, 'binary-non-b', ['model.yml', 'attributes[1] (blob): binary: true requires type B (got S)']),
);

t.test('encryption on a key attribute', async (t) => {
  const errors = await rejects(t, 'encryption-key', [
    'model.yml',
    `${model('Thing')}: attributes[0] (id): encryption is not allowed on key or index key attributes`,
  ]);
  t.equal(errors.length, 1, 'encryption on a non-key attribute is fine');
});

t.test('encryption on an index key attribute', (t) =>
  rejects(t, 'encryption-index-key', [
    'model.yml',
    `${model('Thing')}: attributes[1] (email): encryption is not allowed on key or index key attributes`,
  ]),
);

t.test('naming conventions', async (t) => {
  const errors = await rejects(
    t,
    'naming',
    ['camel.yml', model('Camel'), 'attributes[2] (first_name)', 'violates naming convention camelCase'],
    ['camel.yml', model('Camel'), 'attributes[3] (LastName)', 'violates naming convention camelCase'],
    ['snake.yml', model('Snake'), 'attributes[0] (PK)', 'violates naming convention snake_case'],
    ['snake.yml', model('Snake'), 'attributes[2] (lastName)', 'violates naming convention snake_case'],
    ['snake.yml', model('Snake'), 'attributes[3] (bad__name)', 'violates naming convention snake_case'],
  );
  t.notOk(
    errors.some((e) => e.includes('camel.yml') && /\((PK|SK)\)/.test(e)),
    'PK and SK are allowed in camelCase',
  );
  t.notOk(
    errors.some((e) => e.includes('first_name') && e.includes('snake.yml')),
    'first_name is valid snake_case',
  );
});

t.test('bad index projections', (t) =>
  rejects(
    t,
    'bad-projection',
    ['model.yml', 'indexes[0] (gsi-kind): projection: type must be one of ALL, KEYS_ONLY, INCLUDE'],
    ['model.yml', 'indexes[1] (gsi-kind-2): projection: fields is only allowed with projection type INCLUDE'],
    ['model.yml', 'indexes[2] (gsi-kind-3): projection.fields: "nope" is not a declared attribute'],
  ),
);

t.test('INCLUDE projection without fields', (t) =>
  rejects(t, 'include-no-fields', [
    'model.yml',
    'indexes[0] (gsi-kind): projection: type INCLUDE requires a non-empty fields list',
  ]),
);

t.test('LSI constraints', (t) =>
  rejects(
    t,
    'lsi',
    ['model.yml', 'indexes[0] (lsi-kind): LSI requires a sort key'],
    ['model.yml', 'indexes[0] (lsi-kind): LSI partition attribute "kind" must be the table partition key "id"'],
    ['model.yml', 'indexes[0] (lsi-kind): LSI requires the model to have a sort key'],
  ),
);

t.test('role naming an unknown index', (t) =>
  rejects(t, 'unknown-index-role', [
    'model.yml',
    'attributes[1] (kind): role "index_pk:gsi-missing" is invalid: unknown index "gsi-missing"',
  ]),
);

t.test('duplicate roles', (t) =>
  rejects(
    t,
    'duplicate-role',
    ['model.yml', 'attributes[2] (rev): role "version" is already assigned to attributes[1] (version)'],
    ['model.yml', 'attributes[3] (createdAt): role "created_at" is listed twice'],
  ),
);

t.test('unknown role', (t) =>
  rejects(t, 'unknown-role', ['model.yml', model('Thing'), 'attributes[0] (id): unknown role "primary"']),
);

t.test('duplicate attribute', (t) =>
  rejects(t, 'duplicate-attribute', [
    'model.yml',
    'attributes[2] (label): duplicate attribute "label" (also attributes[1] (label))',
  ]),
);

t.test('duplicate model names across files', (t) =>
  rejects(t, 'duplicate-model', [
    'b.json',
    model('Thing'),
    `duplicate model name "Thing" (also defined in ${path.join(fixture('duplicate-model'), 'a.yml')})`,
  ]),
);

t.test('models sharing a table must agree on its key schema', async (t) => {
  const errors = await rejects(t, 'shared-table', [
    'b.yml',
    model('Gamma'),
    'table "shared" key schema (partition PK N, sort none) conflicts with model "Alpha"',
    path.join(fixture('shared-table'), 'a.yml'),
  ]);
  t.equal(errors.length, 1, 'Alpha and Beta share a table with the same keys');
});

t.test('YAML anchors and aliases', (t) =>
  rejects(
    t,
    'yaml-anchor',
    ['model.yml', 'line 6', 'YAML anchors are not supported (&idkey)'],
    ['model.yml', 'line 8', 'YAML aliases are not supported (*idkey)'],
  ),
);

t.test('YAML tags', (t) =>
  rejects(
    t,
    'yaml-tag',
    ['model.yml', 'line 1', 'explicit YAML tags are not supported (tag:yaml.org,2002:str)'],
    ['model.yml', 'line 8', 'explicit YAML tags are not supported (!attr)'],
  ),
);

t.test('YAML merge keys', (t) =>
  rejects(t, 'yaml-merge', ['model.yml', 'line 8, column 9: YAML merge keys (<<) are not supported']),
);

t.test('duplicate YAML keys', (t) =>
  rejects(t, 'yaml-duplicate-key', ['model.yml', 'line 4, column 5: duplicate key "name"']),
);

t.test('invalid JSON', (t) => rejects(t, 'invalid-json', ['model.json', 'invalid JSON:', 'line 4']));

t.test('duplicate JSON keys', (t) =>
  rejects(t, 'json-duplicate-key', ['model.json', 'line 6, column 36: duplicate key "name"']),
);

t.test('a JSON key repeated through an escape is a duplicate too, and its offset is where it starts', async (t) => {
  const text = '{"dms_version": "0.1",\n "n\\u0061mespace": "a", "namespace": "b"}';
  const err = (() => {
    try {
      parseDmsText(text, 'escaped.json');
    } catch (e) {
      return e;
    }
  })();
  t.ok(err instanceof DmsLoadError, 'refused');
  t.match((err as DmsLoadError).errors, ['escaped.json: line 2, column 25: duplicate key "namespace"']);
  t.doesNotThrow(() => parseDmsText('{"a\\"b": 1, "a\\\\b": 2, "ab": 3}', 'distinct.json'), 'keys that differ only in escapes are distinct');
});

t.test('every error in a file is collected', async (t) => {
  const errors = await rejects(
    t,
    'multiple-errors',
    ['model.yml', 'unknown key "extra"'],
    ['model.yml', model('Thing'), 'table: name must be a DynamoDB table name'],
    ['model.yml', model('Thing'), 'attributes[0] (id): key attributes cannot be optional'],
    ['model.yml', model('Thing'), 'attributes[0] (id): json is not allowed on key attributes'],
    ['model.yml', model('Thing'), 'attributes[0] (id): omit_empty is not allowed on key attributes'],
    ['model.yml', model('Thing'), 'attributes[1] (flag): unknown key "colour"'],
    ['model.yml', model('Thing'), 'attributes[1] (flag): required and optional cannot both be true'],
    ['model.yml', model('Thing'), 'attributes[2] (made): role "created_at" requires type S (got N)'],
    ['model.yml', 'models[1]: name must be a non-empty string'],
    ['model.yml', 'models[1]: attributes must be a non-empty array'],
  );
  t.ok(errors.length >= 3, `${errors.length} errors reported`);
});

t.test('parseDmsText', async (t) => {
  t.same(parseDmsText('a: 2001-01-01\nb: yes\nc: 010\n', 'x.yml'), { a: '2001-01-01', b: 'yes', c: 10 });
  t.same(parseDmsText('{"a": [1, "x"]}', 'x.json'), { a: [1, 'x'] });
  t.same(parseErrors('a: .inf\n', 'x.yaml'), ['x.yaml: line 1, column 4: non-finite number .inf is not JSON-compatible']);
  t.same(parseErrors('a: 1\n---\nb: 2\n', 'x.yml').length, 1);
  t.same(parseErrors('{}', 'x.txt'), ['x.txt: unsupported file extension ".txt" (expected .yml, .yaml or .json)']);
});

t.test('validateDocument', async (t) => {
  t.same(validateDocument(null, 'f.yml'), {
    models: [],
    errors: ['f.yml: document must be an object with dms_version and models (got null)'],
  });
  const thing = {
    name: 'Thing',
    table: { name: 'things' },
    keys: { partition: { attribute: 'id', type: 'S' } },
    attributes: [{ attribute: 'id', type: 'S', roles: ['pk'] }],
  };
  const ok = validateDocument({ dms_version: '0.1', models: [thing] }, 'f.yml');
  t.same(ok, { models: [thing], errors: [] });
  const dup = validateDocument({ dms_version: '0.1', models: [thing, thing] }, 'f.yml');
  t.same(dup.errors, ['f.yml: model "Thing": duplicate model name "Thing" (also defined in f.yml)']);
});
