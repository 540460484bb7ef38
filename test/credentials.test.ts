// Unit tests (no moto) for the per-partner AssumeRole cache in src/store/partners/credentials.ts and the partners-file
// validation in src/store/partners/config.ts. STS is a fake `send` whose answers the test controls; the clock is
// injected, so expiry, the 5-minute refresh window and the failure backoff are exercised without waiting.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AssumeRoleCommand, type AssumeRoleCommandInput } from '@aws-sdk/client-sts';
import t, { type Test } from 'tap';
import { ConfigError, loadConfig } from '../src/config.js';
import { SidecarError } from '../src/errors.js';
import { PartnerConfigError, parsePartners, type PartnerConfig } from '../src/store/partners/config.js';
import { RoleCredentials, sessionName } from '../src/store/partners/credentials.js';
import { runCli } from './helpers/cli.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = Date.UTC(2030, 0, 1);

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type Answer = { ok: true; expiresAt: number; key: string } | { ok: false; error: Error };

/**
 * A fake STS: every `send` is recorded; it answers with the next scripted answer, or (when `hold` is set) waits for
 * the test to release it. Credentials carry a recognisable access key id so the test can tell generations apart.
 */
class FakeSts {
  readonly calls: AssumeRoleCommandInput[] = [];
  readonly commands: unknown[] = [];
  #answers: Answer[] = [];
  #held: Array<Deferred<void>> = [];
  hold = false;

  next(answer: Answer): void {
    this.#answers.push(answer);
  }

