// Live partner changes on moto, against the real CLI process (`node dist/cli.js`) under a steady load of writes from
// four concurrent loops. moto gives AssumeRole credentials the account of the role, so every partner's writes land in
// the tables of its role's account; each write's key names its partner and sequence number, and the test records when
// every request started. A reload is "acknowledged" when /metrics shows the new version; from then on:
//   - an added partner is served (no 403 for a request started after the acknowledgement);
//   - a partner whose role ARN changed to another account writes there, and nothing started after the
//     acknowledgement lands in the old account;
//   - a partner whose KMS key changed seals with the new key (the edk decrypts under it), and its old data keys are gone;
//   - a removed partner gets 403 ErrUnknownPartner, and 0 items started after the acknowledgement exist in its account;
//   - an invalid file keeps the running set, logs one line per error with its code, and counts a failed reload.
// Reloads come from SIGHUP and from file changes (an editor's write-and-rename, an in-place write).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { DynamoDBClient, GetItemCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity } from '@aws-sdk/types';
import t, { type Test } from 'tap';
import { cliEnv, launchCli, type LaunchedCli } from './helpers/cli.js';
import { kmsKeyInAccountOf } from './helpers/kms.js';
import { startMoto } from './helpers/moto.js';
import { send } from './helpers/sidecar.js';
import { tools, withTool } from './helpers/tools.js';

const REGION = 'me-central-1';
const RUN = randomUUID().slice(0, 8);
const ACCOUNT = { alpha: '761111111111', beta: '762222222222', beta2: '763333333333', delta: '764444444444', kappa: '765555555555' };
const role = (account: string, name: string) => `arn:aws:iam::${account}:role/dynamorm-reload-${name}`;
const LOAD_PARTNERS = ['alpha', 'beta', 'delta', 'kappa'] as const;
type LoadPartner = (typeof LOAD_PARTNERS)[number];

interface Entry {
  readonly roleArn: string;
  readonly kmsKeyArn?: string;
}

function partnersYaml(partners: Record<string, Entry>, extra: string[] = []): string {
  const lines = ['partners:'];
  for (const [id, p] of Object.entries(partners)) {
    lines.push(`  ${id}:`, `    roleArn: ${p.roleArn}`, `    region: ${REGION}`);
    if (p.kmsKeyArn) lines.push(`    kmsKeyArn: ${p.kmsKeyArn}`);
  }
  return [...lines, ...extra, ''].join('\n');
}

function jsonLines(text: string): Record<string, any>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, any>;
      } catch {
        return {};
      }
    });
}

/** Every sample of `name` in a Prometheus text exposition, with its labels. */
function samples(text: string, name: string): { labels: string; value: number }[] {
  const out: { labels: string; value: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.push({ labels: m[2] ?? '', value: Number(m[3]) });
  }
  return out;
}

async function assume(endpoint: string, roleArn: string): Promise<AwsCredentialIdentity> {
  const sts = new STSClient({ region: REGION, endpoint });
  try {
    const c = (await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'reload-test' }))).Credentials!;
    return { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken };
  } finally {
    sts.destroy();
  }
}

