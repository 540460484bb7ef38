// Errors that say how to fix them: an unknown model lists the loaded ones (closest first), a 415 names the accepted
// content types, a path cut at an unencoded `#` hints at %23, and the request log line of a 4xx/5xx carries its code.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startSidecar } from '../src/server.js';
import { baseConfig, send, startTestSidecar } from './helpers/sidecar.js';
import { problem } from './helpers/assert.js';

const logLines: Record<string, any>[] = [];
let url: string;
let close: () => Promise<void>;

t.before(async () => {
  const stream = { write: (line: string) => void logLines.push(JSON.parse(line)) };
  const sidecar = await startSidecar({ ...baseConfig, logLevel: 'info' }, { level: 'info', stream });
  url = sidecar.url;
  close = () => sidecar.close();
});
t.teardown(() => close?.());

const request = (method: string, p: string, body?: unknown, headers?: Record<string, string>) => send(url, method, p, body, headers);

t.test('an unknown model lists the loaded models, the closest first', async (t) => {
  const lower = await request('GET', '/v1/models/user');
  problem(t, lower, 404, 'ErrModelNotFound', 'wrong case');
  t.match(lower.json?.detail, /^no model named user; loaded models, closest first: User, /, 'User first for "user"');
  for (const name of ['Order', 'Blob', 'Session']) t.match(lower.json?.detail, name, `lists ${name}`);
  const typo = await request('POST', '/v1/models/Sesion/query', { partition: 'x' });
  problem(t, typo, 404, 'ErrModelNotFound', 'a typo under a sub-path');
  t.match(typo.json?.detail, /closest first: Session, /, 'Session first for "Sesion"');
});

t.test('the list of model names is bounded', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dynamorm-hints-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const names = ['Alpha', 'Alpine', 'Beta', 'Gamma', 'Delta', 'Epsilon', 'Zeta'];
  const model = (name: string) =>
    [
      `  - name: ${name}`,
      `    table: { name: hints-${name.toLowerCase()} }`,
      '    keys:',
      '      partition: { attribute: id, type: S }',
      '    attributes:',
      '      - { attribute: id, type: S, required: true, roles: [pk] }',
      '      - { attribute: note, type: S, optional: true }',
    ].join('\n');
  writeFileSync(path.join(dir, 'many.yml'), `dms_version: "0.1"\nmodels:\n${names.map(model).join('\n')}\n`);
  const many = await startTestSidecar({ schemasDir: dir });
  t.teardown(() => many.close());
  const res = await many.request('GET', '/v1/models/Alpah');
  problem(t, res, 404, 'ErrModelNotFound', 'unknown among seven');
  t.match(res.json?.detail, /closest first: Alpha, Alpine, .* and 2 more \(GET \/v1\/models lists them\)$/, res.json?.detail);
  const listed = /closest first: (.*) and 2 more/.exec(res.json?.detail ?? '')?.[1].split(', ') ?? [];
  t.equal(listed.length, 5, 'five names');
});

t.test('a 415 names the content types that are accepted', async (t) => {
  const xml = await request('POST', '/v1/models/User/query', '<partition>x</partition>', { 'content-type': 'application/xml' });
  problem(t, xml, 415, 'ErrUnsupportedMediaType', 'XML body');
  t.match(xml.json?.detail, /content-type "application\/xml" is not accepted; send application\/json \(UTF-8\) or an application\/\*\+json type/);
  const text = await request('PATCH', '/v1/models/User/items/U%231/PROFILE', '{"set":{}}', { 'content-type': 'text/plain; charset=utf-8' });
  problem(t, text, 415, 'ErrUnsupportedMediaType', 'text/plain body');
  t.match(text.json?.detail, /"text\/plain" is not accepted; send application\/json/);
  const garbage = await request('POST', '/v1/models/User/query', '{}', { 'content-type': 'not a media type' });
  problem(t, garbage, 415, 'ErrUnsupportedMediaType', 'a content-type that is not a media type');
  t.match(garbage.json?.detail, /not a valid media type; send application\/json/);
  const merge = await request('POST', '/v1/models/Session/items', { id: 'h1', userId: 'u' }, { 'content-type': 'application/merge-patch+json' });
  t.equal(merge.status, 201, 'an application/*+json type is accepted, as the message says');
});

t.test('a path cut at an unencoded # hints at %23', async (t) => {
  // fetch('/v1/models/User/items/USER#1/PROFILE') sends /v1/models/User/items/USER: the rest is a fragment.
  for (const method of ['GET', 'PATCH', 'DELETE']) {
    const res = await request(method, '/v1/models/User/items/USER', method === 'PATCH' ? { set: { name: 'x' } } : undefined);
    problem(t, res, 400, 'ErrMissingPrimaryKey', `${method} without the sort key segment`);
    t.match(res.json?.detail, /User items are addressed as \/v1\/models\/User\/items\/\{PK\}\/\{SK\}, and this path has no SK segment/, `${method}: the path shape`);
    t.match(res.json?.detail, /percent-encode it as %23 \(USER#1 → USER%231\)/, `${method}: the fix`);
    t.equal(res.json?.attribute, 'SK');
  }
  // With only a partition key the cut path still names a key: the 404 shows which one, so the cut is visible.
  const session = await request('GET', '/v1/models/Session/items/sess');
  problem(t, session, 404, 'ErrItemNotFound', 'a model with only a partition key');
  t.equal(session.json?.detail, 'Session not found: no item with id "sess"', 'the key as received');
  const user = await request('GET', '/v1/models/User/items/USER%232/PROFILE');
  t.equal(user.json?.detail, 'User not found: no item with PK "USER#2" and SK "PROFILE"', 'both keys, decoded');
});

t.test('request log lines of 4xx/5xx carry the problem code', async (t) => {
  const res = await request('GET', '/v1/models/Nope', undefined, { 'x-request-id': 'hints-404' });
  t.equal(res.status, 404);
  const okRes = await request('GET', '/v1/models/User', undefined, { 'x-request-id': 'hints-200' });
  t.equal(okRes.status, 200);
  const bad = await request('POST', '/v1/models/User/scan', { filter: { attr: 'age', op: '=', value: 'x' } }, { 'x-request-id': 'hints-400' });
  t.equal(bad.status, 400);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const line = (id: string) => logLines.find((l) => l.reqId === id && l.msg === 'request');
  t.equal(line('hints-404')?.code, 'ErrModelNotFound', '404 line has the code');
  t.equal(line('hints-404')?.status, 404);
  t.equal(line('hints-400')?.code, 'ErrInvalidRequest', '400 line has the code');
  t.ok(line('hints-200'), 'the 200 line is there');
  t.notOk('code' in (line('hints-200') ?? {}), 'a 200 line has no code');
  t.notMatch(JSON.stringify(logLines), /"value":"x"/, 'no request values in the log');
});