  /** Let every held call proceed. */
  release(): void {
    for (const d of this.#held.splice(0)) d.resolve();
  }

  readonly send = async (command: unknown): Promise<any> => {
    this.commands.push(command);
    this.calls.push((command as AssumeRoleCommand).input);
    const answer = this.#answers.shift();
    if (this.hold) {
      const d = deferred<void>();
      this.#held.push(d);
      await d.promise;
    }
    if (!answer) throw new Error('FakeSts: no scripted answer');
    if (!answer.ok) throw answer.error;
    return {
      Credentials: {
        AccessKeyId: answer.key,
        SecretAccessKey: `secret-${answer.key}`,
        SessionToken: `token-${answer.key}`,
        Expiration: new Date(answer.expiresAt),
      },
    };
  };
}

class Clock {
  constructor(public ms: number) {}
  readonly now = () => this.ms;
}

const partner = (extra: Partial<PartnerConfig> = {}): PartnerConfig => ({
  id: 'acme',
  roleArn: 'arn:aws:iam::111111111111:role/dynamorm',
  durationSeconds: 3600,
  ...extra,
});

function stsError(name = 'AccessDenied'): Error {
  const err = new Error('User is not authorized to perform sts:AssumeRole (arn:aws:iam::111111111111:role/dynamorm)');
  err.name = name;
  return err;
}

/** Resolves with the error a promise rejects with (fails the test when it resolves). */
async function rejection(t: Test, p: Promise<unknown>, what: string): Promise<unknown> {
  try {
    const v = await p;
    t.fail(`${what}: expected a rejection, got ${JSON.stringify(v)}`);
    return undefined;
  } catch (err) {
    return err;
  }
}

function isPartnerCredentialsError(t: Test, err: unknown, what: string): void {
  t.ok(err instanceof SidecarError, `${what}: a SidecarError`);
  const e = err as SidecarError;
  t.equal(e?.code, 'ErrPartnerCredentials', `${what}: code ErrPartnerCredentials`);
  t.equal(e?.status, 503, `${what}: status 503`);
  t.notMatch(e?.detail ?? '', /secret-|token-/, `${what}: no credential material in the detail`);
}

const flush = () => new Promise((r) => setImmediate(r));

t.test('RoleCredentials', async (t) => {
  t.test('1,000 concurrent first get() calls share one AssumeRole', async (t) => {
    const sts = new FakeSts();
    const clock = new Clock(T0);
    sts.hold = true;
    sts.next({ ok: true, expiresAt: T0 + HOUR, key: 'GEN1' });
    const creds = new RoleCredentials({ sts, partner: partner(), now: clock.now });
    const all = Array.from({ length: 1000 }, () => creds.get());
    await flush();
    t.equal(sts.calls.length, 1, 'one AssumeRole while all 1,000 wait');
    sts.release();
    const got = await Promise.all(all);
    t.equal(sts.calls.length, 1, 'still one AssumeRole after they resolve');
    t.ok(got.every((c) => c.accessKeyId === 'GEN1'), 'all 1,000 callers got the same credentials');
    t.equal(got[0].secretAccessKey, 'secret-GEN1');
    t.equal(got[0].sessionToken, 'token-GEN1');
    t.ok(sts.commands[0] instanceof AssumeRoleCommand, 'an AssumeRoleCommand was sent');

    // Cached afterwards: another 1,000 calls, sequential and concurrent, no STS traffic.
    for (let i = 0; i < 500; i++) await creds.get();
    await Promise.all(Array.from({ length: 500 }, () => creds.get()));
    t.equal(sts.calls.length, 1, 'cached credentials served without STS');
    t.equal((await creds.provide()).accessKeyId, 'GEN1', 'provide() is the same cache');
    t.equal(sts.calls.length, 1);
  });

  t.test('AssumeRole input: role, session name dynamorm-<id>, duration, ExternalId', async (t) => {
    const sts = new FakeSts();
    sts.next({ ok: true, expiresAt: T0 + HOUR, key: 'A' });
    sts.next({ ok: true, expiresAt: T0 + HOUR, key: 'B' });
    const clock = new Clock(T0);
    await new RoleCredentials({ sts, partner: partner({ externalId: 'ext-123', durationSeconds: 900 }), now: clock.now }).get();
    await new RoleCredentials({ sts, partner: partner({ id: 'beta.co_2' }), now: clock.now }).get();
    t.same(sts.calls[0], {
      RoleArn: 'arn:aws:iam::111111111111:role/dynamorm',
      RoleSessionName: 'dynamorm-acme',
      DurationSeconds: 900,
      ExternalId: 'ext-123',
    });
    t.equal(sts.calls[1].RoleSessionName, 'dynamorm-beta.co_2');
    t.equal(sts.calls[1].DurationSeconds, 3600);
    t.notOk('ExternalId' in sts.calls[1], 'no ExternalId when the partner has none');
    t.equal(sessionName('acme'), 'dynamorm-acme');
    const long = 'p'.repeat(64);
    t.equal(sessionName(long).length, 64, 'session name cut to 64 characters');
    t.match(sessionName(long), /^dynamorm-p+$/);
  });

  t.test('refresh starts 5 minutes before expiry; callers meanwhile get the old, still-valid credentials', async (t) => {
    const sts = new FakeSts();
    const clock = new Clock(T0);
    const expiry = T0 + HOUR;
    sts.next({ ok: true, expiresAt: expiry, key: 'OLD' });
    const creds = new RoleCredentials({ sts, partner: partner(), now: clock.now });
    t.equal((await creds.get()).accessKeyId, 'OLD');

    clock.ms = expiry - 5 * MIN - 1;
    t.equal((await creds.get()).accessKeyId, 'OLD', 'just outside the refresh window: cached');
    t.equal(sts.calls.length, 1, 'no refresh yet');

    clock.ms = expiry - 5 * MIN;
    sts.hold = true;
    sts.next({ ok: true, expiresAt: expiry + HOUR, key: 'NEW' });
    const during = await Promise.all(Array.from({ length: 200 }, () => creds.get()));
    t.equal(sts.calls.length, 2, 'exactly one refresh call started at expiry - 5 min');
    t.ok(during.every((c) => c.accessKeyId === 'OLD'), 'all 200 callers during the refresh got the old credentials at once');
    clock.ms += MIN;
    const later = await Promise.all(Array.from({ length: 50 }, () => creds.get()));
    t.ok(later.every((c) => c.accessKeyId === 'OLD'), 'still the old ones while the refresh is in flight');
    t.equal(sts.calls.length, 2, 'no second refresh while one is in flight');

    sts.release();
    await flush();
    t.equal((await creds.get()).accessKeyId, 'NEW', 'refreshed credentials served afterwards');
    t.equal(sts.calls.length, 2);
  });

  t.test('expired credentials: callers wait for the refresh instead of getting expired ones', async (t) => {
    const sts = new FakeSts();
    const clock = new Clock(T0);
    sts.next({ ok: true, expiresAt: T0 + HOUR, key: 'OLD' });
    const creds = new RoleCredentials({ sts, partner: partner(), now: clock.now });
    await creds.get();
    clock.ms = T0 + HOUR + 1;
    sts.hold = true;
    sts.next({ ok: true, expiresAt: T0 + 3 * HOUR, key: 'NEW' });
    const waiting = Array.from({ length: 100 }, () => creds.get());
    await flush();
    t.equal(sts.calls.length, 2, 'one refresh for 100 callers');
    sts.release();
    const got = await Promise.all(waiting);
    t.ok(got.every((c) => c.accessKeyId === 'NEW'), 'every waiting caller got the new credentials, none the expired ones');
  });

  t.test('STS failing while credentials are still valid: old credentials are served', async (t) => {
    const sts = new FakeSts();
    const clock = new Clock(T0);
    const outcomes: string[] = [];
    sts.next({ ok: true, expiresAt: T0 + HOUR, key: 'OLD' });
    const creds = new RoleCredentials({ sts, partner: partner(), now: clock.now, onAssumeRole: (o) => outcomes.push(o) });
    await creds.get();

    clock.ms = T0 + HOUR - 4 * MIN; // inside the refresh window, still valid
    sts.next({ ok: false, error: stsError('ThrottlingException') });
    t.equal((await creds.get()).accessKeyId, 'OLD', 'refresh fails: old credentials served');
    await flush();
    t.equal(sts.calls.length, 2, 'one refresh attempt');
    const again = await Promise.all(Array.from({ length: 100 }, () => creds.get()));
    t.ok(again.every((c) => c.accessKeyId === 'OLD'), 'still served during the failure backoff');
    t.equal(sts.calls.length, 2, 'no retry storm within the backoff');

    clock.ms += 6_000; // past the default 5 s backoff
    sts.next({ ok: false, error: stsError('ThrottlingException') });
    t.equal((await creds.get()).accessKeyId, 'OLD');
    await flush();
    t.equal(sts.calls.length, 3, 'a new attempt after the backoff');

    clock.ms += 6_000;
    sts.next({ ok: true, expiresAt: T0 + 2 * HOUR, key: 'NEW' });
    await creds.get();
    await flush();
    t.equal((await creds.get()).accessKeyId, 'NEW', 'recovers once STS answers again');
    t.same(outcomes, ['ok', 'error', 'error', 'ok'], 'onAssumeRole reports each outcome');
  });

  t.test('STS failing with expired credentials: 503 ErrPartnerCredentials, and no STS storm within the backoff', async (t) => {
    const sts = new FakeSts();
    const clock = new Clock(T0);
    sts.next({ ok: true, expiresAt: T0 + HOUR, key: 'OLD' });
    const creds = new RoleCredentials({ sts, partner: partner(), now: clock.now, failureBackoffMs: 5_000 });
    await creds.get();

    clock.ms = T0 + HOUR + MIN; // expired
    sts.next({ ok: false, error: stsError() });
    const first = await rejection(t, creds.get(), 'expired + STS down');
    isPartnerCredentialsError(t, first, 'expired + STS down');
    t.notMatch((first as SidecarError).detail, /arn:aws:iam|not authorized/, 'the STS message (which quotes ARNs) is not passed on');
    t.equal((first as SidecarError).extra?.retryAfter, 5, 'retryAfter hint');
    t.equal(sts.calls.length, 2);

    const storm = await Promise.all(Array.from({ length: 500 }, () => rejection(t, creds.get(), 'within backoff')));
    t.ok(storm.every((e) => e instanceof SidecarError && e.code === 'ErrPartnerCredentials'), 'all 500 fail fast with ErrPartnerCredentials');
    clock.ms += 4_999;
    isPartnerCredentialsError(t, await rejection(t, creds.get(), 'end of backoff'), 'end of backoff');
    t.equal(sts.calls.length, 2, 'no STS call within the backoff window');

    clock.ms += 2;
    sts.next({ ok: false, error: stsError() });
    isPartnerCredentialsError(t, await rejection(t, creds.get(), 'after backoff'), 'after backoff, still failing');
    t.equal(sts.calls.length, 3, 'exactly one new attempt after the backoff');

    clock.ms += 5_001;
    sts.next({ ok: true, expiresAt: clock.ms + HOUR, key: 'NEW' });
    t.equal((await creds.get()).accessKeyId, 'NEW', 'recovers when STS answers');
  });

  t.test('credentials that expire within seconds are not handed out while STS fails', async (t) => {
    const sts = new FakeSts();
    const clock = new Clock(T0);
    sts.next({ ok: true, expiresAt: T0 + HOUR, key: 'OLD' });
    const creds = new RoleCredentials({ sts, partner: partner(), now: clock.now });
    await creds.get();
    clock.ms = T0 + HOUR - 5_000; // 5 s left: too close to use
    sts.next({ ok: false, error: stsError() });
    isPartnerCredentialsError(t, await rejection(t, creds.get(), 'nearly expired'), 'nearly expired + STS down');
  });

  t.test('first call failing: 503; concurrent callers share the failed call', async (t) => {
    const sts = new FakeSts();
    const clock = new Clock(T0);
    sts.hold = true;
    sts.next({ ok: false, error: stsError() });
    const creds = new RoleCredentials({ sts, partner: partner(), now: clock.now });
    const all = Array.from({ length: 100 }, () => rejection(t, creds.get(), 'first call'));
    await flush();
    sts.release();
    const errors = await Promise.all(all);
    t.equal(sts.calls.length, 1, 'one AssumeRole for 100 callers');
    t.ok(errors.every((e) => e instanceof SidecarError && e.code === 'ErrPartnerCredentials' && e.status === 503), 'all 503 ErrPartnerCredentials');
  });

  t.test('an answer without credentials is a failure', async (t) => {
    const clock = new Clock(T0);
    const sts = { send: async () => ({ Credentials: undefined }) };
    const creds = new RoleCredentials({ sts, partner: partner(), now: clock.now });
    isPartnerCredentialsError(t, await rejection(t, creds.get(), 'no credentials'), 'no credentials in the answer');
  });
});

t.test('parsePartners', async (t) => {
  t.test('a valid file (YAML and JSON)', async (t) => {
    const yaml = [
      'partners:',
      '  acme:',
      '    roleArn: arn:aws:iam::111111111111:role/dynamorm',
      '    externalId: ext-1',
      '    region: eu-west-1',
      '    durationSeconds: 900',
      '    kmsKeyArn: arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      '    endpoint: http://127.0.0.1:4566',
      '  beta.co_2:',
      '    roleArn: arn:aws:iam::222222222222:role/path/to/role',
      '    durationSeconds: 43200',
    ].join('\n');
    const p = parsePartners(yaml, 'partners.yml');
    t.same([...p.keys()], ['acme', 'beta.co_2']);
    t.same(p.get('acme'), {
      id: 'acme',
      roleArn: 'arn:aws:iam::111111111111:role/dynamorm',
      externalId: 'ext-1',
      region: 'eu-west-1',
      durationSeconds: 900,
      kmsKeyArn: 'arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      endpoint: 'http://127.0.0.1:4566',
    });
    t.equal(p.get('beta.co_2')?.durationSeconds, 43200, 'upper bound accepted');
    const json = parsePartners(JSON.stringify({ partners: { c: { roleArn: 'arn:aws:iam::333333333333:role/r' } } }), 'p.json');
    t.equal(json.get('c')?.durationSeconds, 3600, 'default duration 3600');
    t.same(Object.keys(json.get('c')!).sort(), ['durationSeconds', 'id', 'roleArn'], 'no undefined optional fields');
  });

  t.test('every error reported at once', async (t) => {
    const doc = {
      partners: {
        badarn: { roleArn: 'arn:aws:iam::12345:role/x' },
        short: { roleArn: 'arn:aws:iam::111111111111:role/x', durationSeconds: 899 },
        long: { roleArn: 'arn:aws:iam::111111111111:role/x', durationSeconds: 43201 },
        extra: { roleArn: 'arn:aws:iam::111111111111:role/x', sessionPolicy: 'x' },
        'bad id!': { roleArn: 'arn:aws:iam::111111111111:role/x' },
        good: { roleArn: 'arn:aws:iam::111111111111:role/x' },
      },
    };
    let caught: unknown;
    try {
      parsePartners(JSON.stringify(doc), 'partners.json');
    } catch (err) {
      caught = err;
    }
    t.ok(caught instanceof PartnerConfigError, 'PartnerConfigError');
    const errors = (caught as PartnerConfigError).errors ?? [];
    const has = (re: RegExp, what: string) => {
      if (!t.ok(errors.some((e) => re.test(e)), what)) t.comment(`errors: ${JSON.stringify(errors)}`);
    };
    has(/"badarn".*roleArn/, 'bad ARN named');
    has(/"short".*durationSeconds/, 'durationSeconds 899 rejected');
    has(/"long".*durationSeconds/, 'durationSeconds 43201 rejected');
    has(/"extra".*unknown field sessionPolicy/, 'unknown field named');
    has(/"bad id!".*id/, 'bad id named');
    t.equal(errors.length, 5, 'exactly the five problems, the good partner adds none');
    t.ok(errors.every((e) => e.startsWith('partners.json')), 'each error names the file');
    t.match((caught as Error).message, /badarn[\s\S]*short[\s\S]*long[\s\S]*extra[\s\S]*bad id!/, 'the message lists them all');
  });

  t.test('other invalid values', async (t) => {
    const errorsOf = (text: string): string[] => {
      try {
        parsePartners(text, 'p.yml');
        return [];
      } catch (err) {
        t.ok(err instanceof PartnerConfigError, 'PartnerConfigError');
        return (err as PartnerConfigError).errors;
      }
    };
    const one = (raw: Record<string, unknown>) => errorsOf(JSON.stringify({ partners: { p: raw } }));
    const role = 'arn:aws:iam::111111111111:role/x';
    t.match(one({}), [/roleArn is required/]);
    t.match(one({ roleArn: 'arn:aws:iam::111111111111:user/x' }), [/roleArn/], 'a user ARN is not a role');
    t.match(one({ roleArn: role, kmsKeyArn: 'not-an-arn' }), [/kmsKeyArn/]);
    t.match(one({ roleArn: role, region: 'EU' }), [/region/]);
    t.match(one({ roleArn: role, externalId: 'x' }), [/externalId/], 'externalId of one character');
    t.match(one({ roleArn: role, endpoint: 'ftp://x' }), [/endpoint/]);
    t.match(one({ roleArn: role, durationSeconds: '3600' }), [/durationSeconds/], 'durationSeconds as a string');
    t.match(one({ roleArn: role, durationSeconds: 1000.5 }), [/durationSeconds/], 'non-integer durationSeconds');
    t.match(errorsOf(JSON.stringify({ partners: { p: 'arn' } })), [/must be an object/]);
    t.match(errorsOf(JSON.stringify({ partners: {} })), [/no partners/]);
    t.match(errorsOf(JSON.stringify({ tenants: {} })), [/"partners" map/]);
    t.match(errorsOf(JSON.stringify({ partners: { p: { roleArn: role } }, extra: 1 })), [/unknown top-level field extra/]);
    t.equal(errorsOf('partners: [').length, 1, 'a YAML syntax error is one error');
  });
});

t.test('partners options in loadConfig and the CLI', async (t) => {
  try {
    loadConfig(['--partners', 'partners.yml'], {});
    t.fail('partners on the embedded store accepted');
  } catch (err) {
    t.ok(err instanceof ConfigError, 'partners need --backend aws: ConfigError');
    t.match((err as Error).message, /backend aws/);
  }
  const aws = ['--partners', 'partners.yml', '--dynamodb-endpoint', 'http://127.0.0.1:8000'];
  t.equal(loadConfig(aws, {}).config.requirePartner, true, 'requirePartner defaults to true with a partners file');
  t.equal(loadConfig([...aws, '--require-partner', 'false'], {}).config.requirePartner, false, '--require-partner false');
  t.equal(loadConfig(['--dynamodb-endpoint', 'http://127.0.0.1:8000'], {}).config.requirePartner, false, 'no partners file: not required');
  t.equal(loadConfig(aws, {}).config.partnerHeader, 'x-partner-id', 'default header');
  t.equal(loadConfig([...aws, '--partner-header', 'X-Tenant'], {}).config.partnerHeader, 'x-tenant', 'header name lower-cased');
  try {
    loadConfig([...aws, '--sts-endpoint', 'not a url'], {});
    t.fail('bad STS endpoint accepted');
  } catch (err) {
    t.ok(err instanceof ConfigError, 'bad --sts-endpoint: ConfigError');
  }

  // An invalid partners file stops the CLI before anything is opened, listing every problem, without a stack trace.
  const dir = mkdtempSync(join(tmpdir(), 'dynamorm-partners-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'partners.yml');
  writeFileSync(file, ['partners:', '  a:', '    roleArn: nope', '  b:', '    roleArn: arn:aws:iam::111111111111:role/x', '    durationSeconds: 60', ''].join('\n'));
  const { code, stderr } = await runCli(['--partners', file, '--dynamodb-endpoint', 'http://127.0.0.1:1', '--port', '0']);
  t.equal(code, 1, 'CLI exits 1 on an invalid partners file');
  t.match(stderr, /"a": roleArn/, 'names the bad roleArn');
  t.match(stderr, /"b": durationSeconds/, 'and the bad duration, in the same run');
  t.notMatch(stderr, /\n\s+at /, 'no stack trace');
});