/** Every item of `users` in an account whose PK starts with `prefix`. */
async function scanPrefix(client: DynamoDBClient, prefix: string): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const out = await client.send(
      new ScanCommand({
        TableName: 'users',
        ConsistentRead: true,
        FilterExpression: 'begins_with(PK, :p)',
        ExpressionAttributeValues: { ':p': { S: prefix } },
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

interface Sent {
  readonly partner: LoadPartner;
  readonly seq: number;
  readonly startedAt: number;
  readonly status: number;
  readonly code: string | undefined;
}

const pkOf = (partner: string, seq: number) => `${RUN}#${partner}#${seq}`;
const seqOf = (pk: string) => Number(pk.split('#').pop());

await withTool(t, tools.moto(), 'live partner changes on moto (CLI process, under load)', async (t) => {
  const moto = await startMoto();
  t.teardown(() => moto.stop());
  await suite(t, moto.endpoint);
});

async function suite(t: Test, endpoint: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-reload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'partners.yml');
  /** An editor's save: a new file renamed over the old one (a watch on the file itself would lose track here). */
  const saveLikeAnEditor = (text: string) => {
    const tmp = join(dir, `.partners.yml.${randomUUID().slice(0, 6)}`);
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  };

  const k1 = await kmsKeyInAccountOf(endpoint, REGION, role(ACCOUNT.kappa, 'kappa'), `reload test ${RUN} k1`);
  const k2 = await kmsKeyInAccountOf(endpoint, REGION, role(ACCOUNT.kappa, 'kappa'), `reload test ${RUN} k2`);
  const roles = {
    alpha: role(ACCOUNT.alpha, 'alpha'),
    beta: role(ACCOUNT.beta, 'beta'),
    beta2: role(ACCOUNT.beta2, 'beta'),
    delta: role(ACCOUNT.delta, 'delta'),
    kappa: role(ACCOUNT.kappa, 'kappa'),
  };
  const raw = Object.fromEntries(
    await Promise.all(
      (Object.keys(roles) as (keyof typeof roles)[]).map(async (k) => [k, new DynamoDBClient({ region: REGION, endpoint, credentials: await assume(endpoint, roles[k]) })] as const),
    ),
  ) as Record<keyof typeof roles, DynamoDBClient>;
  const kappaKms = new KMSClient({ region: REGION, endpoint, credentials: await assume(endpoint, roles.kappa) });
  t.teardown(() => [...Object.values(raw), kappaKms].forEach((c) => c.destroy()));

  // delta's account gets its tables from --create-tables when delta is added (before the swap), beta2's likewise.
  let set: Record<string, Entry> = { alpha: { roleArn: roles.alpha }, beta: { roleArn: roles.beta }, kappa: { roleArn: roles.kappa, kmsKeyArn: k1 } };
  writeFileSync(file, partnersYaml(set));

  const cli = launchCli(
    [
      '--backend', 'aws', '--dynamodb-endpoint', endpoint, '--sts-endpoint', endpoint, '--kms-endpoint', endpoint,
      '--region', REGION, '--partners', file, '--create-tables', '--port', '0', '--log-level', 'info',
      '--max-event-loop-delay-ms', '0',
    ],
    cliEnv({ AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' }),
  );
  t.teardown(async () => {
    cli.child.kill('SIGTERM');
    await cli.done;
  });
  const url = await ready(cli);
  const logs = () => jsonLines(cli.out());
  /** The reload's log line: the metric can be scraped before the log line has come through the pipe. */
  const reloaded = async (v: number): Promise<Record<string, any> | undefined> => {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const line = logs().find((l) => l.version === v && /partners reloaded/.test(l.msg));
      if (line || Date.now() > deadline) return line;
      await delay(20);
    }
  };
  const metric = async (name: string, labels = ''): Promise<number | undefined> => {
    const text = await (await fetch(`${url}/metrics`)).text();
    return samples(text, name).find((s) => s.labels.includes(labels))?.value;
  };
  /** Polls /metrics until `name` satisfies `ok`; returns the time it was seen (the acknowledgement). */
  const until = async (what: string, name: string, ok: (v: number | undefined) => boolean, labels = ''): Promise<number> => {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (ok(await metric(name, labels))) return Date.now();
      await delay(20);
    }
    throw new Error(`${what}: ${name}${labels} is still ${await metric(name, labels)}\n${cli.out().slice(-3000)}`);
  };
  const version = () => metric('dynamorm_partners_config_version');
  /** Error lines with the reload code, once at least `n` have come through (or after 5 s). */
  const errorLines = async (n: number) => {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const lines = logs().filter((l) => l.code === 'ErrPartnerConfig' && l.level === 50);
      if (lines.length >= n || Date.now() > deadline) return lines;
      await delay(20);
    }
  };

  // ---- the load: four loops writing as alpha, beta, delta, kappa in turn, for the whole test ----
  const sent: Sent[] = [];
  let seq = 0;
  let stop = false;
  const loop = async (offset: number) => {
    for (let i = offset; !stop; i++) {
      const partner = LOAD_PARTNERS[i % LOAD_PARTNERS.length];
      const n = seq++;
      const item = {
        PK: pkOf(partner, n),
        SK: 'PROFILE',
        email: `${partner}-${n}@example.com`,
        name: partner,
        ...(partner === 'kappa' ? { taxId: `TAX-${n}` } : {}),
      };
      const startedAt = Date.now();
      const res = await send(url, 'POST', '/v1/models/User/items', item, { 'x-partner-id': partner });
      sent.push({ partner, seq: n, startedAt, status: res.status, code: res.json?.code });
    }
  };
  const loops = [0, 1, 2, 3].map((o) => loop(o));
  const after = (partner: LoadPartner, at: number) => sent.filter((s) => s.partner === partner && s.startedAt > at);
  /** Lets the load run until `partner` has at least `n` requests started after `at`. */
  const settle = async (partner: LoadPartner, at: number, n = 8) => {
    const deadline = Date.now() + 20_000;
    while (after(partner, at).length < n) {
      if (Date.now() > deadline) throw new Error(`${partner}: fewer than ${n} requests in 20 s (${after(partner, at).length})`);
      await delay(25);
    }
  };

  await settle('alpha', 0);
  await settle('kappa', 0);

  await t.test('boot: version 1, three partners, unknown delta refused', async (t) => {
    t.equal(await version(), 1, 'dynamorm_partners_config_version 1');
    t.equal(await metric('dynamorm_partners_configured'), 3);
    t.equal(await metric('dynamorm_partners_config_reload_failures_total'), 0);
    const alpha = sent.filter((s) => s.partner === 'alpha');
    t.ok(alpha.length > 0 && alpha.every((s) => s.status === 201), `alpha served (${alpha.length} requests)`);
    const delta = sent.filter((s) => s.partner === 'delta');
    t.ok(delta.length > 0 && delta.every((s) => s.status === 403 && s.code === 'ErrUnknownPartner'), `delta: 403 ErrUnknownPartner (${delta.length} requests)`);
  });

  await t.test('SIGHUP with the file unchanged: a new version, nothing dropped', async (t) => {
    const assumedBefore = await metric('dynamorm_sts_assume_role_total', 'partner="alpha"');
    const lastBefore = (await metric('dynamorm_partners_config_last_reload_timestamp_seconds'))!;
    cli.child.kill('SIGHUP');
    await until('SIGHUP reload', 'dynamorm_partners_config_version', (v) => v === 2);
    const line = await reloaded(2);
    t.equal(line?.trigger, 'SIGHUP', 'logged as a SIGHUP reload');
    t.same([line?.added, line?.removed, line?.changed], [[], [], []], 'nothing added, removed or changed');
    t.ok((await metric('dynamorm_partners_config_last_reload_timestamp_seconds'))! > lastBefore, 'last reload time moved');
    await settle('alpha', Date.now(), 4);
    t.equal(await metric('dynamorm_sts_assume_role_total', 'partner="alpha"'), assumedBefore, 'alpha kept its credentials: no AssumeRole');
    t.equal(cli.child.exitCode, null, 'still running (SIGHUP no longer shuts down with a partners file)');
  });

  await t.test('add a partner (editor save): served from its next request, tables created first', async (t) => {
    set = { ...set, delta: { roleArn: roles.delta } };
    saveLikeAnEditor(partnersYaml(set));
    const ack = await until('add delta', 'dynamorm_partners_config_version', (v) => v === 3);
    t.same((await reloaded(3))?.added, ['delta'], 'logged: delta added');
    t.equal((await reloaded(3))?.trigger, 'file', 'by the file watch');
    await settle('delta', ack);
    const late = after('delta', ack);
    t.same(late.filter((s) => s.status !== 201).slice(0, 3), [], `every delta request after the reload: 201 (${late.length})`);
    const stored = await scanPrefix(raw.delta, `${RUN}#delta#`);
    t.ok(late.every((s) => stored.some((i) => i.PK.S === pkOf('delta', s.seq))), `in account ${ACCOUNT.delta} (${stored.length} items)`);
    t.equal(await metric('dynamorm_partners_configured'), 4);
  });

  await t.test('change a role ARN to another account (in-place write + SIGHUP): no write lands in the old account after it', async (t) => {
    set = { ...set, beta: { roleArn: roles.beta2 } };
    writeFileSync(file, partnersYaml(set));
    cli.child.kill('SIGHUP');
    const ack = await until('change beta', 'dynamorm_partners_config_version', (v) => v === 4);
    await settle('beta', ack);
    await delay(500); // the file watch sees the same bytes: no second reload
    t.equal(await version(), 4, 'one reload for a write and a SIGHUP of the same content');
    const line = await reloaded(4);
    t.equal(line?.trigger, 'SIGHUP');
    t.same(line?.changed, ['beta'], 'logged: beta changed');
    const late = after('beta', ack);
    t.ok(late.length >= 8 && late.every((s) => s.status === 201), `beta served after the change (${late.length})`);
    const oldAccount = await scanPrefix(raw.beta, `${RUN}#beta#`);
    const newAccount = await scanPrefix(raw.beta2, `${RUN}#beta#`);
    const startedAt = new Map(sent.filter((s) => s.partner === 'beta').map((s) => [s.seq, s.startedAt]));
    const lateInOld = oldAccount.filter((i) => (startedAt.get(seqOf(i.PK.S!)) ?? Infinity) > ack);
    t.equal(lateInOld.length, 0, `0 items started after the reload in account ${ACCOUNT.beta} (it holds ${oldAccount.length})`);
    t.ok(oldAccount.length > 0, 'the old account did get the writes from before');
    const missing = late.filter((s) => !newAccount.some((i) => i.PK.S === pkOf('beta', s.seq)));
    t.same(missing.map((s) => s.seq), [], `every write after the reload is in account ${ACCOUNT.beta2} (${newAccount.length} items)`);
  });

  await t.test('change the KMS key (editor save): new envelopes under the new key, old data keys dropped', async (t) => {
    t.equal(await metric('dynamorm_data_key_caches'), 1, 'one data-key cache (kappa, key 1)');
    set = { ...set, kappa: { roleArn: roles.kappa, kmsKeyArn: k2 } };
    saveLikeAnEditor(partnersYaml(set));
    const ack = await until('change kappa', 'dynamorm_partners_config_version', (v) => v === 5);
    t.same((await reloaded(5))?.changed, ['kappa']);
    await settle('kappa', ack);
    const late = after('kappa', ack).filter((s) => s.status === 201);
    t.ok(late.length >= 8, `kappa served after the change (${late.length})`);
    const keys = new Set<string>();
    for (const s of late.slice(0, 10)) {
      const item = (await raw.kappa.send(new GetItemCommand({ TableName: 'users', Key: { PK: { S: pkOf('kappa', s.seq) }, SK: { S: 'PROFILE' } }, ConsistentRead: true }))).Item;
      const edk = item?.taxId?.M?.edk?.B;
      if (!t.ok(edk, `item ${s.seq}: an envelope`)) continue;
      keys.add((await kappaKms.send(new DecryptCommand({ CiphertextBlob: edk }))).KeyId!);
    }
    t.same([...keys], [k2], 'every envelope written after the change is sealed under key 2');
    t.equal(await metric('dynamorm_data_key_caches'), 1, "key 1's cache was dropped, not kept beside key 2's");
  });

  await t.test('remove two partners (editor save): 403 at once, nothing written after, clients closed, keys dropped', async (t) => {
    const liveBefore = (await metric('dynamorm_partner_clients', 'state="live"'))!;
    set = { beta: set.beta!, delta: set.delta! };
    saveLikeAnEditor(partnersYaml(set));
    const ack = await until('remove alpha, kappa', 'dynamorm_partners_config_version', (v) => v === 6);
    t.same((await reloaded(6))?.removed?.sort(), ['alpha', 'kappa'], 'logged: alpha and kappa removed');
    const assumed = await metric('dynamorm_sts_assume_role_total', 'partner="alpha"');
    await settle('alpha', ack);
    await settle('kappa', ack);
    for (const p of ['alpha', 'kappa'] as const) {
      const late = after(p, ack);
      t.ok(late.length >= 8, `${p}: ${late.length} requests after the reload`);
      t.same(late.filter((s) => s.status !== 403 || s.code !== 'ErrUnknownPartner').slice(0, 3), [], `${p}: every one 403 ErrUnknownPartner`);
      const stored = await scanPrefix(raw[p], `${RUN}#${p}#`);
      const startedAt = new Map(sent.filter((s) => s.partner === p).map((s) => [s.seq, s.startedAt]));
      const lateStored = stored.filter((i) => (startedAt.get(seqOf(i.PK.S!)) ?? Infinity) > ack);
      t.equal(lateStored.length, 0, `${p}: 0 items in account ${ACCOUNT[p]} from requests after the reload (${stored.length} from before)`);
    }
    t.equal(await metric('dynamorm_sts_assume_role_total', 'partner="alpha"'), assumed, 'no AssumeRole for a removed partner');
    await until('clients closed', 'dynamorm_partner_clients', (v) => v === 0, 'state="draining"');
    t.equal(await metric('dynamorm_partner_clients', 'state="live"'), liveBefore - 2, 'two fewer live client sets');
    t.equal(await metric('dynamorm_data_key_caches'), 0, "kappa's data keys dropped");
    t.equal(await metric('dynamorm_partners_configured'), 2);
  });

  await t.test('an invalid file (editor save, then SIGHUP): running set kept, every error logged, failures counted', async (t) => {
    const sha = samples(await (await fetch(`${url}/metrics`)).text(), 'dynamorm_partners_config_info')[0]?.labels;
    const bad = partnersYaml({ ...set, alpha: { roleArn: 'arn:aws:iam::12:role/short' } }, ['  kappa:', `    roleArn: ${roles.kappa}`, '    colour: blue']);
    saveLikeAnEditor(bad);
    const ack = await until('invalid file', 'dynamorm_partners_config_reload_failures_total', (v) => v === 1);
    const errors = await errorLines(3);
    t.ok(errors.some((l) => /partner "alpha": roleArn is not valid/.test(l.msg)), 'the bad role ARN on a line of its own');
    t.ok(errors.some((l) => /partner "kappa": unknown field colour/.test(l.msg)), 'the unknown field on a line of its own');
    t.ok(errors.some((l) => /rejected \(2 errors\); still serving version 6/.test(l.msg)), 'a summary naming the version kept');
    t.equal(errors.length, 3, 'two errors, one summary');
    t.equal(await version(), 6, 'version unchanged');
    t.equal(samples(await (await fetch(`${url}/metrics`)).text(), 'dynamorm_partners_config_info')[0]?.labels, sha, 'same content hash');
    await settle('delta', ack);
    await settle('alpha', ack, 4);
    t.ok(after('delta', ack).every((s) => s.status === 201), 'delta still served');
    t.ok(after('alpha', ack).every((s) => s.status === 403), 'alpha still removed');

    cli.child.kill('SIGHUP');
    await until('invalid file again', 'dynamorm_partners_config_reload_failures_total', (v) => v === 2);
    t.equal((await errorLines(6)).length, 6, 'SIGHUP retries the same bytes and logs them again');
    t.equal(await version(), 6);

    writeFileSync(file, partnersYaml(set));
    await until('fixed file', 'dynamorm_partners_config_version', (v) => v === 7);
    t.same((await reloaded(7))?.changed, [], 'the fixed file is the running set again: nothing changed');
  });

  stop = true;
  await Promise.all(loops);
  await t.test('the whole run', async (t) => {
    const unexpected = sent.filter((s) => s.status !== 201 && !(s.status === 403 && s.code === 'ErrUnknownPartner'));
    t.same(unexpected.slice(0, 5), [], `${sent.length} requests: only 201s and 403 ErrUnknownPartner`);
    t.ok(sent.length > 200, `a steady load (${sent.length} requests)`);
  });
}

async function ready(cli: LaunchedCli): Promise<string> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const line = jsonLines(cli.out()).find((l) => l.msg === 'dynamorm sidecar ready');
    if (line) return line.url as string;
    if (cli.child.exitCode !== null) throw new Error(`sidecar exited ${cli.child.exitCode}:\n${cli.err()}\n${cli.out()}`);
    await delay(50);
  }
  throw new Error(`sidecar not ready:\n${cli.err()}\n${cli.out()}`);
}
