// Live partner changes in process, over dynalite (an embedded store reached on its loopback port) and a stand-in STS
// that answers AssumeRole and records each call's role: no moto needed. What the moto suite cannot pin down in time:
//   - a Kubernetes ConfigMap update (the `..data` symlink swapped, the old target directory deleted) is picked up, twice;
//   - a request already in flight when its partner is removed finishes with its clients (no 5xx), later ones get
//     403, and the clients close once it is answered (draining 1 → 0);
//   - a request waiting for AssumeRole when its partner's role changes never builds clients from the old role.
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { startTestSidecar, type TestSidecar } from './helpers/sidecar.js';

const role = (name: string) => `arn:aws:iam::123456789012:role/${name}`;
const KMS_KEY = 'arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-aaaa-bbbb-cccc-123456789012';
/** Partner id → role name; a role name ending in `+kms` also gives the partner a KMS key. */
const yaml = (partners: Record<string, string>) =>
  [
    'partners:',
    ...Object.entries(partners).flatMap(([id, roleName]) => [
      `  ${id}:`,
      `    roleArn: ${role(roleName.replace('+kms', ''))}`,
      ...(roleName.endsWith('+kms') ? [`    kmsKeyArn: ${KMS_KEY}`] : []),
    ]),
    '',
  ].join('\n');

interface Gate {
  promise: Promise<void>;
  open(): void;
}
function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** AssumeRole for any role; `hold` makes the answers for one role wait. */
async function startSts(): Promise<{ url: string; roles: string[]; issued: Map<string, string>; hold: Map<string, Promise<void>>; close(): Promise<void> }> {
  const roles: string[] = [];
  /** Access key id → the role it was issued for. */
  const issued = new Map<string, string>();
  const hold = new Map<string, Promise<void>>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', async () => {
      const roleArn = new URLSearchParams(body).get('RoleArn') ?? '';
      roles.push(roleArn);
      const accessKeyId = `ASIASTANDIN${String(roles.length).padStart(6, '0')}`;
      issued.set(accessKeyId, roleArn);
      await hold.get(roleArn);
      if (roleArn.includes('denied')) {
        res.writeHead(403, { 'content-type': 'text/xml' });
        res.end(
          '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code>' +
            '<Message>not authorized to assume this role</Message></Error><RequestId>1</RequestId></ErrorResponse>',
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(
        `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>` +
          `<AccessKeyId>${accessKeyId}</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken>` +
          `<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><Arn>${roleArn}</Arn>` +
          `<AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId>` +
          `</ResponseMetadata></AssumeRoleResponse>`,
      );
    });
  });
  const url = await listen(server);
  return { url, roles, issued, hold, close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}

/** Forwards to dynalite (which ignores credentials) and records each request's access key; while `held` is set, requests wait. */
async function startHoldingProxy(
  target: string,
): Promise<{ url: string; held: Gate | undefined; arrived: number; keys: string[]; close(): Promise<void> }> {
  const upstream = new URL(target);
  const state = { held: undefined as Gate | undefined, arrived: 0, keys: [] as string[] };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      state.arrived++;
      state.keys.push(/Credential=([^/]+)\//.exec(String(req.headers.authorization))?.[1] ?? '');
      await state.held?.promise;
      const fwd = httpRequest({ hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      fwd.on('error', () => res.destroy());
      fwd.end(Buffer.concat(chunks));
    });
  });
  const url = await listen(server);
  return Object.assign(state, {
    url,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  });
}

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

// The sidecar's own credentials sign its AssumeRole calls and boot checks; neither stand-in verifies them.
process.env.AWS_ACCESS_KEY_ID ??= 'local';
process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
const tables = await startTestSidecar();
t.teardown(() => tables.close());
const sts = await startSts();
t.teardown(() => sts.close());
const proxy = await startHoldingProxy(tables.sidecar.backend.endpoint!);
t.teardown(() => proxy.close());

async function sidecarOn(partnersFile: string, createTables = true): Promise<TestSidecar> {
  return startTestSidecar({
    backend: 'aws',
    dynamodbEndpoint: proxy.url,
    stsEndpoint: sts.url,
    region: 'us-east-1',
    partnersFile,
    requirePartner: true,
    createTables,
  });
}

const user = (pk: string) => ({ PK: pk, SK: 'PROFILE', email: `${pk}@example.com` });
const as = (p: string) => ({ 'x-partner-id': p });

t.test('a Kubernetes ConfigMap update (..data symlink swap) is reloaded, and the next one too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-configmap-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The layout kubelet writes: partners.yml → ..data/partners.yml, ..data → ..<timestamp>/
  const publish = (stamp: string, text: string, previous?: string) => {
    mkdirSync(join(dir, stamp));
    writeFileSync(join(dir, stamp, 'partners.yml'), text);
    symlinkSync(stamp, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    if (previous) rmSync(join(dir, previous), { recursive: true, force: true });
  };
  publish('..2026_11_30_01', yaml({ one: 'r-one' }));
  symlinkSync('..data/partners.yml', join(dir, 'partners.yml'));
  const s = await sidecarOn(join(dir, 'partners.yml'));
  t.teardown(() => s.close());
  const reloader = s.sidecar.partners!;

  t.equal((await s.request('POST', '/v1/models/User/items', user('cm-1'), as('one'))).status, 201, 'one served');
  t.equal((await s.request('POST', '/v1/models/User/items', user('cm-2'), as('two'))).status, 403, 'two unknown');

  publish('..2026_11_30_02', yaml({ one: 'r-one', two: 'r-two' }), '..2026_11_30_01');
  await until('the first swap', () => reloader.version === 2);
  t.equal((await s.request('POST', '/v1/models/User/items', user('cm-3'), as('two'))).status, 201, 'two served after the swap');

  publish('..2026_11_30_03', yaml({ two: 'r-two' }), '..2026_11_30_02');
  await until('the second swap', () => reloader.version === 3);
  const gone = await s.request('POST', '/v1/models/User/items', user('cm-4'), as('one'));
  t.equal(gone.status, 403, 'one removed by the second swap');
  t.equal(gone.json?.code, 'ErrUnknownPartner');
  t.equal(reloader.failures, 0, 'no failed reload on the way (the old target vanishing is not an error)');
});

