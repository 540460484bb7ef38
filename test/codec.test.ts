import t from 'tap';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { DmsAttribute } from '../src/dms/types.js';
import { SidecarError } from '../src/errors.js';
import {
  MAX_ITEM_BYTES,
  checkItemSize,
  attributeValueSize,
  canonicalJson,
  decodeBase64,
  decodeBase64Url,
  decodeNatural,
  decodeValue,
  encodeBase64,
  encodeBase64Url,
  encodeNatural,
  encodeTtl,
  encodeValue,
  formatRfc3339Nano,
  fromN,
  isEmpty,
  isInteger,
  itemSize,
  normalizeDecimal,
  parseRfc3339,
  toEpochSeconds,
  toN,
} from '../src/codec/index.js';

const attr = (type: DmsAttribute['type'], extra: Partial<DmsAttribute> = {}): DmsAttribute => ({
  attribute: 'field',
  type,
  ...extra,
});

/** Asserts an ErrInvalidItem whose detail names `path` and does not echo `secret`. */
function rejects(t: Tap, fn: () => unknown, path: string, secret?: string): void {
  try {
    fn();
  } catch (err) {
    t.ok(err instanceof SidecarError, 'throws SidecarError');
    const e = err as SidecarError;
    t.equal(e.code, 'ErrInvalidItem');
    t.equal(e.status, 400);
    t.ok(e.detail.includes(path), `detail "${e.detail}" names ${path}`);
    if (secret !== undefined) t.notOk(e.detail.includes(secret), `detail "${e.detail}" does not echo the value`);
    return;
  }
  t.fail(`expected ErrInvalidItem for ${path}`);
}
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

function roundTrip(a: DmsAttribute, value: unknown): unknown {
  const av = encodeValue(a, value);
  if (av === undefined) throw new Error('unexpectedly omitted');
  return decodeValue(a, av);
}

t.test('normalizeDecimal', async (t) => {
  const cases: Array<[string, string | null]> = [
    ['1e3', '1000'],
    ['0.50', '0.5'],
    ['1.5e-7', '0.00000015'],
    ['-0', '0'],
    ['-0.000', '0'],
    ['007', '7'],
    ['1E+2', '100'],
    ['-12.3400', '-12.34'],
    ['123.456e1', '1234.56'],
    ['1e999999999', null],
    ['+1', null],
    ['.5', null],
    ['1.', null],
    ['', null],
    [' 1', null],
    ['1e', null],
    ['0x10', null],
    ['NaN', null],
    ['Infinity', null],
  ];
  for (const [input, expected] of cases) t.equal(normalizeDecimal(input), expected, input);
});

t.test('toN / fromN', async (t) => {
  t.equal(toN(1e21, 'n'), '1000000000000000000000');
  t.equal(toN(-0, 'n'), '0');
  t.equal(toN(0.1, 'n'), '0.1');
  t.equal(toN('1.50', 'n'), '1.5');
  const max38 = '12345678901234567890123456789012345678';
  t.equal(toN(max38, 'n'), max38);
  t.equal(toN(`-${max38}`, 'n'), `-${max38}`);
  t.equal(toN('1234567890123456789.0123456789012345678', 'n'), '1234567890123456789.0123456789012345678');
  t.equal(toN('9.9999999999999999999999999999999999999E+125', 'n').length, 126);
  t.equal(toN('1E-130', 'n'), `0.${'0'.repeat(129)}1`);
  t.equal(toN('1000000000000000000000000000000000000000000', 'n'), '1' + '0'.repeat(42), 'trailing integer zeros are not significant');
  rejects(t, () => toN('123456789012345678901234567890123456789', 'amount'), 'amount', '123456789');
  rejects(t, () => toN('1e126', 'amount'), 'amount', '1e126');
  rejects(t, () => toN('1e-131', 'amount'), 'amount', '1e-131');
  rejects(t, () => toN(Number.NaN, 'amount'), 'amount');
  rejects(t, () => toN(Infinity, 'amount'), 'amount');
  rejects(t, () => toN('12abc', 'amount'), 'amount', '12abc');
  rejects(t, () => toN(true, 'amount'), 'amount');

  t.equal(fromN('0.1'), 0.1);
  t.equal(fromN('1000'), 1000);
  t.equal(fromN('-42.5'), -42.5);
  t.equal(fromN('9007199254740993'), '9007199254740993', 'beyond 2^53 stays a string');
  t.equal(fromN('9007199254740992'), 9007199254740992);
  t.equal(fromN('0.12345678901234567890'), '0.1234567890123456789');
  t.equal(fromN(max38), max38);
  t.equal(fromN(`-${max38}`), `-${max38}`);

  t.ok(isInteger('10'));
  t.ok(isInteger('1e3'));
  t.ok(isInteger('2.0'));
  t.notOk(isInteger('2.5'));
  t.notOk(isInteger('abc'));
});

