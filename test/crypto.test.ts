import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AttributeValue } from '../src/codec/attribute-value.js';
import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { SidecarError } from '../src/errors.js';
import { decodePayload, encodePayload } from '../src/crypto/payload.js';
import { openAttribute, parseEnvelope, sealAttribute, type DataKey } from '../src/crypto/envelope.js';
import {
  KmsKeyProvider,
  LocalKeyProvider,
  loadLocalKek,
  newCallCounters,
  type CallCounters,
  type KeyProvider,
} from '../src/crypto/providers.js';
import { CachingKeyProvider } from '../src/crypto/cache.js';
import { ItemCrypto, type ModelEncryptionInfo } from '../src/crypto/item-crypto.js';

type Tap = Test;
type Item = Record<string, AttributeValue>;

const CANARY = 'CANARY-7f3a-plaintext-must-not-leak';
/** Text as a binary value of the JSON protocol (base64). */
const enc = (s: string): string => Buffer.from(s).toString('base64');
const b64 = (bytes: number[] | Uint8Array): string => Buffer.from(bytes).toString('base64');

/** Runs fn (sync or async) and asserts a SidecarError with `code`; returns it. Checks no leak of `secrets`. */
async function expectError(t: Tap, fn: () => unknown, code: string, secrets: string[] = [CANARY], status = 500): Promise<SidecarError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  t.ok(caught instanceof SidecarError, `throws SidecarError ${code}`);
  const e = caught as SidecarError;
  t.equal(e?.code, code, `code ${code} (${e?.message})`);
  t.equal(e?.status, status);
  for (const s of secrets) {
    t.notOk(e?.message.includes(s), 'message does not leak');
    t.notOk(e?.detail.includes(s), 'detail does not leak');
    t.notOk(JSON.stringify(e?.extra ?? {}).includes(s), 'extra does not leak');
  }
  return e;
}

/** Deep comparison of AttributeValues by the bytes of their binaries (base64 under B and BS, or bytes). */
function norm(av: unknown, key?: string): unknown {
  if (av instanceof Uint8Array) return { bytes: Buffer.from(av).toString('hex') };
  if (typeof av === 'string' && (key === 'B' || key === 'BS')) return { bytes: Buffer.from(av, 'base64').toString('hex') };
  if (Array.isArray(av)) return av.map((v) => norm(v, key === 'BS' ? 'BS' : undefined));
  if (av && typeof av === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(av)) Object.defineProperty(out, k, { value: norm((av as Record<string, unknown>)[k], k), enumerable: true });
    return out;
  }
  return av;
}

const KEY32 = Buffer.alloc(32, 1);
const dataKey = (plaintext: Buffer = randomBytes(32), edk: Buffer = Buffer.from('test-edk')): DataKey => ({ plaintext, edk });

/** A provider that wraps data keys by XOR and counts; `fail` makes decrypt reject. */
class FakeProvider implements KeyProvider {
  readonly id: string;
  readonly counters: CallCounters = newCallCounters();
  failDecrypt = 0;
  delayMs = 0;
  constructor(id = 'fake') {
    this.id = id;
  }
  async generateDataKey(): Promise<{ plaintext: Buffer; edk: Buffer }> {
    this.counters.generateDataKey++;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    const plaintext = randomBytes(32);
    return { plaintext, edk: Buffer.concat([Buffer.from(this.id), plaintext.map((b) => b ^ 0xaa)]) };
  }
  async decryptDataKey(edk: Uint8Array): Promise<Buffer> {
    this.counters.decrypt++;
    await new Promise((r) => setTimeout(r, this.delayMs || 5));
    if (this.failDecrypt > 0) {
      this.failDecrypt--;
      throw new SidecarError('ErrBackendUnavailable', 503, 'fake provider down');
    }
    const body = Buffer.from(edk).subarray(Buffer.byteLength(this.id));
    return Buffer.from(body.map((b) => b ^ 0xaa));
  }
}

// ---------------------------------------------------------------- payload

t.test('test vector (shared with the DynamORM SDKs)', async (t) => {
  const env = sealAttribute('secret', { S: 'top-secret' }, dataKey(KEY32, Buffer.from('edk')), Buffer.alloc(12, 0));
  const m = env.M!;
  t.same(Object.keys(m).sort(), ['ct', 'edk', 'nonce', 'v']);
  t.same(m.v, { N: '1' });
  t.equal(Buffer.from(m.edk.B!, 'base64').toString(), 'edk');
  t.equal(Buffer.from(m.nonce.B!, 'base64').toString('hex'), '00'.repeat(12));
  t.equal(
    Buffer.from(m.ct.B!, 'base64').toString('hex'),
    'c417ecfe4f19509dbf5be1674b06b52ec5ebecd5e6ed518eee595a95db189b076c8415942f37a9744bbd',
  );
  t.same(openAttribute('secret', env, KEY32), { S: 'top-secret' });
  t.equal(encodePayload({ S: 'top-secret' }).toString(), '{"t":"S","s":"top-secret"}');
});

