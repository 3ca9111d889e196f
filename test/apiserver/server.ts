/**
 * The embedded Kubernetes API server: HTTP in front of store.ts, speaking the REST and watch
 * protocol of the real one closely enough that @kubernetes/client-node (informers, CAS updates,
 * patches) and other standard clients work unchanged. Test and lab use only: it keeps everything
 * in memory (optionally saved to a file), checks a bearer token, and serves plain HTTP.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { writeFileSync, readFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { ApiError, Store, type PatchType, type WatchEvent } from './store.ts';
import { CRD_RESOURCES, RESOURCES, apiResourceList, findResource, groups, type ResourceType } from './resources.ts';
import { parseFieldSelector, parseLabelSelector, SelectorError } from '../../shared/selectors.ts';

export interface AuditRecord {
  verb: string; group: string; resource: string; subresource?: string; namespace?: string; name?: string; code: number;
  /** Who asked: the user of the bearer token (see ApiServerOptions.users), or "admin". */
  user?: string;
  /** The `metadata.name=` of a list/watch field selector (RBAC matches it against resourceNames). */
  fieldName?: string;
}

export interface ApiServerOptions {
  /** Bearer token every request must carry; undefined disables the check (unit tests only). */
  readonly token?: string;
  /** More bearer tokens, each naming a user (e.g. system:serviceaccount:ns:name), for audits. */
  readonly users?: Readonly<Record<string, string>>;
  readonly historyLimit?: number;
  /** Interval of BOOKMARK events on watches that ask for them (allowWatchBookmarks=true). */
  readonly bookmarkIntervalMs?: number;
  /** File to save every object to (debounced) and to load them from at start. */
  readonly stateFile?: string;
  readonly onAudit?: (r: AuditRecord) => void;
  /** Custom resources to serve as if their CRDs were installed (Calico, Cilium IPAM). */
  readonly crds?: readonly ('calico' | 'cilium')[];
}

export interface ListenAddress { host: string; port: number }

export class EmbeddedApiServer {
  readonly store: Store;
  private readonly servers: Server[] = [];
  private readonly opts: ApiServerOptions;
  private readonly openWatches = new Set<() => void>();
  private saveTimer: NodeJS.Timeout | undefined;

  readonly served: readonly ResourceType[];

  constructor(opts: ApiServerOptions = {}) {
    this.opts = opts;
    this.served = [...RESOURCES, ...(opts.crds ?? []).flatMap((c) => CRD_RESOURCES[c])];
    this.store = new Store(this.served, opts.historyLimit !== undefined ? { historyLimit: opts.historyLimit } : {});
    if (opts.stateFile && existsSync(opts.stateFile)) {
      this.store.restore(JSON.parse(readFileSync(opts.stateFile, 'utf8')) as ReturnType<Store['snapshot']>);
    }
  }

  /** Listens on a TCP address (port 0 picks one) and returns the address actually bound. */
  async listen(host: string, port: number): Promise<ListenAddress> {
    const server = this.newServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('listen: no TCP address');
    return { host, port: addr.port };
  }

  async listenUnix(path: string): Promise<void> {
    rmSync(path, { force: true });
    const server = this.newServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
  }

