import { watch, type FSWatcher } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { PartnerConfigError, parsePartners, partnersDigest, readPartnersText, type PartnerConfig } from './config.js';
import type { PartnerChanges, PartnerPool } from './pool.js';

/** The pino methods the reloader logs with (Fastify's `app.log`). */
export interface ReloadLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface PartnersReloaderOptions {
  readonly file: string;
  readonly pool: PartnerPool;
  /** SHA-256 of the file loaded at boot (version 1). */
  readonly sha256: string;
  readonly log: ReloadLog;
  /**
   * Before the swap: load what the new set needs (the KMS module for a first partner KMS key) and make its added and
   * changed partners ready (their tables, with --create-tables). A failure rejects the reload like an invalid file.
   */
  readonly prepare?: (partners: ReadonlyMap<string, PartnerConfig>, fresh: PartnerConfig[]) => Promise<void>;
  /** After the swap, per removed or changed partner: drop what outlives its clients (data-key caches). */
  readonly forget: (partner: string) => void;
  /** Quiet time after the last change on disk before the file is read (editors and k8s write in several steps). */
  readonly debounceMs?: number;
}

export type ReloadTrigger = 'SIGHUP' | 'file';

export type ReloadOutcome =
  | { readonly ok: true; readonly version: number; readonly changes: PartnerChanges }
  | { readonly ok: false; readonly errors: string[] }
  | { readonly ok: 'unchanged' };

/** Error code on every log line of a rejected partners file. */
export const RELOAD_ERROR_CODE = 'ErrPartnerConfig';

/**
 * Re-reads the partners file on demand (SIGHUP) and when it changes on disk, and swaps the pool's partner set.
 *
 * The watch is on the file's directory, not the file: editors save by writing a new file and renaming it over the old
 * one, and a Kubernetes ConfigMap volume swaps a `..data` symlink — both replace the inode a file watch would follow.
 * Every event in the directory (and in the directory the file resolves to, when it is a symlink elsewhere) restarts a
 * short debounce; then the file is read and compared by SHA-256 with the last content tried, so unrelated files and
 * repeated events cost one read. A file that fails validation keeps the running set; each error is logged on a line
 * of its own.
 */
export class PartnersReloader {
  readonly #options: PartnersReloaderOptions;
  #version = 1;
  #sha256: string;
  /** Content last tried from a file event, good or bad: the same bytes are not tried (or logged) twice. */
  #lastTried: string;
  #lastSuccessAt = Date.now();
  #failures = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  readonly #watchers = new Map<string, FSWatcher>();
  #closed = false;

  constructor(options: PartnersReloaderOptions) {
    this.#options = options;
    this.#sha256 = options.sha256;
    this.#lastTried = options.sha256;
  }

  /** Successful loads of the partners file, boot included (so 1 until the first reload). */
  get version(): number {
    return this.#version;
  }

  get sha256(): string {
    return this.#sha256;
  }

  /** Unix time (ms) of the last successful load. */
  get lastSuccessAt(): number {
    return this.#lastSuccessAt;
  }

  get failures(): number {
    return this.#failures;
  }

  get partnerCount(): number {
    return this.#options.pool.partnerCount;
  }

  /** Re-read the file now; reloads never overlap (a second one waits for the first), and never reject. */
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const run = this.#queue.then(() => this.#reload(trigger)).catch((err: Error): ReloadOutcome => {
      // Not a bad file but a bug: still logged and counted, never an unhandled rejection (which would stop the process).
      this.#failures++;
      this.#options.log.error({ code: RELOAD_ERROR_CODE, trigger, err: err.message }, 'partners reload failed');
      return { ok: false, errors: [err.message] };
    });
    this.#queue = run;
    return run;
  }

  async #reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const { file, log, pool } = this.#options;
    let sha256: string | undefined;
    let partners: Map<string, PartnerConfig>;
    try {
      const text = await readPartnersText(file);
      sha256 = partnersDigest(text);
      if (trigger === 'file' && sha256 === this.#lastTried) return { ok: 'unchanged' };
      this.#lastTried = sha256;
      partners = parsePartners(text, file);
      const upcoming = pool.changes(partners);
      const fresh = [...upcoming.added, ...upcoming.changed].map((id) => partners.get(id)!);
      await this.#options.prepare?.(partners, fresh);
    } catch (err) {
      const errors = err instanceof PartnerConfigError ? err.errors : [`${file}: ${(err as Error).message}`];
      this.#failures++;
      for (const error of errors) log.error({ code: RELOAD_ERROR_CODE, trigger, file }, error);
      log.error(
        { code: RELOAD_ERROR_CODE, trigger, file, errors: errors.length, version: this.#version },
        `partners file rejected (${errors.length} error${errors.length === 1 ? '' : 's'}); still serving version ${this.#version}`,
      );
      return { ok: false, errors };
    }
    const changes = pool.replace(partners);
    for (const id of [...changes.removed, ...changes.changed]) this.#options.forget(id);
    this.#version++;
    this.#sha256 = sha256;
    this.#lastSuccessAt = Date.now();
    log.info(
      { trigger, file, version: this.#version, sha256, partners: partners.size, ...changes },
      `partners reloaded: version ${this.#version}, +${changes.added.length} -${changes.removed.length} ~${changes.changed.length}`,
    );
    return { ok: true, version: this.#version, changes };
  }

  /** Watch the file's directory (and its symlink target's) for changes; on failure, log and rely on SIGHUP. */
  async watch(): Promise<void> {
    const { file, log } = this.#options;
    const dirs = new Set([dirname(file)]);
    try {
      dirs.add(dirname(await realpath(file)));
    } catch {
      // Gone already: the directory watch sees it come back.
    }
    for (const [dir, watcher] of this.#watchers) {
      if (dirs.has(dir)) continue;
      watcher.close();
      this.#watchers.delete(dir);
    }
    for (const dir of dirs) {
      if (this.#closed || this.#watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, () => this.#changed());
        watcher.on('error', (err) => {
          // The directory itself went away (a symlink target replaced by k8s): watch again from the file's path.
          this.#watchers.delete(dir);
          watcher.close();
          log.warn({ dir, err: err.message }, 'partners file watch lost; watching again');
          this.#changed();
        });
        this.#watchers.set(dir, watcher);
      } catch (err) {
        log.warn({ dir, file: basename(file), err: (err as Error).message }, 'cannot watch the partners file; reload it with SIGHUP');
      }
    }
  }

  #changed(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      void this.reload('file').then(() => this.watch());
    }, this.#options.debounceMs ?? 250);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }
}
