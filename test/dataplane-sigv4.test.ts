// The lean data-plane client signs with its own SigV4: every signature must be byte for byte what the SDK's signer
// (@smithy/signature-v4, the SDK's own hash) produces for the same request, credentials and date.
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/transport';
import { SignatureV4 } from '@smithy/signature-v4';
import t from 'tap';
import { signatureHeaders } from '../src/store/dataplane/sigv4.js';
import { prng } from './helpers/prng.js';

const random = prng(20261130);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
const int = (n: number) => Math.floor(random() * n);
const chars = ['a', 'Z', '0', ' ', '  ', '\t', '-', '_', '/', '+', '=', 'ü', 'é', '😀', '"', '\\', '{', '}', '#', '名'];
const text = (n: number) => Array.from({ length: n }, () => pick(chars)).join('');
const headerChars = ['a', 'B', '7', ' ', '  ', ';', ',', '=', '/', ':', '-'];
const headerValue = () => Array.from({ length: 1 + int(20) }, () => pick(headerChars)).join('');

t.test('signatures equal the SDK signer on randomized requests', async (t) => {
  const regions = ['us-east-1', 'eu-west-1', 'ap-southeast-2', 'cn-north-1', 'local'];
  const services = ['dynamodb', 'dynamodb', 'sts'];
  const paths = ['/', '/', '/prefix/', '/a/./b/../c', '/with space/ü', '/double//slash'];
  const extraNames = ['x-amz-target', 'content-type', 'x-custom', 'user-agent', 'x-amzn-trace-id', 'proxy-authorization', 'sec-fetch-mode', 'connection', 'content-length', 'date'];
  let n = 0;
  for (let i = 0; i < 300; i++) {
    const credentials = {
      accessKeyId: `AKID${int(1e6)}`,
      secretAccessKey: text(10 + int(30)).replace(/\s/g, 'x'),
      ...(random() < 0.5 ? { sessionToken: `tok/${text(20).replace(/[^\x21-\x7e]/g, '+')}==` } : {}),
    };
    const region = pick(regions);
    const service = pick(services);
    const path = pick(paths);
    const host = pick(['dynamodb.eu-west-1.amazonaws.com', '127.0.0.1:8000', 'embedded.localhost']);
    const headers: Record<string, string> = { host };
    for (const name of extraNames) if (random() < 0.4) headers[name] = headerValue();
    headers['x-amz-target'] = 'DynamoDB_20120810.' + pick(['GetItem', 'Query', 'TransactWriteItems']);
    const body = random() < 0.1 ? '' : JSON.stringify({ TableName: 't', Key: { PK: { S: text(int(200)) } } });
    // Dates across day boundaries, so cached signing keys of one day never sign for another.
    const date = new Date(Date.UTC(2026, 10, 26 + int(3), pick([0, 9, 23]), int(60), int(60)));
    const contentSha256 = random() < 0.5;

    const ours = signatureHeaders({ method: 'POST', path, headers, body, credentials, region, service, date, contentSha256 });
    const sdk = new SignatureV4({ credentials, region, service, sha256: Sha256, applyChecksum: contentSha256 });
    const signed = (await sdk.sign(new HttpRequest({ method: 'POST', protocol: 'https:', hostname: host, path, headers: { ...headers }, body }), { signingDate: date })) as HttpRequest;
    n++;
    t.equal(ours.authorization, signed.headers.authorization, `request ${n}: authorization`);
    t.equal(ours['x-amz-date'], signed.headers['x-amz-date'], `request ${n}: x-amz-date`);
    t.equal(ours['x-amz-security-token'], signed.headers['x-amz-security-token'], `request ${n}: session token header`);
    t.equal(ours['x-amz-content-sha256'], signed.headers['x-amz-content-sha256'], `request ${n}: payload hash header`);
    // Frozen headers (what the lean client signs): the parts cached for them sign the same, the first time and again.
    const frozen = Object.freeze({ ...headers });
    for (const round of ['first', 'cached']) {
      t.same(signatureHeaders({ method: 'POST', path, headers: frozen, body, credentials, region, service, date, contentSha256 }), ours, `request ${n}: frozen headers, ${round}`);
    }
  }
  t.equal(n, 300, 'every randomized request compared');
});

t.test('cached parts of frozen headers follow the date, credentials, path, region and service', async (t) => {
  const headers = Object.freeze({ host: 'h', 'x-amz-target': 'DynamoDB_20120810.GetItem', 'content-type': 'application/x-amz-json-1.0' });
  const base = { method: 'POST', path: '/', body: '{}', credentials: { accessKeyId: 'A', secretAccessKey: 'S' }, region: 'r', service: 'dynamodb', date: new Date('2026-11-30T12:00:00Z') };
  const variants = [
    base,
    { ...base, date: new Date('2026-11-30T12:00:01Z') },
    { ...base, date: new Date('2026-12-01T12:00:01Z') },
    { ...base, credentials: { accessKeyId: 'B', secretAccessKey: 'S' } },
    { ...base, credentials: { accessKeyId: 'A', secretAccessKey: 'T' } },
    { ...base, credentials: { accessKeyId: 'A', secretAccessKey: 'S', sessionToken: 'tok' } },
    { ...base, path: '/p/' },
    { ...base, region: 'q' },
    { ...base, service: 'sts' },
    { ...base, method: 'PUT' },
    { ...base, body: '{"a":1}' },
    base,
  ];
  for (const [i, v] of variants.entries()) {
    const expected = signatureHeaders({ ...v, headers: { ...headers } });
    t.same(signatureHeaders({ ...v, headers }), expected, `variant ${i}`);
  }
});

t.test('a Buffer body signs like the same text', async (t) => {
  const args = { method: 'POST', path: '/', headers: { host: 'h' }, credentials: { accessKeyId: 'A', secretAccessKey: 'S' }, region: 'r', service: 'dynamodb', date: new Date('2026-11-30T12:00:00Z') };
  const body = '{"k":"ünïcødé😀"}';
  t.equal(signatureHeaders({ ...args, body: Buffer.from(body) }).authorization, signatureHeaders({ ...args, body }).authorization);
  t.not(signatureHeaders({ ...args, body: body + ' ' }).authorization, signatureHeaders({ ...args, body }).authorization, 'the body is signed');
});
