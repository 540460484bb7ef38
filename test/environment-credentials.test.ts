import t from 'tap';
import { fromEnv } from '@aws-sdk/credential-provider-env';
import { environmentCredentials } from '../src/store/backend.js';

const VARS = ['AWS_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_CREDENTIAL_EXPIRATION'] as const;

/** What the SDK's default chain takes from the environment (its first link), for the same variables. */
async function sdkFromEnv(env: Partial<Record<(typeof VARS)[number], string>>) {
  const saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]));
  for (const v of VARS) delete process.env[v];
  Object.assign(process.env, env);
  try {
    if (process.env.AWS_PROFILE) return undefined; // defaultProvider skips fromEnv then
    const c = await fromEnv()().catch(() => undefined);
    return c && { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, expiration: c.expiration };
  } finally {
    for (const v of VARS) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
  }
}

t.test('environment credentials are read as the SDK default chain reads them', async (t) => {
  const cases: Partial<Record<(typeof VARS)[number], string>>[] = [
    {},
    { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE' },
    { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret' },
    { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token' },
    { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token', AWS_CREDENTIAL_EXPIRATION: '2026-12-01T12:00:00Z' },
    { AWS_PROFILE: 'dev', AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret' },
    { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: 'secret' },
  ];
  for (const env of cases) {
    const ours = environmentCredentials(env);
    const sdk = await sdkFromEnv(env);
    const label = JSON.stringify(env);
    if (sdk === undefined) {
      t.equal(ours, undefined, `${label}: left to the rest of the chain`);
      continue;
    }
    t.equal(ours?.accessKeyId, sdk.accessKeyId, label);
    t.equal(ours?.secretAccessKey, sdk.secretAccessKey, label);
    t.equal(ours?.sessionToken, sdk.sessionToken, label);
    t.equal(ours?.expiration?.getTime(), sdk.expiration?.getTime(), label);
  }
});