t.test('base64', async (t) => {
  const bytes = new Uint8Array([0xfb, 0xff, 0xbf, 0x00, 0x01]);
  t.equal(encodeBase64(bytes), '+/+/AAE=');
  t.equal(encodeBase64Url(bytes), '-_-_AAE');
  t.same(decodeBase64('+/+/AAE=', 'b'), bytes);
  t.same(decodeBase64('+/+/AAE', 'b'), bytes, 'padding optional');
  t.same(decodeBase64('-_-_AAE=', 'b'), bytes, 'URL-safe alphabet');
  t.same(decodeBase64Url('-_-_AAE', 'k'), bytes);
  t.same(decodeBase64Url('-_-_AAE=', 'k'), bytes, 'padding accepted on input');
  t.same(decodeBase64('', 'b'), new Uint8Array());
  t.same(decodeBase64('AA==', 'b'), new Uint8Array([0]));
  for (const bad of ['AA=', 'AAA==', 'A', 'AAAAA', 'AA==AA==', 'AA AA', 'AA\nAA', '+/-_', 'AB==', 'AAB=', '====', 'A===', 'AA%3D']) {
    rejects(t, () => decodeBase64(bad, 'blob'), 'blob', bad);
  }
  rejects(t, () => decodeBase64Url('+/+/', 'key'), 'key');
  rejects(t, () => decodeBase64(42, 'blob'), 'blob');
});

t.test('canonicalJson', async (t) => {
  t.equal(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: 'x' } }), '{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}');
  t.equal(canonicalJson({ B: 1, a: 2, é: 3, _: 4 }), '{"B":1,"_":4,"a":2,"é":3}', 'UTF-16 code unit order');
  t.equal(canonicalJson(null), 'null');
  t.equal(canonicalJson('s'), '"s"');
  t.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}');
  rejects(t, () => canonicalJson(undefined, 'doc'), 'doc');
  rejects(t, () => canonicalJson({ f: () => 1 }, 'doc'), 'doc.f');
  rejects(t, () => canonicalJson({ n: [1, Number.NaN] }, 'doc'), 'doc.n[1]');
  rejects(t, () => canonicalJson(Infinity, 'doc'), 'doc');
  rejects(t, () => canonicalJson({ s: 'a\uD800' }, 'doc'), 'doc.s');
  rejects(t, () => canonicalJson(new Date(), 'doc'), 'doc');
});