t.test('payload bytes', async (t) => {
  const cases: Array<[AttributeValue, string]> = [
    [{ S: 'x' }, '{"t":"S","s":"x"}'],
    [{ S: '' }, '{"t":"S","s":""}'],
    [{ S: 'a"b\\c\n\u0001é😀' }, `{"t":"S","s":${JSON.stringify('a"b\\c\n\u0001é😀')}}`],
    [{ N: '12' }, '{"t":"N","n":"12"}'],
    [{ N: '-1.5e-7' }, '{"t":"N","n":"-1.5e-7"}'],
    [{ B: enc('hi?') }, '{"t":"B","b":"aGk/"}'],
    [{ B: b64([0xfb, 0xff]) }, '{"t":"B","b":"+/8="}'],
    [{ BOOL: true }, '{"t":"BOOL","bool":true}'],
    [{ BOOL: false }, '{"t":"BOOL","bool":false}'],
    [{ NULL: true }, '{"t":"NULL","null":true}'],
    [{ SS: ['b', 'a'] }, '{"t":"SS","ss":["b","a"]}'],
    [{ NS: ['1', '2.5'] }, '{"t":"NS","ns":["1","2.5"]}'],
    [{ BS: [enc('a'), enc('bc')] }, '{"t":"BS","bs":["YQ==","YmM="]}'],
    [{ L: [] }, '{"t":"L","l":[]}'],
    [{ L: [{ S: 'a' }, { N: '1' }, { NULL: true }] }, '{"t":"L","l":[{"t":"S","s":"a"},{"t":"N","n":"1"},{"t":"NULL","null":true}]}'],
    [{ M: {} }, '{"t":"M","m":{}}'],
    [
      { M: { b: { S: 'x' }, a: { L: [{ BOOL: true }] }, 'é': { N: '1' } } },
      '{"t":"M","m":{"a":{"t":"L","l":[{"t":"BOOL","bool":true}]},"b":{"t":"S","s":"x"},"é":{"t":"N","n":"1"}}}',
    ],
  ];
  for (const [av, json] of cases) t.equal(encodePayload(av).toString('utf8'), json, json);
  // Go sorts map keys by UTF-8 bytes: U+FF5E (EF BD 9E) before U+1F600 (F0 9F 98 80), unlike UTF-16 order.
  t.equal(
    encodePayload({ M: { '😀': { N: '1' }, '～': { N: '2' } } }).toString(),
    '{"t":"M","m":{"～":{"t":"N","n":"2"},"😀":{"t":"N","n":"1"}}}',
  );
  t.throws(() => encodePayload({} as AttributeValue), { code: 'ErrInternal' });
});

const ALL_TYPES: Record<string, AttributeValue> = {
  S: { S: `hello ${CANARY} ünïcødé 😀` },
  Sempty: { S: '' },
  N: { N: '12345678901234567890123456789012345678' },
  Nneg: { N: '-0.000001' },
  B: { B: b64([0, 1, 2, 255]) },
  Bempty: { B: '' },
  BOOLt: { BOOL: true },
  BOOLf: { BOOL: false },
  NULL: { NULL: true },
  SS: { SS: ['a', 'b', CANARY] },
  NS: { NS: ['1', '2.5', '-3e10'] },
  BS: { BS: [b64([1]), b64([2, 3])] },
  Lempty: { L: [] },
  Mempty: { M: {} },
  nested: {
    M: {
      list: { L: [{ S: 'a' }, { M: { deep: { L: [{ NULL: true }, { BS: [b64([9])] }] } } }, { L: [] }] },
      map: { M: { n: { N: '1' }, b: { BOOL: false } } },
      ss: { SS: ['x'] },
    },
  },
};

t.test('round trips of every type through payload and envelope', async (t) => {
  const key = dataKey();
  for (const [name, av] of Object.entries(ALL_TYPES)) {
    t.same(norm(decodePayload(encodePayload(av))), norm(av), `payload ${name}`);
    const env = sealAttribute(name, av, key);
    t.notOk(JSON.stringify(norm(env)).includes(Buffer.from(CANARY).toString('hex')), 'no plaintext in envelope');
    t.same(norm(openAttribute(name, env, key.plaintext)), norm(av), `envelope ${name}`);
  }
  // nonces are fresh per value
  const a = sealAttribute('x', { S: 'same' }, key);
  const b = sealAttribute('x', { S: 'same' }, key);
  t.not(Buffer.from(a.M!.nonce.B!, 'base64').toString('hex'), Buffer.from(b.M!.nonce.B!, 'base64').toString('hex'));
  t.not(Buffer.from(a.M!.ct.B!, 'base64').toString('hex'), Buffer.from(b.M!.ct.B!, 'base64').toString('hex'));
});

t.test('__proto__ and other prototype-ish map keys', async (t) => {
  const m: Record<string, AttributeValue> = {};
  for (const k of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    Object.defineProperty(m, k, { value: { S: `v-${k}` }, enumerable: true, writable: true, configurable: true });
  }
  const av: AttributeValue = { M: { inner: { M: m } } };
  const payload = encodePayload(av).toString();
  t.match(payload, /"__proto__":\{"t":"S","s":"v-__proto__"\}/);
  const back = decodePayload(Buffer.from(payload));
  const inner = back.M!.inner.M!;
  t.equal(Object.getPrototypeOf(inner), Object.prototype, 'prototype untouched');
  t.ok(Object.hasOwn(inner, '__proto__'), '__proto__ is an own key');
  t.same(Object.keys(inner).sort(), ['__proto__', 'constructor', 'hasOwnProperty', 'toString']);
  t.same(norm(inner['__proto__']), { S: 'v-__proto__' });
  const key = dataKey();
  const opened = openAttribute('a', sealAttribute('a', av, key), key.plaintext);
  t.ok(Object.hasOwn(opened.M!.inner.M!, '__proto__'));
  t.equal(({} as Record<string, unknown>).polluted, undefined);
});

