import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { Document, visit } from 'yaml';

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

// Plain scalars that YAML 1.1 parsers (PyYAML, ruamel: what openapi-python-client uses) read as something other than
// a string: booleans (y, yes, on, …), null and ~, the `=` value key and `<<` merge key, and anything starting like a
// number, a timestamp, a sexagesimal or .inf/.nan (a leading digit, sign or dot). The `yaml` library writes for 1.2.
const YAML11_WORDS = /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|~|=|<<)$/;
const YAML11_NUMBER_LIKE = /^[-+.]?[0-9]|^[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)$/;
const readAsNonStringByYaml11 = (s: string) => s === '' || YAML11_WORDS.test(s) || YAML11_NUMBER_LIKE.test(s);

/** `value` as YAML that YAML 1.1 and 1.2 parsers read alike: every string that 1.1 would resolve otherwise is quoted. */
export function portableYaml(value: unknown): string {
  const doc = new Document(value, { aliasDuplicateObjects: false });
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && readAsNonStringByYaml11(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc.toString({ lineWidth: 0 });
}

export function openApiYaml(app: FastifyInstance): string {
  return portableYaml(app.swagger());
}