t.test('RFC 3339', async (t) => {
  t.equal(formatRfc3339Nano(new Date(Date.UTC(2026, 0, 16, 10, 20, 30, 123))), '2026-01-16T10:20:30.123000000Z');
  t.match(formatRfc3339Nano(new Date()), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  const base = Date.UTC(2026, 0, 16, 10, 20, 30);
  t.same(parseRfc3339('2026-01-16T10:20:30Z'), { epochMs: base });
  t.same(parseRfc3339('2026-01-16t10:20:30z'), { epochMs: base });
  t.same(parseRfc3339('2026-01-16T10:20:30.123456789Z'), { epochMs: base + 123 });
  t.same(parseRfc3339('2026-01-16T12:20:30+02:00'), { epochMs: base });
  t.same(parseRfc3339('2026-01-16T05:50:30.5-04:30'), { epochMs: base + 500 });
  t.same(parseRfc3339('2024-02-29T00:00:00Z'), { epochMs: Date.UTC(2024, 1, 29) });
  t.same(parseRfc3339('0001-01-01T00:00:00Z'), { epochMs: -62135596800000 }, 'years below 100 are not remapped');
  for (const bad of [
    '2026-02-30T00:00:00Z',
    '2025-02-29T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-01-16T24:00:00Z',
    '2026-01-16T10:60:00Z',
    '2026-01-16T10:20:60Z',
    '2026-01-16T10:20:30',
    '2026-01-16 10:20:30Z',
    '2026-01-16T10:20:30.Z',
    '2026-01-16T10:20:30.1234567890Z',
    '2026-01-16T10:20:30+0200',
    '2026-01-16T10:20:30+24:00',
    '2026-1-16T10:20:30Z',
  ]) {
    t.equal(parseRfc3339(bad), null, bad);
  }
});

t.test('toEpochSeconds / TTL', async (t) => {
  t.equal(toEpochSeconds('2026-01-16T10:20:30.999Z', 'ttl'), String(Date.UTC(2026, 0, 16, 10, 20, 30) / 1000));
  t.equal(toEpochSeconds('1970-01-01T00:00:00.5+00:00', 'ttl'), '0');
  t.equal(toEpochSeconds('1969-12-31T23:59:59.5Z', 'ttl'), '-1', 'floors');
  t.equal(toEpochSeconds(1768558830, 'ttl'), '1768558830');
  t.equal(toEpochSeconds('1768558830', 'ttl'), '1768558830');
  rejects(t, () => toEpochSeconds(1.5, 'expires'), 'expires');
  rejects(t, () => toEpochSeconds('2026-02-30T00:00:00Z', 'expires'), 'expires', '2026-02-30');
  rejects(t, () => toEpochSeconds(true, 'expires'), 'expires');
  const ttl = attr('N', { attribute: 'expires', roles: ['ttl'], format: 'unix_seconds' });
  t.same(encodeTtl(ttl, '2026-01-16T10:20:30Z'), { N: '1768558830' });
  t.same(encodeTtl(ttl, null), { NULL: true });
  t.equal(encodeTtl({ ...ttl, omit_empty: true }, null), undefined);
});

t.test('scalar round trips', async (t) => {
  t.equal(roundTrip(attr('S'), 'héllo 👋'), 'héllo 👋');
  t.equal(roundTrip(attr('S'), ''), '');
  t.same(encodeValue(attr('N'), 42), { N: '42' });
  for (const n of [0, -1, 3.25, 1e21, Number.MAX_SAFE_INTEGER, 1e-7]) t.equal(roundTrip(attr('N'), n), n);
  for (const s of ['12345678901234567890123456789012345678', '-12345678901234567890123456789012345678', '0.12345678901234567890123456789012345678', '-1.2345678901234567890123456789012345678', '9007199254740993']) {
    t.equal(roundTrip(attr('N'), s), s, s);
  }
  t.equal(roundTrip(attr('N'), '1.50'), 1.5);
  t.same(encodeValue(attr('B'), 'AAEC'), { B: 'AAEC' }, 'binaries as the JSON protocol carries them');
  t.same(encodeValue(attr('B'), '-_8'), { B: '+/8=' }, 'in the canonical standard padded alphabet');
  t.equal(roundTrip(attr('B', { binary: true }), 'AAEC'), 'AAEC');
  t.equal(roundTrip(attr('B'), '-_8'), '+/8=', 'decoded as standard padded base64');
  t.equal(roundTrip(attr('BOOL'), true), true);
  t.equal(roundTrip(attr('BOOL'), false), false);
  t.equal(roundTrip(attr('NULL'), null), null);
  t.same(encodeValue(attr('NULL'), null), { NULL: true });
  t.same(encodeValue(attr('S'), null), { NULL: true });
  t.equal(decodeValue(attr('S'), { NULL: true }), null);

  rejects(t, () => encodeValue(attr('S', { attribute: 'name' }), 123), 'name');
  rejects(t, () => encodeValue(attr('S', { attribute: 'name' }), 'ab\uDC00'), 'name');
  rejects(t, () => encodeValue(attr('N', { attribute: 'age' }), 'twelve'), 'age', 'twelve');
  rejects(t, () => encodeValue(attr('N', { attribute: 'age', format: 'int' }), 1.5), 'age', '1.5');
  rejects(t, () => encodeValue(attr('N', { attribute: 'at', format: 'unix_seconds' }), '1.5'), 'at', '1.5');
  t.same(encodeValue(attr('N', { format: 'int' }), '1e3'), { N: '1000' });
  rejects(t, () => encodeValue(attr('B', { attribute: 'blob' }), 'not base64!'), 'blob', 'not base64!');
  rejects(t, () => encodeValue(attr('BOOL', { attribute: 'flag' }), 'true'), 'flag');
  rejects(t, () => encodeValue(attr('NULL', { attribute: 'nothing' }), 0), 'nothing');
  rejects(t, () => encodeValue(attr('S', { attribute: 'name' }), undefined), 'name');
});

t.test('rfc3339nano S attribute', async (t) => {
  const a = attr('S', { attribute: 'created_at', format: 'rfc3339nano' });
  t.same(encodeValue(a, '2026-01-16T10:20:30.123000000Z'), { S: '2026-01-16T10:20:30.123000000Z' });
  t.same(encodeValue(a, '2026-01-16T12:20:30+02:00'), { S: '2026-01-16T12:20:30+02:00' }, 'stored as given');
  rejects(t, () => encodeValue(a, '2026-02-30T00:00:00Z'), 'created_at', '2026-02-30');
});

t.test('json attribute', async (t) => {
  const a = attr('S', { attribute: 'doc', json: true });
  t.same(encodeValue(a, { b: [1, { d: 1, c: 2 }], a: 'x' }), { S: '{"a":"x","b":[1,{"c":2,"d":1}]}' });
  t.same(encodeValue(a, null), { NULL: true });
  t.equal(decodeValue(a, { NULL: true }), null);
  t.same(roundTrip(a, { z: [1, 'two', null, false], a: {} }), { a: {}, z: [1, 'two', null, false] });
  t.equal(roundTrip(a, 'just a string'), 'just a string');
  t.equal(decodeValue(a, { S: 'not json' }), 'not json', 'tolerates non-JSON written elsewhere');
  rejects(t, () => encodeValue(a, { x: { y: Number.NaN } }), 'doc.x.y');
});

t.test('M and L', async (t) => {
  const profile = attr('M', { attribute: 'profile' });
  const value = { name: 'Ann', age: 30, tags: ['a', 1, true, null], address: { zip: '12345', geo: { lat: 1.5 } }, big: '1' };
  const av = encodeValue(profile, value);
  t.same(av, {
    M: {
      name: { S: 'Ann' },
      age: { N: '30' },
      tags: { L: [{ S: 'a' }, { N: '1' }, { BOOL: true }, { NULL: true }] },
      address: { M: { zip: { S: '12345' }, geo: { M: { lat: { N: '1.5' } } } } },
      big: { S: '1' },
    },
  });
  t.same(decodeValue(profile, av as AttributeValue), value);
  t.same(roundTrip(attr('L'), [1, 'x', [2, { a: null }]]), [1, 'x', [2, { a: null }]]);
  t.same(roundTrip(profile, {}), {});
  t.same(roundTrip(attr('L'), []), []);
  rejects(t, () => encodeValue(profile, { address: { zip: Number.POSITIVE_INFINITY } }), 'profile.address.zip');
  rejects(t, () => encodeValue(attr('L', { attribute: 'tags' }), ['a', 'b', () => 1]), 'tags[2]');
  rejects(t, () => encodeValue(attr('L', { attribute: 'tags' }), ['a', 'b', '123456789012345678901234567890123456789', 1e999]), 'tags[3]');
  rejects(t, () => encodeValue(profile, [1]), 'profile');
  rejects(t, () => encodeValue(attr('L', { attribute: 'tags' }), { a: 1 }), 'tags');
  rejects(t, () => encodeValue(profile, { 'k\uD800': 1 }), 'profile');
  rejects(t, () => encodeValue(profile, { k: 'v\uD800' }), 'profile.k');
});

t.test('nesting depth', async (t) => {
  const nestMaps = (levels: number): unknown => {
    let v: unknown = 'leaf';
    for (let i = 0; i < levels; i++) v = { a: v };
    return v;
  };
  const nestLists = (levels: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < levels; i++) v = [v];
    return v;
  };
  t.ok(encodeValue(attr('M'), nestMaps(32)), '32 levels of M accepted');
  t.ok(encodeValue(attr('L'), nestLists(32)), '32 levels of L accepted');
  rejects(t, () => encodeValue(attr('M', { attribute: 'deep' }), nestMaps(33)), 'deep');
  rejects(t, () => encodeValue(attr('L', { attribute: 'deep' }), nestLists(33)), 'deep');
  rejects(t, () => encodeNatural(nestMaps(40), 'x', 1), 'nesting deeper than 32');
});