t.test('decoding Go-style payloads', async (t) => {
  const go = (s: string): AttributeValue => decodePayload(Buffer.from(s));
  t.same(go('{"t":"L"}'), { L: [] });
  t.same(go('{"t":"M"}'), { M: {} });
  t.same(go('{"t":"SS"}'), { NULL: true });
  t.same(go('{"t":"NS"}'), { NULL: true });
  t.same(go('{"t":"BS"}'), { NULL: true });
  t.same(go('{"s":"x","t":"S"}'), { S: 'x' }, 'keys in another order');
  t.same(go('{"t":"S","s":"caf\\u00e9 \\u003ctag\\u003e \\u0026 \\ud83d\\ude00"}'), { S: 'café <tag> & 😀' }, 'Go escapes');
  t.same(go(' {"t" : "N", "n" : "7"} '), { N: '7' }, 'whitespace');
  t.same(go('{"m":{"b":{"bool":false,"t":"BOOL"},"a":{"t":"L"}},"t":"M"}'), { M: { b: { BOOL: false }, a: { L: [] } } });
  t.same(norm(go('{"t":"B","b":""}')), { B: { bytes: '' } });
  t.same(norm(go('{"t":"BS","bs":["AQ==","AgM="]}')), { BS: [{ bytes: '01' }, { bytes: '0203' }] });
  t.same(go('{"t":"NULL","null":true}'), { NULL: true });
});

t.test('decoding rejects anything that is not exactly a typed value', async (t) => {
  const bad = [
    'not json',
    '[]',
    '"x"',
    'null',
    '{}',
    '{"t":"X","s":"x"}',
    '{"t":"s","s":"x"}',
    '{"t":1}',
    '{"t":"S"}',
    '{"t":"N"}',
    '{"t":"B"}',
    '{"t":"BOOL"}',
    '{"t":"NULL"}',
    `{"t":"S","s":1}`,
    `{"t":"S","s":null}`,
    `{"t":"S","s":"${CANARY}","n":"1"}`,
    `{"t":"S","s":"${CANARY}","x":1}`,
    `{"t":"N","n":"${CANARY}"}`,
    '{"t":"N","n":12}',
    '{"t":"N","n":""}',
    '{"t":"B","b":"not base64!"}',
    '{"t":"B","b":"YQ"}',
    '{"t":"B","b":"YQ-_"}',
    '{"t":"BOOL","bool":"true"}',
    '{"t":"NULL","null":false}',
    `{"t":"SS","ss":"${CANARY}"}`,
    '{"t":"SS","ss":[1]}',
    '{"t":"NS","ns":["x"]}',
    '{"t":"BS","bs":["%%"]}',
    '{"t":"L","l":{}}',
    `{"t":"L","l":[{"t":"S","s":"${CANARY}"},{"t":"Q"}]}`,
    '{"t":"L","l":null}',
    '{"t":"M","m":[]}',
    `{"t":"M","m":{"${CANARY}":{"t":"S"}}}`,
    `{"t":"M","m":{"${CANARY}":"x"}}`,
    `{"t":"${CANARY}"}`,
  ];
  for (const s of bad) {
    await expectError(t, () => decodePayload(Buffer.from(s)), 'ErrInvalidEncryptedEnvelope');
  }
  await expectError(t, () => decodePayload(new Uint8Array([0x7b, 0xff, 0x7d])), 'ErrInvalidEncryptedEnvelope');
  await expectError(t, () => decodePayload(Buffer.from('\ufeff{"t":"S","s":"x"}')), 'ErrInvalidEncryptedEnvelope');
  const deep = '{"t":"L","l":['.repeat(100) + '{"t":"NULL","null":true}' + ']}'.repeat(100);
  await expectError(t, () => decodePayload(Buffer.from(deep)), 'ErrInvalidEncryptedEnvelope');
  const veryDeep = '{"t":"L","l":['.repeat(50_000) + ']}'.repeat(50_000);
  await expectError(t, () => decodePayload(Buffer.from(veryDeep)), 'ErrInvalidEncryptedEnvelope');
});

// ---------------------------------------------------------------- envelope tampering

function clone(env: AttributeValue): AttributeValue {
  const m = env.M!;
  return { M: { v: { ...m.v }, edk: { B: m.edk.B! }, nonce: { B: m.nonce.B! }, ct: { B: m.ct.B! } } };
}

