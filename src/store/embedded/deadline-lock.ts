import { remainingMs, untilDeadline } from '../deadline.js';
import type { RwLock } from './rw-lock.js';

/**
 * Runs `fn` holding `lock`, waiting for the lock no longer than the current request's deadline (a 504 then, and
 * nothing done). Once held, `fn` runs to the end: a transaction is never cut in half by a deadline.
 */
export async function lockWithin<T>(lock: RwLock, exclusive: boolean, fn: () => Promise<T>): Promise<T> {
  if (remainingMs() === Infinity) return exclusive ? lock.write(fn) : lock.read(fn);
  const acquiring = exclusive ? lock.acquireWrite() : lock.acquireRead();
  let release: () => void;
  try {
    release = await untilDeadline(acquiring);
  } catch (err) {
    // Granted later: handed straight back.
    void acquiring.then((r) => r());
    throw err;
  }
  try {
    return await fn();
  } finally {
    release();
  }
}
