import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CallCounters, CacheStats } from './crypto/index.js';


export interface CryptoSources {
  readonly counters: CallCounters;
  cacheStats(): CacheStats;
  /** Data-key caches alive (one per partner and key). */
  readonly cacheCount?: number;
}

/** What the partner pool holds, read at scrape time. */
export interface PartnerSources {
  readonly built: number;
  readonly sizes: { live: number; retiring: number; draining: number };
}

/** The partners file in force, read at scrape time. */
export interface PartnerReloadSources {
  /** Successful loads, boot included. */
  readonly version: number;
  readonly sha256: string;
  /** Unix time (ms) of the last successful load. */
  readonly lastSuccessAt: number;
  readonly failures: number;
  readonly partnerCount: number;
}

/** Prometheus metrics of the sidecar, on a registry of its own (several sidecars may share a process in tests). */
export class Metrics {
  readonly registry = new Registry();
  readonly #requests: Histogram<'route' | 'model' | 'op' | 'status'>;
  readonly #dynamo: Counter<'operation' | 'outcome'>;
  readonly #dynamoRetries: Counter<'operation'>;
  readonly #dynamoLatency: Histogram<'operation'>;
  readonly #sts: Counter<'partner' | 'outcome'>;
  readonly #unprocessed: Counter<'model' | 'op'>;
  readonly #dropped: Counter;
  /** Labelled children and label objects, built once per label combination (no per-request label objects). */
  readonly #requestChildren = new Map<string, Map<string, Map<string, Map<number, (seconds: number) => void>>>>();
  readonly #dynamoLabels = new Map<
    string,
    {
      operation: { operation: string };
      outcome: Record<'ok' | 'error' | 'throttled', { operation: string; outcome: string }>;
      latency: (seconds: number) => void;
    }
  >();