t.test('__proto__ keys: refused in maps (stores drop them), never polluting; plain data inside json attributes', async (t) => {
  const a = attr('M', { attribute: 'data' });
  rejects(t, () => encodeValue(a, JSON.parse('{"__proto__":{"polluted":"yes"},"keep":1}')), 'map key __proto__ is not allowed');
  rejects(t, () => encodeValue(attr('L', { attribute: 'data' }), JSON.parse('[{"__proto__":{"polluted":"yes"}}]')), 'map key __proto__');
  const input = JSON.parse('{"constructor":{"prototype":{"polluted":"yes"}},"prototype":1}') as unknown;
  const av = encodeValue(a, input) as AttributeValue;
  t.same(Object.keys(av.M ?? {}).sort(), ['constructor', 'prototype']);
  t.equal(Object.getPrototypeOf(av.M), Object.prototype, 'map is a plain object');
  const back = decodeValue(a, av) as Record<string, unknown>;
  t.equal(JSON.stringify(back), JSON.stringify(input));
  t.equal(Object.getPrototypeOf(back), Object.prototype);
  t.equal(({} as Record<string, unknown>).polluted, undefined);
  t.equal((Object.prototype as Record<string, unknown>).polluted, undefined);
  const json = attr('S', { json: true });
  const withProto = JSON.parse('{"__proto__":{"polluted":"yes"},"keep":1}') as unknown;
  t.equal(JSON.stringify(roundTrip(json, withProto)), canonicalJson(withProto), 'json attributes keep __proto__ as text');
  t.equal(({} as Record<string, unknown>).polluted, undefined);
});

