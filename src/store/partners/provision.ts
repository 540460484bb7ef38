import type { STSClient } from '@aws-sdk/client-sts';
import type { TableDef } from '../../model/index.js';
import { dynamoClientConfig, lazyControlClient, leanClientOptions, whereOf } from '../backend.js';
import { LeanDynamoClient } from '../dataplane/client.js';
import { ensureTables } from '../tables.js';
import { PartnerConfigError, type PartnerConfig } from './config.js';
import { RoleCredentials } from './credentials.js';

export interface ProvisionOptions {
  readonly sts: Pick<STSClient, 'send'>;
  readonly partners: readonly PartnerConfig[];
  readonly tables: readonly TableDef[];
  /** The sidecar's DynamoDB endpoint and region, for partners that name none of their own. */
  readonly endpoint: string | undefined;
  readonly region: string;
}

/**
 * --create-tables on a reload: the tables of added and changed partners, made before the new set is swapped in (so
 * their first request finds them), each over a client of its own that is closed afterwards. Every failure is collected
 * into one PartnerConfigError, which rejects the reload.
 */
export async function provisionPartners(options: ProvisionOptions): Promise<void> {
  const errors: string[] = [];
  for (const partner of options.partners) {
    const credentials = new RoleCredentials({ sts: options.sts, partner });
    const region = partner.region ?? options.region;
    const endpoint = partner.endpoint ?? options.endpoint;
    const client = new LeanDynamoClient(leanClientOptions(endpoint, region, credentials.provide));
    const control = lazyControlClient(() => dynamoClientConfig(endpoint, region, credentials.provide));
    try {
      await ensureTables({ describe: client, control: control.get, where: whereOf(endpoint, region) }, options.tables, { create: true, enableTtl: true });
    } catch (err) {
      errors.push(`partner "${partner.id}": cannot create its tables (${(err as Error).message})`);
    } finally {
      client.close();
      control.destroy();
    }
  }
  if (errors.length > 0) throw new PartnerConfigError(errors);
}