t.test('a request in flight when its partner is removed finishes; its clients close once it is answered', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-inflight-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'partners.yml');
  writeFileSync(file, yaml({ keep: 'r-keep', leave: 'r-leave' }));
  const s = await sidecarOn(file);
  t.teardown(() => s.close());
  const pool = s.sidecar.pool!;
  t.equal((await s.request('POST', '/v1/models/User/items', user('if-1'), as('leave'))).status, 201);

  const liveBefore = pool.sizes.live;
  proxy.held = gate();
  const arrived = proxy.arrived;
  const inflight = s.request('GET', '/v1/models/User/items/if-1/PROFILE', undefined, as('leave'));
  await until('the GET to reach DynamoDB', () => proxy.arrived > arrived);
  writeFileSync(file, yaml({ keep: 'r-keep' }));
  const outcome = await s.sidecar.partners!.reload('SIGHUP');
  t.same(outcome.ok && outcome.changes.removed, ['leave'], 'leave removed');
  t.equal(pool.sizes.draining, 1, 'its clients drain: one request still uses them');
  const refused = s.request('GET', '/v1/models/User/items/if-1/PROFILE', undefined, as('leave'));
  t.equal((await refused).status, 403, 'a new request is refused at once, while the old one is still in flight');
  proxy.held.open();
  proxy.held = undefined;
  const done = await inflight;
  t.equal(done.status, 200, `the in-flight request finished with the old clients (${done.text.slice(0, 120)})`);
  await until('the drained clients to close', () => pool.sizes.draining === 0);
  t.equal(pool.sizes.live, liveBefore - 1, "leave's clients are no longer live");
  t.equal((await s.request('GET', '/v1/models/User/items/if-1/PROFILE', undefined, as('keep'))).status, 200, 'keep unaffected (same tables here)');
});

t.test('a request waiting for AssumeRole when the role changes is served with the new role', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-race-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'partners.yml');
  writeFileSync(file, yaml({ mover: 'r-old' }));
  // Tables exist already (dynalite has no accounts): without --create-tables nothing is assumed before the first request.
  const s = await sidecarOn(file, false);
  t.teardown(() => s.close());
  const held = gate();
  sts.hold.set(role('r-old'), held.promise);
  const before = sts.roles.length;
  const waiting = s.request('POST', '/v1/models/User/items', user('race-1'), as('mover'));
  await until('AssumeRole of r-old', () => sts.roles.slice(before).includes(role('r-old')));
  writeFileSync(file, yaml({ mover: 'r-new' }));
  await s.sidecar.partners!.reload('SIGHUP');
  const keysFrom = proxy.keys.length;
  held.open();
  t.equal((await waiting).status, 201, 'the waiting request is served');
  t.same(sts.roles.slice(before), [role('r-old'), role('r-new')], 'it assumed the new role after the change');
  const next = await s.request('POST', '/v1/models/User/items', user('race-2'), as('mover'));
  t.equal(next.status, 201);
  const roles = [...new Set(proxy.keys.slice(keysFrom).map((k) => sts.issued.get(k)))];
  t.same(roles, [role('r-new')], 'every DynamoDB call of both requests signed with credentials of the new role');
  t.equal(s.sidecar.pool!.built, 1, 'one client set built, from the new role');
});

t.test('a reload that needs what boot did not load (KMS), or whose tables cannot be made', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-prepare-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'partners.yml');
  writeFileSync(file, yaml({ plain: 'r-plain' }));
  const s = await sidecarOn(file);
  t.teardown(() => s.close());
  const reloader = s.sidecar.partners!;

  // The first partner with a KMS key arrives by reload: its clients need the KMS module, loaded before the swap.
  writeFileSync(file, yaml({ plain: 'r-plain', sealed: 'r-sealed+kms' }));
  const added = await reloader.reload('SIGHUP');
  t.same(added.ok && added.changes.added, ['sealed'], 'sealed added');
  const created = await s.request('POST', '/v1/models/User/items', user('kms-1'), as('sealed'));
  t.equal(created.status, 201, `a plain write as the partner with a KMS key (${created.text.slice(0, 160)})`);

  // --create-tables: a partner whose role cannot be assumed gets no tables, so the reload is rejected as a whole.
  writeFileSync(file, yaml({ plain: 'r-plain', sealed: 'r-sealed+kms', late: 'r-late', locked: 'r-denied' }));
  const rejected = await reloader.reload('SIGHUP');
  t.equal(rejected.ok, false, 'rejected');
  t.match(!rejected.ok && rejected.errors, [/partner "locked": cannot create its tables/], 'the error names the partner');
  t.equal(reloader.failures, 1, 'counted as a failed reload');
  t.equal(reloader.version, 2, 'version kept');
  t.equal((await s.request('POST', '/v1/models/User/items', user('late-1'), as('late'))).status, 403, 'late (valid) not added either: all or nothing');
  t.equal((await s.request('POST', '/v1/models/User/items', user('plain-1'), as('plain'))).status, 201, 'the running set serves on');
});
