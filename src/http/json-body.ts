import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SidecarError } from '../errors.js';
import { ExactNumber, normalizeDecimal } from '../codec/index.js';
import { scanJsonStructure } from './json-structure.js';

interface ReviverContext {
  source?: string;
}

type Reviver = (this: unknown, key: string, value: unknown) => unknown;

/** The exact decimal of a number literal when the double JSON.parse made of it is not exact. */
function inexactDecimal(value: unknown, context: ReviverContext | undefined): string | undefined {
  if (typeof value !== 'number' || context?.source === undefined) return undefined;
  const exact = normalizeDecimal(context.source);
  // Too long to normalise (e.g. 1e-1000): hand the literal on as text, so N validation refuses it instead of
  // silently keeping the double JSON.parse made of it.
  if (exact === null) return context.source;
  return normalizeDecimal(String(value)) === exact ? undefined : exact;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
const RAW_BODY = Symbol('rawJsonBody');
/** 16+ digits/dots in a row, or an exponent: only then can a number literal lose digits in a double. */
const MAYBE_INEXACT = /[0-9.]{16}|[0-9][eE]/;

interface ParsedBody {
  readonly value: unknown;
  /** Set when some number literal could not be held by a double. */
  readonly hasInexactNumbers: boolean;
}

function decode(bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new SidecarError('ErrInvalidRequest', 400, 'request body is not valid UTF-8');
  }
}

/**
 * Far deeper than any request can be (an item nests at most 32 levels, the request around it a few more), and
 * shallow enough for the recursive reviver and validators to stay clear of the stack limit.
 */
export const MAX_BODY_DEPTH = 1000;

function parse(text: string, reviver?: Reviver): unknown {
  try {
    return JSON.parse(text, reviver);
  } catch (err) {
    if (reviver && err instanceof RangeError) throw err; // the stack, not the JSON: see parseJsonText
    // V8's message quotes the text around the error, which may be a secret the caller meant to send: not echoed.
    throw new SidecarError('ErrInvalidRequest', 400, `request body is not valid JSON (${syntaxHint(err as Error)})`);
  }
}

function tooDeep(depth: number): SidecarError {
  return new SidecarError('ErrInvalidRequest', 400, `request body nests ${depth} levels deep; the limit is ${MAX_BODY_DEPTH} (an item may nest at most 32)`);
}

/**
 * JSON.parse drops digits a double cannot hold. Node 24's reviver sees each number's source text, so such a
 * literal first becomes its exact decimal string (what schema validation sees: N accepts decimal strings).
 */
export function parseJsonText(text: string): ParsedBody {
  if (text.trim().length === 0) throw new SidecarError('ErrInvalidRequest', 400, 'request body is empty; send a JSON document');
  let hasInexactNumbers = false;
  // A literal of at most 15 digits without an exponent always survives a double: most bodies skip the reviver.
  const reviver = MAYBE_INEXACT.test(text)
    ? (function (_key, v, context?: ReviverContext) {
        const exact = inexactDecimal(v, context);
        if (exact === undefined) return v;
        hasInexactNumbers = true;
        return exact;
      } as Reviver)
    : undefined;
  let value: unknown;
  try {
    value = parse(text, reviver);
  } catch (err) {
    // JSON.parse alone is iterative but a reviver recurses, so a deep enough body overflows the stack there.
    if (!(err instanceof RangeError)) throw err;
    parse(text); // broken JSON is reported as such
    throw tooDeep(scanJsonStructure(text).depth);
  }
  const { duplicateKey, depth } = scanJsonStructure(text);
  if (depth > MAX_BODY_DEPTH) throw tooDeep(depth);
  if (duplicateKey !== undefined) {
    throw new SidecarError('ErrInvalidRequest', 400, `request body repeats the key ${JSON.stringify(duplicateKey.slice(0, 64))} in one object`);
  }
  return { value, hasInexactNumbers };
}

/** Where the JSON broke, without the excerpt V8 quotes. */
function syntaxHint(err: Error): string {
  const position = /position (\d+)/.exec(err.message)?.[1];
  if (position) return `syntax error at character ${position}`;
  return /end of JSON input/i.test(err.message) ? 'unexpected end of input' : 'syntax error';
}

/** After validation, numbers nested in M/L/json values must stay numbers: they become ExactNumber instead. */
export function parseWithExactNumbers(text: string): unknown {
  return parse(text, function (_key, v, context?: ReviverContext) {
    const exact = inexactDecimal(v, context);
    return exact === undefined ? v : new ExactNumber(exact);
  } as Reviver);
}

export function parseJsonBody(bytes: Buffer): unknown {
  return parseJsonText(decode(bytes)).value;
}

export const ACCEPTED_CONTENT_TYPES = 'application/json (UTF-8) or an application/*+json type such as application/merge-patch+json';

function unsupportedMediaType(contentType: string | undefined): SidecarError {
  const given = contentType ? `content-type ${JSON.stringify(contentType.split(';')[0].trim().slice(0, 100))} is not accepted` : 'a body without content-type is not accepted';
  return new SidecarError('ErrUnsupportedMediaType', 415, `${given}; send ${ACCEPTED_CONTENT_TYPES}`);
}

/** Only JSON bodies are accepted (anything else is 415); see parseJsonText for how numbers are kept exact. */
export function registerJsonBody(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  const parser = (request: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
    try {
      const text = decode(body as Buffer);
      const parsed = parseJsonText(text);
      if (parsed.hasInexactNumbers) (request as unknown as Record<symbol, string>)[RAW_BODY] = text;
      done(null, parsed.value);
    } catch (err) {
      done(err as Error, undefined);
    }
  };
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, parser);
  app.addContentTypeParser(/^application\/[a-z0-9.+-]+\+json$/, { parseAs: 'buffer' }, parser);
  // Every other type: Fastify's own 415 says only "Unsupported Media Type"; this one says what to send.
  app.addContentTypeParser('*', (request, _payload, done) => done(unsupportedMediaType(request.headers['content-type'])));
  app.addHook('preHandler', async (request) => {
    const raw = (request as unknown as Record<symbol, string | undefined>)[RAW_BODY];
    if (raw !== undefined) request.body = parseWithExactNumbers(raw);
  });
}
