import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { AttributeValue } from '../../codec/attribute-value.js';

type Item = Record<string, AttributeValue>;

/** One item a transaction is about to write: its before-image (undefined: it did not exist). */
export interface IntentEntry {
  readonly table: string;
  readonly key: Item;
  readonly before: Item | undefined;
}

export interface PendingIntent {
  readonly id: string;
  readonly entries: IntentEntry[];
}

const PREFIX = 'txn-intent-';
const DONE = '.json';
const PARTIAL = '.tmp';

/**
 * Records written before the JSON-protocol switch hold binaries as `{"$b": base64}` (never a shape of an
 * AttributeValue tree, where a bare string under "$b" cannot occur): read back as the base64 string itself.
 */
function revive(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const b = (value as { $b?: unknown }).$b;
    if (keys.length === 1 && typeof b === 'string') return b;
  }
  return value;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Intent records of the embedded store's write transactions, one file each in the data directory (0600), made
 * durable (written, fsynced, renamed, directory fsynced) before the transaction's first write and removed once its
 * last write is acknowledged. A record still present at boot is a transaction that may be half-applied: recovery
 * puts its before-images back. LevelDB ignores files whose names it does not know.
 */
export class IntentJournal {
  private seq = Date.now() * 1000;

  constructor(private readonly dir: string) {}

  /** Durable before this resolves; returns the id to pass to finish(). */
  async begin(entries: readonly IntentEntry[]): Promise<string> {
    const id = String(this.seq++).padStart(20, '0');
    const partial = join(this.dir, `${PREFIX}${id}${PARTIAL}`);
    const handle = await open(partial, 'wx', 0o600);
    try {
      await handle.writeFile(JSON.stringify({ v: 1, entries }));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(partial, join(this.dir, `${PREFIX}${id}${DONE}`));
    await syncDir(this.dir);
    return id;
  }

  /** The transaction is complete (all written, or all restored): forget its intent. */
  async finish(id: string): Promise<void> {
    await unlink(join(this.dir, `${PREFIX}${id}${DONE}`));
    await syncDir(this.dir);
  }

  /**
   * Intents left by a crash, newest first (restoring in that order leaves the oldest before-image of an item).
   * Partial files never became intents (the rename is the commit point of begin()), so they are deleted.
   */
  async pending(): Promise<PendingIntent[]> {
    const names = (await readdir(this.dir)).filter((n) => n.startsWith(PREFIX));
    for (const name of names.filter((n) => n.endsWith(PARTIAL))) await unlink(join(this.dir, name));
    const ids = names.filter((n) => n.endsWith(DONE)).map((n) => n.slice(PREFIX.length, -DONE.length));
    ids.sort().reverse();
    const out: PendingIntent[] = [];
    for (const id of ids) {
      const text = await readFile(join(this.dir, `${PREFIX}${id}${DONE}`), 'utf8');
      const record = JSON.parse(text, revive) as { entries: IntentEntry[] };
      out.push({ id, entries: record.entries });
    }
    return out;
  }
}
