import { untilDeadline } from '../deadline.js';
import type { STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity } from '@aws-sdk/types';
import { SidecarError } from '../../errors.js';
import type { PartnerConfig } from './config.js';

export interface RoleCredentialsOptions {
  readonly sts: Pick<STSClient, 'send'>;
  readonly partner: PartnerConfig;
  /** Refresh this long before expiry (default 5 minutes). */
  readonly refreshBeforeMs?: number;
  /** After a failed AssumeRole, callers without valid credentials fail fast for this long (no retry storm). */
  readonly failureBackoffMs?: number;
  readonly now?: () => number;
  readonly onAssumeRole?: (outcome: 'ok' | 'error') => void;
}

/** Loaded on the first AssumeRole, not at boot: only a sidecar with partners ever assumes a role. */
let stsModule: typeof import('@aws-sdk/client-sts') | undefined;

type Identity = AwsCredentialIdentity & { expiration: Date };

/** Session names allow [\w+=,.@-], at most 64 characters. */
export function sessionName(partner: string): string {
  return `dynamorm-${partner}`.replace(/[^\w+=,.@-]/g, '-').slice(0, 64);
}

/**
 * One partner's AssumeRole credentials: cached, refreshed ahead of expiry by a single shared call, and
 * still served while they are valid even if STS is failing.
 */
export class RoleCredentials {
  readonly #options: RoleCredentialsOptions;
  readonly #refreshBeforeMs: number;
  readonly #now: () => number;
  #current: Identity | undefined;
  #inflight: Promise<Identity> | undefined;
  #failedAt = Number.NEGATIVE_INFINITY;
  #lastError: string | undefined;

  constructor(options: RoleCredentialsOptions) {
    this.#options = options;
    this.#refreshBeforeMs = options.refreshBeforeMs ?? 5 * 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** Usable as the AWS SDK `credentials` provider. */
  readonly provide = (): Promise<AwsCredentialIdentity> => this.get();

  async get(): Promise<AwsCredentialIdentity> {
    const now = this.#now();
    const current = this.#current;
    if (current && now < current.expiration.getTime() - this.#refreshBeforeMs) return current;
    const stillValid = current !== undefined && now < current.expiration.getTime() - 10_000;
    if (!this.#inflight && now - this.#failedAt < (this.#options.failureBackoffMs ?? 5_000)) {
      if (stillValid) return current!;
      throw this.#error();
    }
    const refresh = (this.#inflight ??= this.#assume());
    if (stillValid) {
      refresh.catch(() => undefined);
      return current!;
    }
    // One AssumeRole serves every waiting request: each waits for it only until its own deadline.
    return untilDeadline(refresh);
  }

  async #assume(): Promise<Identity> {
    const { partner, sts } = this.#options;
    try {
      const { AssumeRoleCommand } = stsModule ?? (stsModule = await import('@aws-sdk/client-sts'));
      const out = await sts.send(
        new AssumeRoleCommand({
          RoleArn: partner.roleArn,
          RoleSessionName: sessionName(partner.id),
          DurationSeconds: partner.durationSeconds,
          ...(partner.externalId ? { ExternalId: partner.externalId } : {}),
        }),
      );
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey || !c.Expiration) throw new Error('AssumeRole returned no credentials');
      this.#current = {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: new Date(c.Expiration),
      };
      this.#options.onAssumeRole?.('ok');
      return this.#current;
    } catch (err) {
      this.#failedAt = this.#now();
      this.#lastError = (err as Error).name || 'Error';
      this.#options.onAssumeRole?.('error');
      throw this.#error();
    } finally {
      this.#inflight = undefined;
    }
  }

  #error(): SidecarError {
    return new SidecarError(
      'ErrPartnerCredentials',
      503,
      `could not assume the role of partner ${this.#options.partner.id} (${this.#lastError ?? 'STS error'}); retry shortly`,
      { retryAfter: 5 },
    );
  }
}
