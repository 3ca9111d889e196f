/**
 * The HTTP endpoints every component serves (fastify): /healthz and /livez (the process is
 * alive and its reconcile loops make progress; 503 with the reason when one is wedged), /readyz (its state is converged; 503 with the reason otherwise), /metrics (Prometheus
 * text) and /status (what it knows, as JSON; never secrets).
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { processMetrics, processMetricsText } from './metrics.ts';

export interface HealthSource {
  /** undefined when ready, else the reason it is not. */
  notReadyReason(): string | undefined;
  /** Why the process should be restarted (a reconcile that stopped making progress), else undefined. */
  notAliveReason?(): string | undefined;
  status(): Record<string, unknown>;
  /** Prometheus text exposition, when the component has metrics. */
  metricsText?(): Promise<string>;
}

export interface HealthServer { readonly url: string; close(): Promise<void> }

/** What fastify's schema controller calls to build a route's validator or serializer. */
function noSchemaCompiler(kind: string): () => never {
  return () => {
    throw new Error(`fastify ${kind} compiler: these servers' routes declare no schemas (shared/health.ts); add a compiler before adding one`);
  };
}

/**
 * A fastify instance without its schema compilers. Our routes declare no schemas, and the default
 * compilers (ajv, fast-json-stringify) cost every process that serves probes about 30 ms of its
 * start and their memory: fastify builds them when an instance is created, not when a schema
 * first needs one. The bundle leaves them out (scripts/bundle.ts).
 */
function probeServer(): FastifyInstance {
  return Fastify({
    logger: false,
    schemaController: { compilersFactory: { buildValidator: noSchemaCompiler('validator'), buildSerializer: noSchemaCompiler('serializer') } },
  });
}

export function parseListenAddress(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  const host = i > 0 ? text.slice(0, i) : '0.0.0.0';
  const port = Number(text.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`listen address "${text}": expected host:port with a port in 0..65535`);
  return { host, port };
}

/**
 * Probes and metrics (and /status unless `status: false`, for components that serve /status
 * apart, on loopback: it lists VTEPs and peers, which is nobody's business on the node network).
 */
export async function startHealthServer(listen: string, source: HealthSource, opts: { status?: boolean } = {}): Promise<HealthServer> {
  const { host, port } = parseListenAddress(listen);
  processMetrics();
  const app = probeServer();
  const live = (_req: unknown, reply: FastifyReply): FastifyReply => {
    const reason = source.notAliveReason?.();
    return reason !== undefined ? reply.code(503).send({ status: 'stuck', reason }) : reply.send({ status: 'ok' });
  };
  app.get('/healthz', live);
  app.get('/livez', live);
  app.get('/readyz', (_req, reply) => {
    const reason = source.notReadyReason();
    return reason !== undefined ? reply.code(503).send({ status: 'not ready', reason }) : reply.send({ status: 'ready' });
  });
  if (opts.status !== false) app.get('/status', () => Promise.resolve(source.status()));
  app.get('/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(((await source.metricsText?.()) ?? '') + (await processMetricsText())));
  await app.listen({ host, port });
  const addr = app.server.address();
  const bound = addr !== null && typeof addr === 'object' ? addr.port : port;
  return { url: `http://${host}:${bound}`, close: () => app.close() };
}

/** /status alone, on its own address (default loopback); `off` serves nothing. */
export async function startStatusServer(listen: string, source: Pick<HealthSource, 'status'>): Promise<HealthServer | undefined> {
  if (listen === 'off') return undefined;
  const { host, port } = parseListenAddress(listen);
  const app = probeServer();
  app.get('/status', () => Promise.resolve(source.status()));
  await app.listen({ host, port });
  const addr = app.server.address();
  const bound = addr !== null && typeof addr === 'object' ? addr.port : port;
  return { url: `http://${host}:${bound}`, close: () => app.close() };
}