t.test('tampering with any envelope field → ErrInvalidEncryptedEnvelope, no plaintext in errors', async (t) => {
  const key = dataKey();
  const value: AttributeValue = { S: CANARY };
  const env = sealAttribute('ssn', value, key);
  t.same(openAttribute('ssn', clone(env), key.plaintext), value, 'untampered opens');
  const bytes = (b: string | undefined) => Buffer.from(b ?? '', 'base64');
  const flip = (m: Record<string, AttributeValue>, field: string, i: number): void => {
    const b = bytes(m[field].B);
    b[i < 0 ? b.length + i : i] ^= 0x01;
    m[field] = { B: b.toString('base64') };
  };
  const mutations: Record<string, (m: Record<string, AttributeValue>) => void> = {
    'v = 2': (m) => (m.v = { N: '2' }),
    'v = 1.0': (m) => (m.v = { N: '1.0' }),
    'v as S': (m) => (m.v = { S: '1' }),
    'v missing': (m) => delete m.v,
    'edk as S': (m) => (m.edk = { S: 'x' }),
    'edk empty': (m) => (m.edk = { B: '' }),
    'edk missing': (m) => delete m.edk,
    'nonce flipped': (m) => flip(m, 'nonce', 0),
    'nonce 11 bytes': (m) => (m.nonce = { B: bytes(m.nonce.B).subarray(0, 11).toString('base64') }),
    'nonce 16 bytes': (m) => (m.nonce = { B: Buffer.alloc(16).toString('base64') }),
    'nonce missing': (m) => delete m.nonce,
    'ct first byte': (m) => flip(m, 'ct', 0),
    'tag last byte': (m) => flip(m, 'ct', -1),
    'tag truncated': (m) => (m.ct = { B: bytes(m.ct.B).subarray(0, bytes(m.ct.B).length - 1).toString('base64') }),
    'ct shorter than tag': (m) => (m.ct = { B: Buffer.alloc(15).toString('base64') }),
    'ct extended': (m) => (m.ct = { B: Buffer.concat([bytes(m.ct.B), Buffer.from([0])]).toString('base64') }),
    'ct as BS': (m) => (m.ct = { BS: [m.ct.B!] }),
    'ct missing': (m) => delete m.ct,
    'extra field': (m) => (m[CANARY] = { S: CANARY }),
    'two members on v': (m) => (m.v = { N: '1', S: 'x' } as unknown as AttributeValue),
  };
  for (const [name, mutate] of Object.entries(mutations)) {
    const tampered = clone(env);
    mutate(tampered.M!);
    const e = await expectError(t, () => openAttribute('ssn', tampered, key.plaintext), 'ErrInvalidEncryptedEnvelope');
    t.match(e.detail, /attribute ssn/, `${name}: names the attribute`);
    t.equal(e.extra?.attribute, 'ssn');
  }
  // field-specific messages
  const missing = clone(env);
  delete missing.M!.nonce;
  t.match((await expectError(t, () => parseEnvelope(missing, 'ssn'), 'ErrInvalidEncryptedEnvelope')).detail, /"nonce"/);
  const badV = clone(env);
  badV.M!.v = { N: '2' };
  t.match((await expectError(t, () => parseEnvelope(badV, 'ssn'), 'ErrInvalidEncryptedEnvelope')).detail, /"v"/);

  // wrong attribute name as AAD, wrong key, non-envelope values
  await expectError(t, () => openAttribute('email', clone(env), key.plaintext), 'ErrInvalidEncryptedEnvelope');
  await expectError(t, () => openAttribute('ssn', clone(env), randomBytes(32)), 'ErrInvalidEncryptedEnvelope');
  for (const plain of [value, { M: { v: { N: '1' } } }, { M: { ssn: { S: CANARY } } }, { L: [value] }, { NULL: true }, { M: value } as unknown as AttributeValue]) {
    await expectError(t, () => openAttribute('ssn', plain as AttributeValue, key.plaintext), 'ErrInvalidEncryptedEnvelope');
  }
});

// ---------------------------------------------------------------- providers

t.test('LocalKeyProvider', async (t) => {
  const kek = randomBytes(32);
  const counters = newCallCounters();
  const p = new LocalKeyProvider(kek, counters);
  t.match(p.id, /^local:[0-9a-f]{16}$/);
  t.notOk(p.id.includes(kek.toString('hex').slice(0, 16)), 'id is a hash, not the key');
  t.equal(new LocalKeyProvider(Buffer.from(kek)).id, p.id, 'id stable for one KEK');
  t.not(new LocalKeyProvider(randomBytes(32)).id, p.id);

  const dk = await p.generateDataKey();
  t.equal(dk.plaintext.length, 32);
  t.equal(dk.edk.length, 62);
  t.equal(dk.edk.subarray(0, 2).toString('latin1'), 'L1');
  t.notOk(dk.edk.includes(dk.plaintext), 'edk does not contain the data key');
  t.same((await p.decryptDataKey(dk.edk)).toString('hex'), dk.plaintext.toString('hex'));
  t.same(counters, { generateDataKey: 1, decrypt: 1 });
  t.equal(p.counters, counters);

  const other = new LocalKeyProvider(randomBytes(32));
  await expectError(t, () => other.decryptDataKey(dk.edk), 'ErrInvalidEncryptedEnvelope', [dk.plaintext.toString('hex')]);
  const badMagic = Buffer.from(dk.edk);
  badMagic[0] = 0x4d;
  await expectError(t, () => p.decryptDataKey(badMagic), 'ErrInvalidEncryptedEnvelope');
  await expectError(t, () => p.decryptDataKey(dk.edk.subarray(0, 61)), 'ErrInvalidEncryptedEnvelope');
  const badTag = Buffer.from(dk.edk);
  badTag[61] ^= 1;
  await expectError(t, () => p.decryptDataKey(badTag), 'ErrInvalidEncryptedEnvelope');
  t.equal(counters.decrypt, 4, 'every real call is counted');
  t.throws(() => new LocalKeyProvider(randomBytes(16)), /32 bytes/);
});