t.test('sets', async (t) => {
  t.same(encodeValue(attr('SS'), ['b', 'a']), { SS: ['b', 'a'] });
  t.same(roundTrip(attr('SS'), ['b', 'a']), ['b', 'a']);
  t.same(encodeValue(attr('NS'), [1, '2.50', '1e2']), { NS: ['1', '2.5', '100'] });
  t.same(roundTrip(attr('NS'), [1, '12345678901234567890123456789012345678']), [1, '12345678901234567890123456789012345678']);
  t.same(encodeValue(attr('BS'), ['AAE=', 'AAI']), { BS: ['AAE=', 'AAI='] });
  t.same(roundTrip(attr('BS'), ['AAE=', 'AAI']), ['AAE=', 'AAI=']);

  rejects(t, () => encodeValue(attr('SS', { attribute: 'tags' }), ['a', 'b', 'a']), 'tags[2]');
  rejects(t, () => encodeValue(attr('NS', { attribute: 'nums' }), ['1', 1.0]), 'nums[1]');
  rejects(t, () => encodeValue(attr('NS', { attribute: 'nums' }), ['1', '1.0']), 'nums[1]');
  rejects(t, () => encodeValue(attr('NS', { attribute: 'nums' }), [100, '1e2']), 'nums[1]');
  rejects(t, () => encodeValue(attr('BS', { attribute: 'blobs' }), ['AAE=', 'AAE']), 'blobs[1]');
  rejects(t, () => encodeValue(attr('SS', { attribute: 'tags' }), ['a', 2]), 'tags[1]');
  rejects(t, () => encodeValue(attr('SS', { attribute: 'tags' }), ['a', '']), 'tags[1]');
  rejects(t, () => encodeValue(attr('SS', { attribute: 'tags' }), 'a'), 'tags');
  rejects(t, () => encodeValue(attr('NS', { attribute: 'nums' }), [1, 'x1']), 'nums[1]', 'x1');

  for (const type of ['SS', 'NS', 'BS'] as const) {
    t.same(encodeValue(attr(type), []), { NULL: true }, `empty ${type} → NULL`);
    t.equal(encodeValue(attr(type, { omit_empty: true }), []), undefined, `empty ${type} omitted`);
    t.same(decodeValue(attr(type), { NULL: true }), [], `NULL ${type} → []`);
  }
});

t.test('omit_empty and isEmpty', async (t) => {
  for (const v of [null, undefined, '', 0, -0, false, [], {}]) t.ok(isEmpty(v), JSON.stringify(v) ?? 'undefined');
  for (const v of ['0', ' ', 1, true, [0], { a: 1 }]) t.notOk(isEmpty(v), JSON.stringify(v));
  t.equal(encodeValue(attr('S', { omit_empty: true }), ''), undefined);
  t.equal(encodeValue(attr('S', { omit_empty: true }), null), undefined);
  t.equal(encodeValue(attr('S', { omit_empty: true }), undefined), undefined);
  t.equal(encodeValue(attr('N', { omit_empty: true }), 0), undefined);
  t.same(encodeValue(attr('N', { omit_empty: true }), '0'), { N: '0' });
  t.equal(encodeValue(attr('BOOL', { omit_empty: true }), false), undefined);
  t.equal(encodeValue(attr('M', { omit_empty: true }), {}), undefined);
  t.equal(encodeValue(attr('L', { omit_empty: true }), []), undefined);
  t.same(encodeValue(attr('S'), ''), { S: '' });
  t.same(encodeValue(attr('N'), 0), { N: '0' });
  t.same(encodeValue(attr('M'), {}), { M: {} });
});

