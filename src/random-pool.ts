import { randomBytes } from 'node:crypto';

/**
 * Random bytes for ids minted per request (request ids, trace and span ids), drawn from one pooled buffer: one
 * randomBytes call per 4 KiB instead of one per id, as crypto.randomUUID pools its own.
 */
class RandomPool {
  buffer = Buffer.alloc(0);
  #offset = 0;

  /** Reserves `bytes` fresh bytes and returns where they start in `buffer` (read them before the next take). */
  take(bytes: number): number {
    if (this.#offset + bytes > this.buffer.length) {
      this.buffer = randomBytes(4096);
      this.#offset = 0;
    }
    const at = this.#offset;
    this.#offset += bytes;
    return at;
  }
}

export const randomPool = new RandomPool();