t.test('loadLocalKek', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kek-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kek = randomBytes(32);

  t.same(loadLocalKek({ value: kek.toString('base64') }), { kek, origin: 'env' });
  t.same(loadLocalKek({ value: kek.toString('hex') }).kek, kek, 'hex');
  t.same(loadLocalKek({ value: kek.toString('hex').toUpperCase() }).kek, kek, 'upper hex');
  t.same(loadLocalKek({ value: kek.toString('base64url') }).kek, kek, 'base64url, unpadded');
  t.same(loadLocalKek({ value: `  ${kek.toString('base64')}\n` }).kek, kek, 'trimmed');
  t.same(loadLocalKek({ value: kek.toString('base64'), file: '/nonexistent' }).origin, 'env', 'value wins');

  for (const wrong of [randomBytes(16).toString('base64'), randomBytes(31).toString('hex'), randomBytes(33).toString('base64'), '', 'not a key!!']) {
    let err: Error | undefined;
    try {
      loadLocalKek({ value: wrong });
    } catch (e) {
      err = e as Error;
    }
    t.ok(err, 'wrong KEK rejected');
    t.match(err?.message, /32 bytes/);
    if (wrong.length > 0) t.notOk(err?.message.includes(wrong), 'message does not echo the value');
  }

  const textFile = join(dir, 'kek.txt');
  writeFileSync(textFile, `${kek.toString('base64')}\n`);
  t.same(loadLocalKek({ file: textFile }), { kek, origin: 'file', path: textFile });
  const rawFile = join(dir, 'kek.bin');
  writeFileSync(rawFile, kek);
  t.same(loadLocalKek({ file: rawFile }).kek, kek, 'raw 32-byte file');
  const shortFile = join(dir, 'short.txt');
  writeFileSync(shortFile, randomBytes(10).toString('hex'));
  t.throws(() => loadLocalKek({ file: shortFile }), /32 bytes/);
  t.throws(() => loadLocalKek({ file: join(dir, 'missing') }), /ENOENT/);

  const dataDir = join(dir, 'data', 'nested');
  const first = loadLocalKek({ generateAt: dataDir });
  t.equal(first.origin, 'generated-file');
  t.equal(first.path, join(dataDir, 'local-kek.key'));
  t.equal(first.kek.length, 32);
  t.equal(statSync(first.path!).mode & 0o777, 0o600, 'mode 0600');
  t.equal(readFileSync(first.path!, 'utf8').trim(), first.kek.toString('base64'));
  const second = loadLocalKek({ generateAt: dataDir });
  t.equal(second.origin, 'file', 'reused on the second call');
  t.same(second.kek, first.kek, 'same key');

  const mem = loadLocalKek({});
  t.equal(mem.origin, 'generated-memory');
  t.equal(mem.kek.length, 32);
  t.not(loadLocalKek({}).kek.toString('hex'), mem.kek.toString('hex'));
});

t.test('KmsKeyProvider request shapes against a fake send', async (t) => {
  const arn = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const sent: unknown[] = [];
  const plaintext = randomBytes(32);
  const blob = randomBytes(180);
  let reply: (cmd: unknown) => unknown = (cmd) =>
    cmd instanceof GenerateDataKeyCommand ? { Plaintext: new Uint8Array(plaintext), CiphertextBlob: new Uint8Array(blob), KeyId: arn } : { Plaintext: new Uint8Array(plaintext), KeyId: arn };
  const kms = {
    send: async (cmd: unknown) => {
      sent.push(cmd);
      return reply(cmd);
    },
  } as unknown as Pick<KMSClient, 'send'>;
  const counters = newCallCounters();
  const p = new KmsKeyProvider(kms, arn, counters);
  t.equal(p.id, `kms:${arn}`);

  const dk = await p.generateDataKey();
  t.ok(sent[0] instanceof GenerateDataKeyCommand);
  t.same((sent[0] as GenerateDataKeyCommand).input, { KeyId: arn, KeySpec: 'AES_256' });
  t.same(dk.plaintext, plaintext);
  t.same(dk.edk, blob);
  t.ok(Buffer.isBuffer(dk.plaintext) && Buffer.isBuffer(dk.edk));

  const back = await p.decryptDataKey(blob);
  t.ok(sent[1] instanceof DecryptCommand);
  const input = (sent[1] as DecryptCommand).input;
  t.same(Object.keys(input).sort(), ['CiphertextBlob', 'KeyId']);
  t.equal(input.KeyId, arn);
  t.same(Buffer.from(input.CiphertextBlob!), blob);
  t.same(back, plaintext);
  t.same(counters, { generateDataKey: 1, decrypt: 1 });

  reply = () => ({ Plaintext: new Uint8Array(16), CiphertextBlob: new Uint8Array(blob) });
  await expectError(t, () => p.generateDataKey(), 'ErrInternal');
  await expectError(t, () => p.decryptDataKey(blob), 'ErrInvalidEncryptedEnvelope');
  reply = () => ({ Plaintext: new Uint8Array(32), CiphertextBlob: new Uint8Array() });
  await expectError(t, () => p.generateDataKey(), 'ErrInternal');

  const fail = (name: string) => () => {
    const err = new Error(`${name}: key ${arn} something`);
    err.name = name;
    throw err;
  };
  reply = fail('InvalidCiphertextException');
  await expectError(t, () => p.decryptDataKey(blob), 'ErrInvalidEncryptedEnvelope', [arn]);
  reply = fail('IncorrectKeyException');
  await expectError(t, () => p.decryptDataKey(blob), 'ErrInvalidEncryptedEnvelope', [arn]);
  reply = fail('ThrottlingException');
  const thr = await expectError(t, () => p.generateDataKey(), 'ErrThrottled', [arn], 503);
  t.equal(thr.extra?.retryAfter, 1);
  reply = fail('KMSInternalException');
  await expectError(t, () => p.decryptDataKey(blob), 'ErrBackendUnavailable', [arn], 503);
  reply = fail('AccessDeniedException');
  const denied = await expectError(t, () => p.generateDataKey(), 'ErrInternal', [arn]);
  t.match(denied.detail, /AccessDeniedException/);
  t.equal(counters.generateDataKey, 5);
  t.equal(counters.decrypt, 5);
});

