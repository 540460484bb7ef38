import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SidecarError } from '../errors.js';
import type { DataAccess } from '../store/data-access.js';
import { PARTNER_ID } from '../store/partners/config.js';
import type { PartnerPool } from '../store/partners/pool.js';
import { routeConfig, useRouteConfig } from './route-config.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The stores of the partner this request runs as (set for data routes only). */
    dataAccess: DataAccess;
  }
}

export interface TenancyOptions {
  /** Header naming the partner (default `x-partner-id`). Never read from a body or guessed. */
  readonly header: string;
  /** When true, a request without the header is 400 ErrMissingPartner; otherwise it uses `defaultAccess`. */
  readonly requirePartner: boolean;
  readonly pool: PartnerPool | undefined;
  /** The sidecar's own credentials; undefined when every request must name a partner. */
  readonly defaultAccess: DataAccess | undefined;
}

/** The stores of a request without a partner header (the sidecar's own), or undefined when it names a partner. */
function withoutPartner(request: FastifyRequest, options: TenancyOptions): DataAccess | undefined {
  const raw = request.headers[options.header];
  if (Array.isArray(raw)) throw new SidecarError('ErrInvalidRequest', 400, `send the ${options.header} header once`);
  if (raw === undefined || raw === '') {
    if (options.requirePartner || !options.defaultAccess) {
      throw new SidecarError('ErrMissingPartner', 400, `this sidecar needs the ${options.header} header naming a partner`);
    }
    return options.defaultAccess;
  }
  return undefined;
}

async function resolvePartner(request: FastifyRequest, reply: FastifyReply, options: TenancyOptions): Promise<DataAccess> {
  const raw = request.headers[options.header] as string;
  if (!PARTNER_ID.test(raw) || !options.pool?.has(raw)) {
    throw new SidecarError('ErrUnknownPartner', 403, options.pool ? 'unknown partner' : 'no partners are configured on this sidecar');
  }
  // The lease tells the pool this request uses the partner's clients: a partner removed meanwhile has its clients
  // closed once its requests are answered, not under them.
  const lease = await options.pool.lease(raw);
  if (reply.raw.closed) lease.release();
  else reply.raw.once('close', lease.release);
  return lease.access;
}

/** Picks the partner of each data request from its header and attaches that partner's stores. */
export function registerTenancy(app: FastifyInstance, options: TenancyOptions): void {
  const header = options.header.toLowerCase();
  const opts = { ...options, header };
  useRouteConfig(app);
  app.decorateRequest('dataAccess', null as unknown as DataAccess);
  // Callback-style: the sidecar's own stores (no partner header) are attached without a promise per request.
  app.addHook('preHandler', (request, reply, done) => {
    if (!routeConfig(request).op) return done();
    let access: DataAccess | undefined;
    try {
      access = withoutPartner(request, opts);
    } catch (err) {
      return done(err as Error);
    }
    if (access) {
      request.dataAccess = access;
      return done();
    }
    resolvePartner(request, reply, opts).then(
      (partnerAccess) => {
        request.dataAccess = partnerAccess;
        done();
      },
      (err: Error) => done(err),
    );
  });
}
