import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox/type';
import { SidecarError } from '../errors.js';
import type { ModelDef, ModelRegistry } from '../model/index.js';
import { problemResponses } from './schemas.js';

export function summarizeModel(model: ModelDef) {
  const { dms } = model;
  return {
    name: model.name,
    table: model.table,
    keys: dms.keys,
    indexes: (dms.indexes ?? []).map((i) => ({ ...i, projection: i.projection ?? { type: 'ALL' } })),
    attributes: dms.attributes.map((a) => ({
      attribute: a.attribute,
      type: a.type,
      required: a.required === true,
      optional: a.optional === true,
      omit_empty: a.omit_empty === true,
      roles: a.roles ?? [],
      ...(a.format ? { format: a.format } : {}),
      ...(a.json ? { json: true } : {}),
      ...(a.binary ? { binary: true } : {}),
      encrypted: a.encryption !== undefined,
    })),
  };
}

const MAX_SUGGESTIONS = 5;

/** 404 naming the loaded models, the closest to the asked name first (a typo or a case slip shows at once). */
function modelNotFound(registry: ModelRegistry, name: string): SidecarError {
  const total = registry.list().length;
  if (total === 0) return new SidecarError('ErrModelNotFound', 404, `no model named ${name}; no models are loaded (check --schemas)`);
  const names = registry.closestNames(name, MAX_SUGGESTIONS);
  const more = total > names.length ? ` and ${total - names.length} more (GET /v1/models lists them)` : '';
  return new SidecarError('ErrModelNotFound', 404, `no model named ${name}; loaded models, closest first: ${names.join(', ')}${more}`);
}

/** `GET /v1/models`, `GET /v1/models/{model}`, and ErrModelNotFound for any path under an unknown model. */
export async function modelRoutes(app: FastifyInstance, options: { registry: ModelRegistry }): Promise<void> {
  const { registry } = options;
  const lookup = (name: string) => {
    const model = registry.get(name);
    if (!model) throw modelNotFound(registry, name);
    return model;
  };

  app.get(
    '/v1/models',
    {
      schema: {
        operationId: 'listModels',
        summary: 'List the loaded DMS models',
        tags: ['models'],
        response: { 200: Type.Object({ models: Type.Array(Type.Ref('ModelSummary')) }), ...problemResponses },
      },
    },
    async () => ({ models: registry.list().map(summarizeModel) }),
  );

  app.get(
    '/v1/models/:model',
    {
      schema: {
        operationId: 'getModel',
        summary: 'Describe one model',
        tags: ['models'],
        params: Type.Object({ model: Type.String() }),
        response: { 200: Type.Ref('ModelSummary'), ...problemResponses },
      },
    },
    async (req) => summarizeModel(lookup((req.params as { model: string }).model)),
  );

  // An unknown model is named as such (checked before any body is read); for a known one the not-found handler
  // tells 404 from 405.
  app.all(
    '/v1/models/:model/*',
    {
      schema: { hide: true },
      config: { fallback: true },
      onRequest: async (req) => void lookup((req.params as { model: string }).model),
    },
    async (_req, reply) => reply.callNotFound(),
  );
}
