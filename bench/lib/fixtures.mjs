// The item every benchmark operation reads or writes, in both shapes: the sidecar's logical JSON and the
// DynamoDB AttributeValue map the direct SDK path sends (and the null endpoint returns).

/** Logical item as a client sends it to the sidecar (lifecycle attributes are the sidecar's). */
export function logicalItem(pk, sk) {
  return {
    pk,
    sk,
    name: 'Ada Lovelace',
    count: 42,
    tags: ['alpha', 'beta', 'gamma'],
    active: true,
    profile: { city: 'London', zip: 'N1 9GU', score: 9.5 },
  };
}

/** RFC3339 with nine fractional digits, as the sidecar writes. */
export function nowNano() {
  return new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

/** The same item as DynamoDB stores it, lifecycle attributes included. */
export function avItem(pk, sk, now = '2026-01-01T00:00:00.000000000Z', version = '0') {
  return {
    pk: { S: pk },
    sk: { S: sk },
    name: { S: 'Ada Lovelace' },
    count: { N: '42' },
    tags: { SS: ['alpha', 'beta', 'gamma'] },
    active: { BOOL: true },
    profile: { M: { city: { S: 'London' }, zip: { S: 'N1 9GU' }, score: { N: '9.5' } } },
    createdAt: { S: now },
    updatedAt: { S: now },
    version: { N: version },
  };
}