  constructor(crypto?: CryptoSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.#requests = new Histogram({
      name: 'dynamorm_http_request_duration_seconds',
      help: 'HTTP request latency by route, model, operation and status',
      labelNames: ['route', 'model', 'op', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.#dynamo = new Counter({
      name: 'dynamorm_dynamodb_calls_total',
      help: 'DynamoDB calls by operation and outcome (ok, error, throttled)',
      labelNames: ['operation', 'outcome'],
      registers,
    });
    this.#dynamoRetries = new Counter({
      name: 'dynamorm_dynamodb_retries_total',
      help: 'Extra attempts made for DynamoDB calls (AWS SDK or lean client retries)',
      labelNames: ['operation'],
      registers,
    });
    this.#dynamoLatency = new Histogram({
      name: 'dynamorm_dynamodb_call_duration_seconds',
      help: 'DynamoDB call latency by operation, retries and back-off included',
      labelNames: ['operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.#sts = new Counter({
      name: 'dynamorm_sts_assume_role_total',
      help: 'STS AssumeRole calls by partner and outcome',
      labelNames: ['partner', 'outcome'],
      registers,
    });
    this.#unprocessed = new Counter({
      name: 'dynamorm_batch_unprocessed_total',
      help: 'Batch entries still unprocessed at the retry deadline (returned to the caller)',
      labelNames: ['model', 'op'],
      registers,
    });
    this.#dropped = new Counter({
      name: 'dynamorm_http_connections_dropped_total',
      help: 'Client connections closed on arrival because MAX_CONNECTIONS were open',
      registers,
    });
    if (crypto) this.#registerCrypto(crypto, registers);
  }

  #registerCrypto(crypto: CryptoSources, registers: Registry[]): void {
    new Gauge({
      name: 'dynamorm_data_key_caches',
      help: 'Data-key caches alive (one per partner and key, bounded)',
      registers,
      collect() {
        this.set(crypto.cacheCount ?? 0);
      },
    });
    new Counter({
      name: 'dynamorm_kms_calls_total',
      help: 'Key provider calls (KMS or the local development key) by operation',
      labelNames: ['operation'],
      registers,
      collect() {
        this.reset();
        this.inc({ operation: 'GenerateDataKey' }, crypto.counters.generateDataKey);
        this.inc({ operation: 'Decrypt' }, crypto.counters.decrypt);
      },
    });
    new Counter({
      name: 'dynamorm_data_key_cache_total',
      help: 'Data-key cache lookups by side (encrypt, decrypt) and result (hit, miss)',
      labelNames: ['side', 'result'],
      registers,
      collect() {
        this.reset();
        const stats = crypto.cacheStats();
        for (const side of ['encrypt', 'decrypt'] as const) {
          this.inc({ side, result: 'hit' }, stats[side].hits);
          this.inc({ side, result: 'miss' }, stats[side].misses);
        }
      },
    });
  }

  /** Partner clients live and retiring, and how many were ever built: churn shows as builds, not as growth. */
  watchPartners(pool: PartnerSources): void {
    const registers = [this.registry];
    new Gauge({
      name: 'dynamorm_partner_clients',
      help: 'Partners with DynamoDB/KMS clients, by state (live; retiring: evicted, closed after a grace period; draining: removed or changed, closed when their requests are answered)',
      labelNames: ['state'],
      registers,
      collect() {
        const { live, retiring, draining } = pool.sizes;
        this.set({ state: 'live' }, live);
        this.set({ state: 'retiring' }, retiring);
        this.set({ state: 'draining' }, draining);
      },
    });
    new Counter({
      name: 'dynamorm_partner_client_builds_total',
      help: 'Partner client sets built (a partner taken back from retirement is not built again)',
      registers,
      collect() {
        this.reset();
        this.inc(pool.built);
      },
    });
  }

  /** The partners file in force: version, content hash, last successful load, failed reloads. */
  watchPartnerReloads(source: PartnerReloadSources): void {
    const registers = [this.registry];
    new Gauge({
      name: 'dynamorm_partners_config_version',
      help: 'Successful loads of the partners file since start (boot = 1; +1 per accepted reload)',
      registers,
      collect() {
        this.set(source.version);
      },
    });
    new Gauge({
      name: 'dynamorm_partners_config_info',
      help: 'The partners file in force: sha256 of its bytes (first 16 hex digits); always 1',
      labelNames: ['sha256'],
      registers,
      collect() {
        this.reset();
        this.set({ sha256: source.sha256.slice(0, 16) }, 1);
      },
    });
    new Gauge({
      name: 'dynamorm_partners_config_last_reload_timestamp_seconds',
      help: 'Unix time of the last successful load of the partners file (boot included)',
      registers,
      collect() {
        this.set(source.lastSuccessAt / 1000);
      },
    });
    new Counter({
      name: 'dynamorm_partners_config_reload_failures_total',
      help: 'Reloads of the partners file rejected (unreadable or invalid); the running set was kept',
      registers,
      collect() {
        this.reset();
        this.inc(source.failures);
      },
    });
    new Gauge({
      name: 'dynamorm_partners_configured',
      help: 'Partners in the running set',
      registers,
      collect() {
        this.set(source.partnerCount);
      },
    });
  }

  /**
   * The labelled child of the request histogram for one route × model × op × status, built once and kept: a request
   * then allocates no label object (the label values are route constants and a status code).
   */
  requestObserver(route: string, model: string, op: string, status: number): (seconds: number) => void {
    let byModel = this.#requestChildren.get(route);
    if (!byModel) this.#requestChildren.set(route, (byModel = new Map()));
    let byOp = byModel.get(model);
    if (!byOp) byModel.set(model, (byOp = new Map()));
    let byStatus = byOp.get(op);
    if (!byStatus) byOp.set(op, (byStatus = new Map()));
    let observe = byStatus.get(status);
    if (!observe) {
      observe = this.#requests.labels({ route, model, op, status: String(status) }).observe;
      byStatus.set(status, observe);
    }
    return observe;
  }

  assumeRole(partner: string, outcome: 'ok' | 'error'): void {
    this.#sts.inc({ partner, outcome });
  }

  connectionDropped(): void {
    this.#dropped.inc();
  }

  unprocessed(model: string, op: string, count: number): void {
    if (count > 0) this.#unprocessed.inc({ model, op }, count);
  }

  /** One finished call of the lean data-plane client (its `onCall` hook): counted and timed like the SDK's. */
  dynamoCall(call: { operation: string; seconds: number; outcome: 'ok' | 'error' | 'throttled'; attempts: number }): void {
    let labels = this.#dynamoLabels.get(call.operation);
    if (!labels) {
      const operation = call.operation;
      labels = {
        operation: { operation },
        outcome: { ok: { operation, outcome: 'ok' }, error: { operation, outcome: 'error' }, throttled: { operation, outcome: 'throttled' } },
        latency: this.#dynamoLatency.labels({ operation }).observe,
      };
      this.#dynamoLabels.set(operation, labels);
    }
    this.#dynamo.inc(labels.outcome[call.outcome]);
    if (call.attempts > 1) this.#dynamoRetries.inc(labels.operation, call.attempts - 1);
    labels.latency(call.seconds);
  }
}
