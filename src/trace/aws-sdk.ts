import { traceHooks, type BackendService } from './context.js';

// The slice of Smithy's middleware types used here (@smithy/types is not a direct dependency).
interface MetadataBearer {
  $metadata?: { attempts?: number };
}
interface BuildArgs {
  input: object;
  request: unknown;
}
type BuildHandler = (args: BuildArgs) => Promise<{ output: MetadataBearer; response: unknown }>;
type BuildMiddleware = (next: BuildHandler, context: { commandName?: string }) => BuildHandler;
interface SdkClient {
  readonly middlewareStack: { add(middleware: BuildMiddleware, options: { step: 'build'; name: string; priority: 'high'; override: boolean }): void };
}

/**
 * Trace an AWS SDK client's calls made inside a traced request: `X-Amzn-Trace-Id` on the request and, when spans
 * are exported, one client span per call (retries included: the build step runs once per call).
 */
export function traceAwsClient<C extends SdkClient>(client: C, service: BackendService): C {
  const middleware: BuildMiddleware = (next, context) => async (args) => {
    const operation = String(context.commandName ?? 'unknown').replace(/Command$/, '');
    const call = traceHooks.beforeCall(service, operation, args.input as Record<string, unknown>);
    if (!call) return next(args);
    const request = args.request as { headers?: Record<string, string> };
    // Runs before the SDK's own recursion-detection middleware, which keeps a header that is already there.
    if (request.headers) request.headers['x-amzn-trace-id'] = call.header;
    try {
      const out = await next(args);
      call.end({ output: out.output, attempts: out.output.$metadata?.attempts });
      return out;
    } catch (error) {
      call.end({ error, attempts: (error as MetadataBearer).$metadata?.attempts });
      throw error;
    }
  };
  client.middlewareStack.add(middleware, { step: 'build', name: 'dynamormTraceContext', priority: 'high', override: true });
  return client;
}