// ---------------------------------------------------------------- caches

t.test('CachingKeyProvider: encrypt side reuse, use limit, age limit, single flight', async (t) => {
  const inner = new FakeProvider();
  let clock = 1_000_000;
  const c = new CachingKeyProvider(inner, { now: () => clock });
  const first = await c.currentDataKey();
  let same = 1;
  for (let i = 1; i < 10_000; i++) if ((await c.currentDataKey()) === first) same++;
  t.equal(same, 10_000, 'the same data key 10,000 times');
  t.equal(inner.counters.generateDataKey, 1, '10,000 calls → 1 generate');
  const next = await c.currentDataKey();
  t.equal(inner.counters.generateDataKey, 2, '10,001st → 2');
  t.not(next.edk.toString(), first.edk.toString());
  t.same(c.stats().encrypt, { hits: 9_999, misses: 2 });

  clock += 299_999;
  t.equal(await c.currentDataKey(), next, 'still fresh just before maxAgeMs');
  clock += 1;
  const third = await c.currentDataKey();
  t.not(third, next, 'rotated at maxAgeMs');
  t.equal(inner.counters.generateDataKey, 3);

  // single flight on a cold provider, including a surplus beyond maxUses
  const slow = new FakeProvider();
  slow.delayMs = 20;
  const sc = new CachingKeyProvider(slow, { maxUses: 100 });
  const keys = await Promise.all(Array.from({ length: 250 }, () => sc.currentDataKey()));
  t.equal(slow.counters.generateDataKey, 3, '250 concurrent calls with maxUses 100 → 3 generates');
  const distinct = new Map<DataKey, number>();
  for (const k of keys) distinct.set(k, (distinct.get(k) ?? 0) + 1);
  t.same([...distinct.values()].sort((a, b) => a - b), [50, 100, 100]);

  // a failed generation is not cached
  const flaky: KeyProvider = {
    id: 'flaky',
    calls: 0,
    async generateDataKey() {
      if ((this as { calls: number }).calls++ === 0) throw new Error('down');
      return { plaintext: randomBytes(32), edk: randomBytes(8) };
    },
    async decryptDataKey() {
      return randomBytes(32);
    },
  } as KeyProvider & { calls: number };
  const fc = new CachingKeyProvider(flaky);
  const results = await Promise.allSettled([fc.currentDataKey(), fc.currentDataKey()]);
  t.same(results.map((r) => r.status), ['rejected', 'rejected'], 'concurrent callers share the failure');
  t.ok((await fc.currentDataKey()).plaintext.length === 32, 'next call generates again');

  t.throws(() => new CachingKeyProvider(inner, { maxUses: 0 }));
  t.throws(() => new CachingKeyProvider(inner, { maxAgeMs: 0 }));
});

t.test('CachingKeyProvider: decrypt side LRU, single flight, failures not cached, TTL', async (t) => {
  const writer = new FakeProvider();
  const edk = (await writer.generateDataKey()).edk;
  const inner = new FakeProvider();
  let clock = 0;
  const c = new CachingKeyProvider(inner, { now: () => clock, decryptCacheSize: 2 });

  const all = await Promise.all(Array.from({ length: 3_000 }, () => c.plaintextFor(edk)));
  t.equal(inner.counters.decrypt, 1, '3,000 concurrent calls on a cold edk → 1 inner decrypt');
  t.ok(all.every((p) => p === all[0]));
  t.same(c.stats().decrypt, { hits: 2_999, misses: 1 });
  await c.plaintextFor(new Uint8Array(edk)); // equal bytes, different buffer
  t.equal(inner.counters.decrypt, 1, 'keyed by edk bytes');

  clock += 300_000;
  await c.plaintextFor(edk);
  t.equal(inner.counters.decrypt, 2, 'expired after maxAgeMs');

  // LRU bound
  const e2 = (await writer.generateDataKey()).edk;
  const e3 = (await writer.generateDataKey()).edk;
  await c.plaintextFor(e2);
  await c.plaintextFor(e3);
  t.equal(inner.counters.decrypt, 4);
  await c.plaintextFor(edk);
  t.equal(inner.counters.decrypt, 5, 'evicted by LRU size');

  // failures are not cached, and are shared by concurrent callers
  const f = new FakeProvider();
  f.failDecrypt = 1;
  const fc = new CachingKeyProvider(f);
  const settled = await Promise.allSettled(Array.from({ length: 50 }, () => fc.plaintextFor(edk)));
  t.ok(settled.every((s) => s.status === 'rejected'));
  t.equal(f.counters.decrypt, 1);
  t.equal((await fc.plaintextFor(edk)).length, 32, 'retried after a failure');
  t.equal(f.counters.decrypt, 2);
});

