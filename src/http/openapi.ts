import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { stringify } from 'yaml';

export const OPENAPI_INFO = {
  title: 'dynamorm sidecar',
  version: '0.1.0',
  description:
    'Typed DynamoDB data access generated from DynamORM Spec (DMS) v0.1 models. Errors are RFC 9457 problem+json with a stable `code`.',
};

/** Registers the OpenAPI generator; must run before any route is added. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: { openapi: '3.1.0', info: OPENAPI_INFO },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
}

/** `/openapi.json` and `/openapi.yaml`, served from the same generated document. */
export async function openApiRoutes(app: FastifyInstance): Promise<void> {
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // The document is fixed once the routes are registered; its YAML form is made on first request and kept.
  let yaml: string | undefined;
  app.get('/openapi.yaml', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('application/yaml').send((yaml ??= openApiYaml(app))),
  );
}

export function openApiYaml(app: FastifyInstance): string {
  return stringify(app.swagger(), { aliasDuplicateObjects: false, lineWidth: 0 });
}
