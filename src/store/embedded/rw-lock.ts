/** Releases a held lock; calling it more than once is a no-op. */
export type Release = () => void;

interface Waiter {
  readonly exclusive: boolean;
  readonly grant: () => void;
}

/**
 * Async readers-writer lock. Waiters are served strictly in arrival order, and a reader that arrives while anyone
 * is queued waits behind them, so a queued writer is never starved by a stream of readers (writer preference) and
 * readers queued behind a writer run together once it releases.
 */
export class RwLock {
  private readers = 0;
  private writer = false;
  private readonly queue: Waiter[] = [];

  /** Shared acquisition; resolves with the release function once granted. */
  acquireRead(): Promise<Release> {
    return this.acquire(false);
  }

  /** Exclusive acquisition; resolves with the release function once granted. */
  acquireWrite(): Promise<Release> {
    return this.acquire(true);
  }

  /** Runs `fn` holding the shared lock. */
  read<T>(fn: () => Promise<T>): Promise<T> {
    return this.run(false, fn);
  }

  /** Runs `fn` holding the exclusive lock. */
  write<T>(fn: () => Promise<T>): Promise<T> {
    return this.run(true, fn);
  }

  /** Snapshot of the lock state, for diagnostics and tests. */
  get state(): { readers: number; writer: boolean; queued: number } {
    return { readers: this.readers, writer: this.writer, queued: this.queue.length };
  }

  private async run<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire(exclusive);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private acquire(exclusive: boolean): Promise<Release> {
    return new Promise<Release>((resolve) => {
      const grant = (): void => resolve(this.releaser(exclusive));
      if (this.queue.length === 0 && this.canGrant(exclusive)) {
        this.take(exclusive);
        grant();
      } else {
        this.queue.push({ exclusive, grant });
      }
    });
  }

  private canGrant(exclusive: boolean): boolean {
    return exclusive ? !this.writer && this.readers === 0 : !this.writer;
  }

  private take(exclusive: boolean): void {
    if (exclusive) this.writer = true;
    else this.readers += 1;
  }

  private releaser(exclusive: boolean): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (exclusive) this.writer = false;
      else this.readers -= 1;
      this.drain();
    };
  }

  private drain(): void {
    while (this.queue.length > 0 && this.canGrant(this.queue[0].exclusive)) {
      const next = this.queue.shift()!;
      this.take(next.exclusive);
      next.grant();
    }
  }
}