t.test('separate CachingKeyProvider instances never share keys', async (t) => {
  const pa = new LocalKeyProvider(randomBytes(32));
  const pb = new LocalKeyProvider(randomBytes(32));
  const a = new CachingKeyProvider(pa);
  const b = new CachingKeyProvider(pb);
  const ka = await a.currentDataKey();
  const kb = await b.currentDataKey();
  t.not(ka.plaintext.toString('hex'), kb.plaintext.toString('hex'));
  t.not(Buffer.from(ka.edk).toString('hex'), Buffer.from(kb.edk).toString('hex'));
  t.equal((await a.plaintextFor(ka.edk)).toString('hex'), ka.plaintext.toString('hex'), 'own edk: served from the primed cache');
  t.equal(pa.counters.decrypt, 0);
  await expectError(t, () => b.plaintextFor(ka.edk), 'ErrInvalidEncryptedEnvelope', [ka.plaintext.toString('hex')]);
  t.equal(pb.counters.decrypt, 1, 'b asked its own provider, which cannot open a foreign edk');

  // same KEK, different instances: b2 must still call its provider (no shared cache)
  const kek = randomBytes(32);
  const p1 = new LocalKeyProvider(kek);
  const p2 = new LocalKeyProvider(kek);
  const c1 = new CachingKeyProvider(p1);
  const c2 = new CachingKeyProvider(p2);
  const k1 = await c1.currentDataKey();
  t.equal((await c2.plaintextFor(k1.edk)).toString('hex'), k1.plaintext.toString('hex'));
  t.equal(p2.counters.decrypt, 1);
  t.equal(p2.counters.generateDataKey, 0);
});

// ---------------------------------------------------------------- ItemCrypto

const USER: ModelEncryptionInfo = { name: 'User', encrypted: new Set(['ssn', 'notes']) };
const PLAIN_MODEL: ModelEncryptionInfo = { name: 'Session', encrypted: new Set() };

t.test('ItemCrypto fails closed without a provider', async (t) => {
  const ic = new ItemCrypto(undefined);
  const item: Item = { PK: { S: 'USER#1' }, ssn: { S: CANARY } };
  const w = await expectError(t, () => ic.encryptItem(USER, item), 'ErrEncryptionNotConfigured');
  t.equal(w.detail, 'model User marks attribute ssn as encrypted but no key provider is configured; refusing to write plaintext');
  const v = await expectError(t, () => ic.encryptValue(USER, 'notes', { S: CANARY }), 'ErrEncryptionNotConfigured');
  t.match(v.detail, /attribute notes .*refusing to write plaintext/);
  const r = await expectError(t, () => ic.decryptItem(USER, item), 'ErrEncryptionNotConfigured');
  t.equal(r.detail, 'model User marks attribute ssn as encrypted but no key provider is configured; cannot decrypt');
  await expectError(t, () => ic.encryptItem(USER, { PK: { S: 'x' }, notes: { NULL: true } }), 'ErrEncryptionNotConfigured');

  // nothing to encrypt: passes through untouched
  const plain: Item = { PK: { S: 'S#1' }, data: { S: 'x' } };
  t.equal(await ic.encryptItem(PLAIN_MODEL, plain), plain);
  t.equal(await ic.decryptItem(PLAIN_MODEL, plain), plain);
  t.equal(await ic.encryptItem(USER, plain), plain, 'model with encryption, item without encrypted attributes');
  const av = { S: 'x' };
  t.equal(await ic.encryptValue(USER, 'name', av), av);
});

