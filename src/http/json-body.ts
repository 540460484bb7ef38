import type { FastifyInstance } from 'fastify';
import { SidecarError } from '../errors.js';
import { normalizeDecimal } from '../codec/index.js';

interface ReviverContext {
  source?: string;
}

/**
 * JSON.parse drops digits a double cannot hold. Node 24's reviver sees each number's source text,
 * so a literal that would be rounded is handed on as its exact decimal string instead (N accepts both).
 */
function keepExactNumbers(this: unknown, _key: string, value: unknown, context?: ReviverContext): unknown {
  if (typeof value !== 'number' || context?.source === undefined) return value;
  const exact = normalizeDecimal(context.source);
  if (exact === null || normalizeDecimal(String(value)) === exact) return value;
  return exact;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export function parseJsonBody(bytes: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new SidecarError('ErrInvalidRequest', 400, 'request body is not valid UTF-8');
  }
  if (text.trim().length === 0) throw new SidecarError('ErrInvalidRequest', 400, 'request body is empty; send a JSON document');
  try {
    return JSON.parse(text, keepExactNumbers as (this: unknown, key: string, value: unknown) => unknown);
  } catch (err) {
    throw new SidecarError('ErrInvalidRequest', 400, `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Replace Fastify's JSON parser for `application/json` and `application/*+json`. */
export function registerJsonBody(app: FastifyInstance): void {
  app.removeContentTypeParser(['application/json']);
  const parser = (_request: unknown, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
    try {
      done(null, parseJsonBody(body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  };
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, parser);
  app.addContentTypeParser(/^application\/[a-z0-9.+-]+\+json$/, { parseAs: 'buffer' }, parser);
}
