import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';

/** A KMS key created in the account of `roleArn` (moto: assume the role, create the key with its credentials). */
export async function kmsKeyInAccountOf(endpoint: string, region: string, roleArn: string, description: string): Promise<string> {
  const sts = new STSClient({ region, endpoint });
  try {
    const out = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'dynamorm-test-setup' }));
    const c = out.Credentials!;
    const credentials = { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken };
    const kms = new KMSClient({ region, endpoint, credentials });
    try {
      return (await kms.send(new CreateKeyCommand({ Description: description }))).KeyMetadata!.Arn!;
    } finally {
      kms.destroy();
    }
  } finally {
    sts.destroy();
  }
}