t.test('ItemCrypto round trip, caching, whole-item failure', async (t) => {
  const local = new LocalKeyProvider(randomBytes(32));
  const ic = new ItemCrypto(new CachingKeyProvider(local));
  t.equal(await ic.encryptItem(PLAIN_MODEL, { a: { S: 'x' } }).then(() => local.counters.generateDataKey), 0, 'fast path makes no provider call');

  const item: Item = {
    PK: { S: 'USER#1' },
    SK: { S: 'PROFILE' },
    ssn: { S: CANARY },
    notes: { NULL: true },
    name: { S: 'Ann' },
  };
  const snapshot = JSON.stringify(norm(item));
  const sealed = await ic.encryptItem(USER, item);
  t.equal(JSON.stringify(norm(item)), snapshot, 'input not mutated');
  t.same(sealed.PK, item.PK);
  t.same(sealed.name, item.name);
  t.same(Object.keys(sealed), Object.keys(item), 'attribute order kept');
  for (const name of ['ssn', 'notes']) {
    t.same(Object.keys(sealed[name].M!).sort(), ['ct', 'edk', 'nonce', 'v'], `${name} is an envelope`);
  }
  t.notOk(JSON.stringify(norm(sealed)).includes(Buffer.from(CANARY).toString('hex')));
  t.same(sealed.ssn.M!.edk, sealed.notes.M!.edk, 'one data key per item');
  const opened = await ic.decryptItem(USER, sealed);
  t.same(norm(opened), norm(item));

  const value = await ic.encryptValue(USER, 'ssn', { SS: ['a', CANARY] });
  t.same(norm(openAttribute('ssn', value, await new CachingKeyProvider(local).plaintextFor(Buffer.from(value.M!.edk.B!, 'base64')))), norm({ SS: ['a', CANARY] }));

  // ≤ 1 provider call per 1,000 encrypted writes (and reads of our own writes need none)
  const before = { ...local.counters };
  const items = await Promise.all(Array.from({ length: 1_000 }, (_, i) => ic.encryptItem(USER, { PK: { S: `U#${i}` }, ssn: { S: `${i}` } })));
  t.equal(local.counters.generateDataKey - before.generateDataKey, 0, 'current key reused');
  const reads = await Promise.all(items.map((it) => ic.decryptItem(USER, it)));
  t.same(reads[999].ssn, { S: '999' });
  t.equal(local.counters.decrypt, before.decrypt, 'reads of our own writes are served from the cache');

  // whole item fails: one tampered attribute, the others fine
  const tampered = { ...sealed, notes: clone(sealed.notes) };
  const ct = Buffer.from(tampered.notes.M!.ct.B!, 'base64');
  ct[0] ^= 1;
  tampered.notes.M!.ct = { B: ct.toString('base64') };
  const e = await expectError(t, () => ic.decryptItem(USER, tampered), 'ErrInvalidEncryptedEnvelope');
  t.match(e.detail, /attribute notes/);
  // a plaintext value in an encrypted attribute is refused
  await expectError(t, () => ic.decryptItem(USER, { ...sealed, ssn: { S: CANARY } }), 'ErrInvalidEncryptedEnvelope');
  // an envelope moved to another attribute fails (AAD binds the name)
  await expectError(t, () => ic.decryptItem(USER, { ...sealed, ssn: sealed.notes }), 'ErrInvalidEncryptedEnvelope');
  // an edk from another KEK names the attribute
  const foreign = await new ItemCrypto(new CachingKeyProvider(new LocalKeyProvider(randomBytes(32)))).encryptItem(USER, { PK: { S: 'x' }, ssn: { S: CANARY } });
  const fe = await expectError(t, () => ic.decryptItem(USER, foreign), 'ErrInvalidEncryptedEnvelope');
  t.match(fe.detail, /attribute ssn/);
  t.equal(fe.extra?.attribute, 'ssn');

  // __proto__ as an attribute name
  const model: ModelEncryptionInfo = { name: 'Odd', encrypted: new Set(['__proto__']) };
  const odd: Item = JSON.parse('{"PK":{"S":"1"},"__proto__":{"S":"p"}}') as Item;
  const oddSealed = await ic.encryptItem(model, odd);
  t.ok(Object.hasOwn(oddSealed, '__proto__'));
  t.equal(Object.getPrototypeOf(oddSealed), Object.prototype);
  t.same(norm((await ic.decryptItem(model, oddSealed))['__proto__']), { S: 'p' });
});

t.test('ItemCrypto across sidecar instances with the same KEK: one decrypt per data key', async (t) => {
  const kek = randomBytes(32);
  const writerProvider = new LocalKeyProvider(kek);
  const readerProvider = new LocalKeyProvider(kek);
  const writer = new ItemCrypto(new CachingKeyProvider(writerProvider));
  const reader = new ItemCrypto(new CachingKeyProvider(readerProvider));
  const items = await Promise.all(Array.from({ length: 1_000 }, (_, i) => writer.encryptItem(USER, { PK: { S: `${i}` }, ssn: { S: `s${i}` }, notes: { L: [{ N: `${i}` }] } })));
  t.equal(writerProvider.counters.generateDataKey, 1, '1,000 encrypted writes → 1 generate');
  const reads = await Promise.all(items.map((it) => reader.decryptItem(USER, it)));
  t.equal(readerProvider.counters.decrypt, 1, '1,000 reads → 1 decrypt');
  t.same(reads[42], { PK: { S: '42' }, ssn: { S: 's42' }, notes: { L: [{ N: '42' }] } });
});

t.test('ItemCrypto with KMS (fake send)', async (t) => {
  const arn = 'arn:aws:kms:us-east-1:111122223333:key/k';
  const vault = new Map<string, Buffer>();
  const commands: string[] = [];
  const kms = {
    send: async (cmd: GenerateDataKeyCommand | DecryptCommand) => {
      commands.push(cmd.constructor.name);
      if (cmd instanceof GenerateDataKeyCommand) {
        const plaintext = randomBytes(32);
        const blob = randomBytes(64);
        vault.set(blob.toString('hex'), plaintext);
        return { Plaintext: new Uint8Array(plaintext), CiphertextBlob: new Uint8Array(blob) };
      }
      const p = vault.get(Buffer.from(cmd.input.CiphertextBlob!).toString('hex'));
      if (!p) throw Object.assign(new Error('bad'), { name: 'InvalidCiphertextException' });
      return { Plaintext: new Uint8Array(p) };
    },
  } as unknown as Pick<KMSClient, 'send'>;
  const counters = newCallCounters();
  const writer = new ItemCrypto(new CachingKeyProvider(new KmsKeyProvider(kms, arn, counters)));
  const reader = new ItemCrypto(new CachingKeyProvider(new KmsKeyProvider(kms, arn, counters)));
  const sealed = [];
  for (let i = 0; i < 1_000; i++) sealed.push(await writer.encryptItem(USER, { PK: { S: `${i}` }, ssn: { S: CANARY } }));
  const read = await Promise.all(sealed.map((s) => reader.decryptItem(USER, s)));
  t.same(read[7], { PK: { S: '7' }, ssn: { S: CANARY } });
  t.same(counters, { generateDataKey: 1, decrypt: 1 });
  t.same(commands, ['GenerateDataKeyCommand', 'DecryptCommand']);
});