  async close(): Promise<void> {
    for (const stop of this.openWatches) stop();
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.save();
    }
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    })));
  }

  private newServer(): Server {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `internal error: ${err instanceof Error ? err.message : String(err)}`);
        if (!res.headersSent) sendJson(res, e.code, e.toStatus());
        else res.end();
      });
    });
    server.keepAliveTimeout = 60_000;
    this.servers.push(server);
    return server;
  }

  private scheduleSave(): void {
    if (!this.opts.stateFile || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.save();
    }, 200);
  }

  private save(): void {
    const file = this.opts.stateFile;
    if (!file) return;
    writeFileSync(`${file}.tmp`, JSON.stringify(this.store.snapshot()));
    renameSync(`${file}.tmp`, file);
  }

  /** Records one request (fields left undefined are left out) with its outcome. */
  private auditor(r: { verb: string; group: string; resource: string; subresource: string | undefined; namespace: string | undefined; user: string | undefined; fieldName: string | undefined }, name: string | undefined): (code: number, objectName?: string) => void {
    const base = Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as Omit<AuditRecord, 'code'>;
    return (code, objectName = name) => this.opts.onAudit?.({ ...base, ...(objectName ? { name: objectName } : {}), code });
  }

  /** The user of the request's bearer token: "admin" for the main token, or one of `users`. */
  private userOf(req: IncomingMessage): string | undefined {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer === undefined) return undefined;
    return bearer === this.opts.token ? 'admin' : this.opts.users?.[bearer];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://apiserver');
    const user = this.userOf(req);
    if (this.opts.token !== undefined && user === undefined) {
      sendJson(res, 401, new ApiError(401, 'Unauthorized', 'Unauthorized').toStatus());
      return;
    }
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (req.method === 'GET' && this.discovery(path, res)) return;
    const route = parseResourcePath(path, this.served);
    if (!route) throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${path})`);
    const { resource: r, namespace, name, subresource } = route;
    const watch = url.searchParams.get('watch');
    const isWatch = req.method === 'GET' && (watch === 'true' || watch === '1');
    const verb = verbOf(req.method ?? 'GET', name, isWatch);
    const record = this.auditor({ verb, group: r.group, resource: r.plural, subresource, namespace, user, fieldName: /(?:^|,)metadata\.name=([^,]+)/.exec(url.searchParams.get('fieldSelector') ?? '')?.[1] }, name);
    if (isWatch) {
      record(200);
      this.serveWatch(r, namespace, name, url, req, res);
      return;
    }
    let result: { code: number; body: unknown };
    try {
      result = await this.dispatch(verb, r, namespace, name, subresource, url, req);
    } catch (err) {
      record(err instanceof ApiError ? err.code : 500);
      throw err;
    }
    record(result.code, name ?? (result.body as { metadata?: { name?: string } }).metadata?.name);
    sendJson(res, result.code, result.body);
    if (verb !== 'get' && verb !== 'list') this.scheduleSave();
  }

  private async dispatch(verb: string, r: ResourceType, namespace: string | undefined, name: string | undefined, subresource: 'status' | undefined, url: URL, req: IncomingMessage): Promise<{ code: number; body: unknown }> {
    const s = this.store;
    switch (verb) {
      case 'get':
        return { code: 200, body: s.get(r, namespace, name ?? '') };
      case 'list': {
        const { label, field } = selectors(url);
        const { items, resourceVersion } = s.list(r, namespace, label, field);
        return { code: 200, body: paginate(r, items, resourceVersion, url) };
      }
      case 'create':
        return { code: 201, body: s.create(r, namespace, await readJson(req)) };
      case 'update':
        return { code: 200, body: s.update(r, namespace, name ?? '', await readJson(req), subresource) };
      case 'patch': {
        const type = patchTypeOf(req.headers['content-type']);
        return { code: 200, body: s.patch(r, namespace, name ?? '', type, await readJson(req, true), subresource) };
      }
      case 'delete': {
        const body = await readJson(req, true, true);
        const pre = (body as { preconditions?: { uid?: string; resourceVersion?: string } } | undefined)?.preconditions;
        return { code: 200, body: s.delete(r, namespace, name ?? '', pre) };
      }
      case 'deletecollection': {
        const { label, field } = selectors(url);
        const { items, resourceVersion } = s.list(r, namespace, label, field);
        for (const o of items) s.delete(r, o.metadata.namespace, o.metadata.name ?? '');
        return { code: 200, body: { kind: `${r.kind}List`, apiVersion: items[0]?.apiVersion ?? 'v1', metadata: { resourceVersion }, items } };
      }
      default:
        throw new ApiError(405, 'MethodNotAllowed', `method ${req.method ?? ''} is not supported`);
    }
  }

  private serveWatch(r: ResourceType, namespace: string | undefined, name: string | undefined, url: URL, req: IncomingMessage, res: ServerResponse): void {
    const { label, field: fieldSel } = selectors(url);
    const field = name ? (o: Record<string, unknown>): boolean => (o.metadata as { name?: string }).name === name && fieldSel(o) : fieldSel;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    const write = (e: WatchEvent): void => {
      res.write(JSON.stringify(e) + '\n');
    };
    let ended = false;
    const timers: NodeJS.Timeout[] = [];
    let stopWatch: () => void = () => undefined;
    const finish = (): void => {
      if (ended) return;
      ended = true;
      stopWatch();
      for (const t of timers) clearTimeout(t);
      this.openWatches.delete(finish);
      res.end();
    };
    this.openWatches.add(finish);
    req.on('close', finish);
    res.on('close', finish);
    let expired = false;
    stopWatch = this.store.watch(r, { namespace, labelSelector: label, fieldSelector: field, resourceVersion: url.searchParams.get('resourceVersion') ?? undefined }, (e) => {
      if (e.type === 'ERROR') expired = true;
      write(e);
    });
    if (expired) {
      finish();
      return;
    }
    if (url.searchParams.get('allowWatchBookmarks') === 'true') {
      const every = this.opts.bookmarkIntervalMs ?? 10_000;
      const tick = (): void => {
        write(this.store.bookmark(r));
        timers[0] = setTimeout(tick, every);
      };
      timers[0] = setTimeout(tick, every);
    }
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? '');
    // like the real server: end each watch after a while (30-60 min) so clients re-establish it
    const lifetimeMs = Number.isFinite(timeout) && timeout > 0 ? timeout * 1000 : (1800 + Math.random() * 1800) * 1000;
    timers.push(setTimeout(finish, lifetimeMs));
  }

  private discovery(path: string, res: ServerResponse): boolean {
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      return true;
    }
    if (path === '/version') {
      sendJson(res, 200, { major: '1', minor: '34', gitVersion: 'v1.34.0+chorus-embedded', gitCommit: '', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'n/a', compiler: 'n/a', platform: `${process.platform}/${process.arch}` });
      return true;
    }
    if (path === '/api') {
      sendJson(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '' }] });
      return true;
    }
    if (path === '/apis') {
      const list = [...groups(this.served)].map(([name, versions]) => apiGroup(name, versions));
      sendJson(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: list });
      return true;
    }
    let m = /^\/apis\/([^/]+)$/.exec(path);
    if (m) {
      const versions = groups(this.served).get(m[1] ?? '');
      if (!versions) return false;
      sendJson(res, 200, apiGroup(m[1] ?? '', versions));
      return true;
    }
    m = /^\/api\/(v1)$/.exec(path) ?? /^\/apis\/([^/]+\/[^/]+)$/.exec(path);
    if (m) {
      const gv = m[1] ?? '';
      const [group, version] = gv.includes('/') ? gv.split('/') as [string, string] : ['', gv];
      const list = apiResourceList(group, version, this.served);
      if (!list) return false;
      sendJson(res, 200, list);
      return true;
    }
    return false;
  }
}

function apiGroup(name: string, versions: string[]): Record<string, unknown> {
  const vs = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { kind: 'APIGroup', apiVersion: 'v1', name, versions: vs, preferredVersion: vs[0] };
}

interface ResourceRoute { resource: ResourceType; namespace?: string; name?: string; subresource?: 'status' }

export function parseResourcePath(path: string, served: readonly ResourceType[]): ResourceRoute | undefined {
  const m = /^\/api\/(v1)\/(.*)$/.exec(path) ?? /^\/apis\/([^/]+\/[^/]+)\/(.*)$/.exec(path);
  if (!m) return undefined;
  const gv = m[1] ?? '';
  const [group, version] = gv.includes('/') ? gv.split('/') as [string, string] : ['', gv];
  const segs = (m[2] ?? '').split('/').map(decodeURIComponent);
  let namespace: string | undefined;
  let rest = segs;
  if (segs[0] === 'namespaces' && segs.length >= 3) {
    const nsResource = findResource(group, version, segs[2] ?? '', served);
    if (nsResource?.namespaced) {
      namespace = segs[1];
      rest = segs.slice(2);
    }
  }
  const resource = findResource(group, version, rest[0] ?? '', served);
  if (!resource || rest.length > 3) return undefined;
  if (rest.length === 3 && (rest[2] !== 'status' || !resource.statusSubresource)) return undefined;
  return { resource, ...(namespace ? { namespace } : {}), ...(rest[1] ? { name: rest[1] } : {}), ...(rest[2] === 'status' ? { subresource: 'status' as const } : {}) };
}

function verbOf(method: string, name: string | undefined, isWatch: boolean): string {
  if (isWatch) return 'watch';
  switch (method) {
    case 'GET': return name ? 'get' : 'list';
    case 'POST': return 'create';
    case 'PUT': return 'update';
    case 'PATCH': return 'patch';
    case 'DELETE': return name ? 'delete' : 'deletecollection';
    default: return method.toLowerCase();
  }
}

function selectors(url: URL): { label: ReturnType<typeof parseLabelSelector>; field: ReturnType<typeof parseFieldSelector> } {
  try {
    return { label: parseLabelSelector(url.searchParams.get('labelSelector')), field: parseFieldSelector(url.searchParams.get('fieldSelector')) };
  } catch (err) {
    if (err instanceof SelectorError) throw new ApiError(400, 'BadRequest', err.message);
    throw err;
  }
}

function paginate(r: ResourceType, items: Record<string, unknown>[], resourceVersion: string, url: URL): Record<string, unknown> {
  const limit = Number(url.searchParams.get('limit') ?? '0');
  const token = url.searchParams.get('continue');
  let start = 0;
  if (token) {
    try {
      start = (JSON.parse(Buffer.from(token, 'base64url').toString()) as { start: number }).start;
    } catch {
      throw new ApiError(400, 'BadRequest', 'invalid continue token');
    }
  }
  const stripped = items.map(({ kind: _k, apiVersion: _a, ...rest }) => rest);
  const page = limit > 0 ? stripped.slice(start, start + limit) : stripped.slice(start);
  const end = start + page.length;
  const metadata: Record<string, unknown> = { resourceVersion };
  if (limit > 0 && end < stripped.length) {
    metadata.continue = Buffer.from(JSON.stringify({ start: end })).toString('base64url');
    metadata.remainingItemCount = stripped.length - end;
  }
  return { kind: `${r.kind}List`, apiVersion: r.group === '' ? r.version : `${r.group}/${r.version}`, metadata, items: page };
}

function patchTypeOf(contentType: string | undefined): PatchType {
  const t = (contentType ?? '').split(';')[0]?.trim();
  if (t === 'application/merge-patch+json') return 'merge';
  if (t === 'application/json-patch+json') return 'json';
  if (t === 'application/strategic-merge-patch+json') return 'strategic';
  throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${JSON.stringify(contentType)})`);
}

async function readJson(req: IncomingMessage, allowAnyJson = false, allowEmpty = false): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') {
    if (allowEmpty) return {};
    throw new ApiError(400, 'BadRequest', 'request body is empty');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'BadRequest', 'request body is not valid JSON');
  }
  if (!allowAnyJson && (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))) throw new ApiError(400, 'BadRequest', 'request body must be a JSON object');
  return parsed as Record<string, unknown>;
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Writes a kubeconfig for a server URL and bearer token. */
export function kubeconfigYaml(server: string, token: string, name = 'chorus-lab'): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    `current-context: ${name}`,
    'clusters:',
    `- name: ${name}`,
    '  cluster:',
    `    server: ${server}`,
    // plain HTTP inside the lab; client-node accepts it only with this flag set
    '    insecure-skip-tls-verify: true',
    'contexts:',
    `- name: ${name}`,
    '  context:',
    `    cluster: ${name}`,
    `    user: ${name}`,
    'users:',
    `- name: ${name}`,
    '  user:',
    `    token: ${token}`,
    '',
  ].join('\n');
}
