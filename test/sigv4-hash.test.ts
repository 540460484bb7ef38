// The DynamoDB clients sign with CachedKeySha256 (KeyObject-keyed HMACs) instead of the SDK's own node SHA-256:
// every digest and every SigV4 signature must be byte-for-byte what the SDK's class produces.
import { createHash, createHmac } from 'node:crypto';
import { Sha256 as SdkSha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import { HttpRequest } from '@smithy/core/transport';
import t from 'tap';
import { CachedKeySha256 } from '../src/store/sigv4-hash.js';
import { prng } from './helpers/prng.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

async function both(secret: string | Uint8Array | ArrayBuffer | undefined, chunks: Uint8Array[]): Promise<[string, string]> {
  const ours = new CachedKeySha256(secret);
  const sdk = new SdkSha256(secret);
  for (const chunk of chunks) {
    ours.update(chunk);
    sdk.update(chunk);
  }
  return [hex(await ours.digest()), hex(await sdk.digest())];
}

t.test('HMACs and hashes match the SDK and node:crypto for every kind of key and data', async (t) => {
  const random = prng(7);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
  const backing = Buffer.from(bytes(80));
  const keys: [string, string | Uint8Array | ArrayBuffer][] = [
    ['string key', 'AWS4wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
    ['Uint8Array key', bytes(32)],
    ['Buffer view at an offset', backing.subarray(17, 49)],
    ['ArrayBuffer key', bytes(32).buffer],
    ['long key (over the block size)', bytes(100)],
  ];
  for (const [what, key] of keys) {
    for (const chunks of [[], [bytes(1)], [bytes(64), bytes(3), new Uint8Array(0), bytes(1000)]]) {
      const [ours, sdk] = await both(key, chunks);
      t.equal(ours, sdk, `${what}, ${chunks.length} chunks: same HMAC as the SDK`);
      const keyBuf = typeof key === 'string' ? key : ArrayBuffer.isView(key) ? Buffer.from(key.buffer, key.byteOffset, key.byteLength) : Buffer.from(key);
      const direct = createHmac('sha256', keyBuf);
      for (const c of chunks) direct.update(c);
      t.equal(ours, direct.digest('hex'), `${what}: same HMAC as node:crypto`);
      // Same key object again (the signer reuses its cached signing key): still right.
      t.equal((await both(key, chunks))[0], sdk, `${what}: same HMAC from the cached key`);
    }
  }
  const [plain, sdkPlain] = await both(undefined, [bytes(10), bytes(200)]);
  t.equal(plain, sdkPlain, 'plain SHA-256 as the SDK');
});

t.test('a key whose bytes changed is not served from the cache', async (t) => {
  const key = new Uint8Array(32).fill(1);
  const data = [Buffer.from('string to sign')];
  const first = (await both(key, data))[0];
  key.fill(2);
  const [second, sdk] = await both(key, data);
  t.not(second, first, 'a different key gives a different HMAC');
  t.equal(second, sdk, 'and it is the HMAC of the new bytes');
});

t.test('digest/update/reset behave like the SDK class', async (t) => {
  const plain = new CachedKeySha256();
  plain.update(Buffer.from('a'));
  const a = hex(await plain.digest());
  plain.update(Buffer.from('b'));
  t.equal(a, createHash('sha256').update('a').digest('hex'), 'digest of what was fed so far');
  t.equal(hex(await plain.digest()), createHash('sha256').update('ab').digest('hex'), 'a plain hash can be fed after a digest');
  plain.reset();
  t.equal(hex(await plain.digest()), createHash('sha256').digest('hex'), 'reset starts over');

  const mac = new CachedKeySha256(new Uint8Array(32));
  mac.update(Buffer.from('x'));
  await mac.digest();
  t.throws(() => mac.update(Buffer.from('y')), /already finished/, 'an HMAC cannot be fed after its digest');
  mac.reset();
  mac.update(Buffer.from('y'));
  t.equal(hex(await mac.digest()), createHmac('sha256', Buffer.alloc(32)).update('y').digest('hex'), 'until it is reset');
});

t.test('SigV4 signatures are identical with either hash', async (t) => {
  const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'token/with+chars=' };
  const signer = (sha256: typeof SdkSha256 | typeof CachedKeySha256) =>
    new SignatureV4({ credentials, region: 'eu-west-1', service: 'dynamodb', sha256, applyChecksum: true });
  const ours = signer(CachedKeySha256);
  const sdk = signer(SdkSha256);
  const dates = [new Date('2026-11-26T09:00:00Z'), new Date('2026-11-26T23:59:59Z'), new Date('2026-11-27T00:00:01Z')];
  let n = 0;
  for (const signingDate of dates) {
    for (const body of ['{"TableName":"users","Key":{"PK":{"S":"USER#1"}}}', '', '{"x":"ünïcødé😀"}']) {
      const request = () =>
        new HttpRequest({
          method: 'POST',
          protocol: 'https:',
          hostname: 'dynamodb.eu-west-1.amazonaws.com',
          path: '/',
          headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.GetItem', host: 'dynamodb.eu-west-1.amazonaws.com' },
          body,
        });
      // Twice each: the second signature comes from both signers' cached signing keys.
      for (let round = 0; round < 2; round++) {
        const a = (await ours.sign(request(), { signingDate })) as HttpRequest;
        const b = (await sdk.sign(request(), { signingDate })) as HttpRequest;
        t.match(a.headers.authorization, /Signature=[0-9a-f]{64}$/, `signed ${++n}`);
        t.equal(a.headers.authorization, b.headers.authorization, `signature ${n}`);
        t.equal(a.headers['x-amz-content-sha256'], b.headers['x-amz-content-sha256'], `payload hash ${n}`);
      }
    }
  }
  t.match(String((await ours.sign(new HttpRequest({ method: 'GET', hostname: 'h', path: '/', headers: { host: 'h' } }))).headers.authorization), /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//, 'a real SigV4 header');
});