t.test('decode tolerates type mismatches', async (t) => {
  t.equal(decodeValue(attr('S'), { N: '5' }), 5);
  t.equal(decodeValue(attr('N'), { S: 'x' }), 'x');
  t.same(decodeValue(attr('L'), { SS: ['a'] }), ['a']);
  t.same(decodeValue(attr('M'), { M: { b: { B: '/w==' }, n: { NS: ['1', '0.1'] }, bs: { BS: ['AQ=='] } } }), {
    b: '/w==',
    n: [1, 0.1],
    bs: ['AQ=='],
  });
  t.equal(decodeNatural({ BOOL: false }), false);
});

t.test('item size', async (t) => {
  t.equal(attributeValueSize({ S: 'héllo' }), 6);
  t.equal(attributeValueSize({ N: '12345' }), 4);
  t.equal(attributeValueSize({ N: '1000' }), 2);
  t.equal(attributeValueSize({ N: '-0.0012' }), 2);
  t.equal(attributeValueSize({ B: Buffer.alloc(10).toString('base64') }), 10, 'B: decoded bytes, not base64 characters');
  t.equal(attributeValueSize({ BOOL: true }), 1);
  t.equal(attributeValueSize({ NULL: true }), 1);
  t.equal(attributeValueSize({ L: [] }), 3);
  t.equal(attributeValueSize({ L: [{ S: 'ab' }, { NULL: true }] }), 3 + 1 + 2 + 1 + 1);
  t.equal(attributeValueSize({ M: { ab: { S: 'xyz' } } }), 3 + 1 + 2 + 3);
  t.equal(attributeValueSize({ SS: ['a', 'bc'] }), 3);
  t.equal(attributeValueSize({ NS: ['1', '12'] }), 2 + 2);
  t.equal(attributeValueSize({ BS: [Buffer.alloc(2).toString('base64'), Buffer.alloc(3).toString('base64')] }), 5);
  t.equal(itemSize({ pk: { S: 'abc' }, n: { N: '1' } }), 2 + 3 + 1 + 2);
  t.equal(MAX_ITEM_BYTES, 409600);
  checkItemSize({ pk: { S: 'x'.repeat(MAX_ITEM_BYTES - 2) } });
  t.throws(() => checkItemSize({ pk: { S: 'x'.repeat(MAX_ITEM_BYTES - 1) } }), { code: 'ErrInvalidItem' });
  // Multi-byte text under the length bound's radar: 136,534 '€' are 409,602 bytes.
  const euros = '€'.repeat(Math.ceil((MAX_ITEM_BYTES - 1) / 3));
  t.throws(() => checkItemSize({ p: { M: { k: { L: [{ SS: [euros] }] } } } }), { code: 'ErrInvalidItem' }, 'nested multi-byte text is counted exactly');
  checkItemSize({ pk: { S: '€'.repeat(Math.floor((MAX_ITEM_BYTES - 2) / 3)) } });
  t.equal(itemSize({ m: { M: { 'é': { N: '12345' }, l: { L: [{ NULL: true }, { NS: ['1', '22'] }] } } } }), 1 + 3 + (1 + 2 + 4) + (1 + 1 + 3 + (1 + 1) + (1 + 2 + 2)));
});

t.test('toN of a JS number is the canonical decimal of its shortest form', async (t) => {
  // The fast path (no exponent in String(n)) against the full normalisation, on doubles of every magnitude.
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < 2000; i++) {
    const n = (random() - 0.5) * 10 ** Math.floor(random() * 44 - 22);
    const viaText = String(n).includes('e') ? toN(String(n), 'n') : normalizeDecimal(String(n));
    if (toN(n, 'n') !== viaText) t.fail(`toN(${n}) = ${toN(n, 'n')}, expected ${viaText}`);
  }
  for (const n of [0, -0, 1e-7, 1e-6, 123.456, -0.5, 2 ** 53, 1e20, 1e21, Number.MAX_SAFE_INTEGER]) t.equal(toN(n, 'n'), normalizeDecimal(String(n)), String(n));
});
