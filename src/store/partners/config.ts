import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseDmsText } from '../../dms/index.js';

/** One tenant: whose role to assume, and where its data and keys live. */
export interface PartnerConfig {
  readonly id: string;
  readonly roleArn: string;
  readonly externalId?: string;
  readonly region?: string;
  readonly durationSeconds: number;
  readonly kmsKeyArn?: string;
  readonly endpoint?: string;
}

export class PartnerConfigError extends Error {
  readonly errors: string[];
  constructor(errors: string[]) {
    super(`Invalid partner configuration:\n${errors.map((e) => `  - ${e}`).join('\n')}`);
    this.errors = errors;
  }
}

export const PARTNER_ID = /^[A-Za-z0-9._-]{1,64}$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const KMS_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[\w/+=,.@-]+$/;
const EXTERNAL_ID = /^[\w+=,.@:/-]{2,1224}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;
const FIELDS = new Set(['roleArn', 'externalId', 'region', 'durationSeconds', 'kmsKeyArn', 'endpoint']);

function checkPartner(id: string, raw: unknown, file: string, errors: string[]): PartnerConfig | undefined {
  const at = `${file}: partner "${id}"`;
  if (!PARTNER_ID.test(id)) errors.push(`${at}: id must match ${PARTNER_ID}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    errors.push(`${at}: must be an object`);
    return undefined;
  }
  const p = raw as Record<string, unknown>;
  const before = errors.length;
  for (const key of Object.keys(p)) if (!FIELDS.has(key)) errors.push(`${at}: unknown field ${key}`);
  const text = (key: string, pattern: RegExp, required: boolean) => {
    const v = p[key];
    if (v === undefined) {
      if (required) errors.push(`${at}: ${key} is required`);
      return undefined;
    }
    if (typeof v !== 'string' || !pattern.test(v)) {
      errors.push(`${at}: ${key} is not valid`);
      return undefined;
    }
    return v;
  };
  const roleArn = text('roleArn', ROLE_ARN, true);
  const externalId = text('externalId', EXTERNAL_ID, false);
  const region = text('region', REGION, false);
  const kmsKeyArn = text('kmsKeyArn', KMS_ARN, false);
  const endpoint = text('endpoint', /^https?:\/\/[^\s/]+/, false);
  const duration = p.durationSeconds ?? 3600;
  if (typeof duration !== 'number' || !Number.isInteger(duration) || duration < 900 || duration > 43_200) {
    errors.push(`${at}: durationSeconds must be an integer from 900 to 43200`);
  }
  if (errors.length > before || !roleArn) return undefined;
  return {
    id,
    roleArn,
    durationSeconds: duration as number,
    ...(externalId ? { externalId } : {}),
    ...(region ? { region } : {}),
    ...(kmsKeyArn ? { kmsKeyArn } : {}),
    ...(endpoint ? { endpoint } : {}),
  };
}

/** Parse and validate a partners file (YAML or JSON): `{ partners: { <id>: { roleArn, … } } }`. All errors at once. */
export function parsePartners(text: string, file: string): Map<string, PartnerConfig> {
  const errors: string[] = [];
  let doc: unknown;
  try {
    doc = parseDmsText(text, file);
  } catch (err) {
    throw new PartnerConfigError([(err as Error).message]);
  }
  const root = doc as Record<string, unknown> | null;
  if (typeof root !== 'object' || root === null || Array.isArray(root) || typeof root.partners !== 'object' || root.partners === null) {
    throw new PartnerConfigError([`${file}: expected an object with a "partners" map`]);
  }
  for (const key of Object.keys(root)) if (key !== 'partners') errors.push(`${file}: unknown top-level field ${key}`);
  const partners = new Map<string, PartnerConfig>();
  for (const [id, raw] of Object.entries(root.partners as Record<string, unknown>)) {
    const partner = checkPartner(id, raw, file, errors);
    if (partner) partners.set(id, partner);
  }
  if (partners.size === 0 && errors.length === 0) errors.push(`${file}: no partners defined`);
  if (errors.length > 0) throw new PartnerConfigError(errors);
  return partners;
}

/** A partners file as read: its partners and the SHA-256 (hex) of its bytes, which names the version in force. */
export interface PartnersFile {
  readonly partners: Map<string, PartnerConfig>;
  readonly sha256: string;
}

export const partnersDigest = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The file's text; a read failure is a PartnerConfigError like any other. */
export async function readPartnersText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new PartnerConfigError([`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
}

export async function readPartners(file: string): Promise<PartnersFile> {
  const text = await readPartnersText(file);
  return { partners: parsePartners(text, file), sha256: partnersDigest(text) };
}

export async function loadPartners(file: string): Promise<Map<string, PartnerConfig>> {
  return (await readPartners(file)).partners;
}

/** Same role, external id, region, duration, KMS key and endpoint: the partner's clients and keys stay valid. */
export function samePartner(a: PartnerConfig, b: PartnerConfig): boolean {
  const fields = ['id', 'roleArn', 'externalId', 'region', 'durationSeconds', 'kmsKeyArn', 'endpoint'] as const;
  return fields.every((f) => a[f] === b[f]);
}
