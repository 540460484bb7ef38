// Span export with the OpenTelemetry SDK, loaded (dynamic import) only when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set: a sidecar without them never loads it. The exporter is OTLP/HTTP with
// JSON bodies; endpoint, headers, timeout, batching (OTEL_BSP_*) and sampler (OTEL_TRACES_SAMPLER[_ARG]) come from
// the standard variables, which the SDK reads itself.
import type { Attributes, ParentContext, SpanHandle, SpanRecorder } from './context.js';
import { setSpanRecorder } from './context.js';

/** Longest a shutdown waits for the last spans to be exported. */
const SHUTDOWN_FLUSH_MS = 2_000;

export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  if (String(env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return false;
  if (String(env.OTEL_TRACES_EXPORTER ?? '').toLowerCase() === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Load the SDK and record spans from now on; undefined (and nothing loaded) when the variables do not ask for it. */
export async function startTracing(env: NodeJS.ProcessEnv = process.env): Promise<SpanRecorder | undefined> {
  if (!tracingWanted(env)) return undefined;
  const [api, sdk, otlp, resources] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const resource = resources.defaultResource()
    .merge(resources.resourceFromAttributes({ 'service.name': 'dynamorm-sidecar' }))
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the defaults above.
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const provider = new sdk.BasicTracerProvider({ resource, spanProcessors: [new sdk.BatchSpanProcessor(new otlp.OTLPTraceExporter())] });
  const tracer = provider.getTracer('dynamorm-sidecar');

  const spans = new WeakMap<SpanHandle, import('@opentelemetry/api').Span>();
  const handle = (span: import('@opentelemetry/api').Span): SpanHandle => {
    const context = span.spanContext();
    const made: SpanHandle = {
      traceId: context.traceId,
      spanId: context.spanId,
      sampled: (context.traceFlags & api.TraceFlags.SAMPLED) === api.TraceFlags.SAMPLED,
      setAttributes: (attributes: Attributes) => void span.setAttributes(attributes),
      end(failed) {
        if (failed) span.setStatus({ code: api.SpanStatusCode.ERROR, message: failed.message ? `${failed.name}: ${failed.message}` : failed.name });
        if (failed) span.setAttribute('error.type', failed.name);
        span.end();
      },
    };
    spans.set(made, span);
    return made;
  };
  const parentOf = (parent: ParentContext) =>
    api.trace.setSpanContext(api.ROOT_CONTEXT, {
      traceId: parent.traceId,
      spanId: parent.spanId,
      traceFlags: parent.sampled ? api.TraceFlags.SAMPLED : api.TraceFlags.NONE,
      isRemote: true,
      ...(parent.traceState ? { traceState: api.createTraceState(parent.traceState) } : {}),
    });

  const recorder: SpanRecorder = {
    serverSpan: (name, parent, attributes) =>
      handle(tracer.startSpan(name, { kind: api.SpanKind.SERVER, attributes }, parent ? parentOf(parent) : api.ROOT_CONTEXT)),
    clientSpan: (name, parent, attributes) =>
      handle(tracer.startSpan(name, { kind: api.SpanKind.CLIENT, attributes }, api.trace.setSpan(api.ROOT_CONTEXT, spans.get(parent)!))),
    flush: () => provider.forceFlush(),
    async shutdown() {
      setSpanRecorder(undefined);
      // A collector that does not answer must not hold the exit (OTEL_EXPORTER_OTLP_TIMEOUT is 10 s by default).
      let timer: NodeJS.Timeout | undefined;
      const giveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_FLUSH_MS).unref()));
      await Promise.race([provider.shutdown(), giveUp]).finally(() => clearTimeout(timer));
    },
  };
  setSpanRecorder(recorder);
  return recorder;
}
