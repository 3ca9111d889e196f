/**
 * The embedded Kubernetes API server: HTTP in front of store.ts, speaking the REST and watch
 * protocol of the real one closely enough that @kubernetes/client-node (informers, CAS updates,
 * patches) and kubectl work unchanged. Test and lab use only: it keeps everything in memory
 * (optionally saved to a file), serves HTTPS only (a per-lab CA: kubectl, like client-go, never
 * sends a bearer token over plain HTTP), authenticates bearer tokens and authorizes with RBAC.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { writeFileSync, readFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { ApiError, Store, type PatchType, type WatchEvent } from './store.ts';
import { CRD_RESOURCES, RESOURCES, apiResourceList, apiVersionOf, findResource, groups, type ResourceType } from './resources.ts';
import { parseFieldSelector, parseLabelSelector, SelectorError } from '../../shared/selectors.ts';
import { kindFile, unknownFields } from './schema.ts';
import { decodeCreatedObject, decodeSelfSubjectAccessReview, isProtobuf, ProtobufError } from './protobuf.ts';
import { openApiV3Document, openApiV3Paths } from './openapi.ts';
import { includeObjectOf, toTable, wantsTable } from './table.ts';
import { admit, anyPolicyMatches } from './admission.ts';
import { forbiddenMessage, MASTERS_GROUP, RbacAuthorizer, serviceAccountUserInfo, type Binding, type PolicyRule, type ResourceAttributes, type UserInfo } from './rbac.ts';

export interface AuditRecord {
  verb: string; group: string; resource: string; subresource?: string; namespace?: string; name?: string; code: number;
  /** Who asked: the user of the bearer token (see ApiServerOptions.users), or "admin". */
  user?: string;
  /** The `metadata.name=` of a list/watch field selector (RBAC matches it against resourceNames). */
  fieldName?: string;
}

export interface ApiServerOptions {
  /** The server certificate and key (PEM); clients verify them with the lab's CA. */
  readonly tls: { readonly cert: Buffer | string; readonly key: Buffer | string };
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
  readonly authorizer: RbacAuthorizer;

  constructor(opts: ApiServerOptions) {
    this.opts = opts;
    this.served = [...RESOURCES, ...(opts.crds ?? []).flatMap((c) => CRD_RESOURCES[c])];
    this.store = new Store(this.served.filter((r) => !r.review), opts.historyLimit !== undefined ? { historyLimit: opts.historyLimit } : {});
    this.authorizer = new RbacAuthorizer(this.rbacSource());
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
    const server = createServer({ cert: this.opts.tls.cert, key: this.opts.tls.key }, (req, res) => {
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

  /** The RBAC objects as stored: the authorizer reads them on every request, as the real one reads its cache. */
  private rbacSource(): ConstructorParameters<typeof RbacAuthorizer>[0] {
    const all = (plural: string, namespace?: string): Record<string, unknown>[] => {
      const r = this.served.find((x) => x.group === 'rbac.authorization.k8s.io' && x.plural === plural);
      return r ? this.store.list(r, namespace, () => true, () => true).items : [];
    };
    type Role = { metadata: { name?: string }; rules?: readonly PolicyRule[] };
    return {
      clusterRoles: () => all('clusterroles') as unknown as Role[],
      roles: (ns) => all('roles', ns) as unknown as Role[],
      clusterRoleBindings: () => all('clusterrolebindings') as unknown as Binding[],
      roleBindings: (ns) => all('rolebindings', ns) as unknown as Binding[],
    };
  }

  /**
   * Authentication: the bearer token's user ("admin", in system:masters, for the main token, or
   * one of `users`, a ServiceAccount with its groups), then impersonation (Impersonate-User /
   * Impersonate-Group, allowed to whom RBAC grants `impersonate`), as kube-apiserver does.
   */
  private authenticate(req: IncomingMessage): UserInfo | undefined {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer === undefined) return undefined;
    if (bearer === this.opts.token) return { name: 'admin', groups: [MASTERS_GROUP, 'system:authenticated'] };
    const user = this.opts.users?.[bearer];
    return user === undefined ? undefined : serviceAccountUserInfo(user);
  }

  private impersonate(req: IncomingMessage, user: UserInfo): UserInfo {
    const as = req.headers['impersonate-user'];
    const asGroups = req.headers['impersonate-group'];
    if (as === undefined && asGroups === undefined) return user;
    const name = Array.isArray(as) ? as[0] ?? '' : as ?? '';
    if (name === '') throw new ApiError(500, 'InternalError', 'Internal error occurred: requested impersonation of groups without impersonating a user');
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(name);
    const attrs: ResourceAttributes = sa ? { verb: 'impersonate', group: '', resource: 'serviceaccounts', namespace: sa[1], name: sa[2] } : { verb: 'impersonate', group: '', resource: 'users', name };
    if (!this.authorizer.authorizeResource(user, attrs).allowed) {
      throw new ApiError(403, 'Forbidden', `${sa ? `serviceaccounts "${sa[2] ?? ''}"` : `users "${name}"`} is forbidden: User "${user.name}" cannot impersonate resource "${attrs.resource}" in API group "" ${sa ? `in the namespace "${sa[1] ?? ''}"` : 'at the cluster scope'}`, { name: sa ? sa[2] : name, kind: attrs.resource });
    }
    const groups = (Array.isArray(asGroups) ? asGroups : asGroups === undefined ? [] : asGroups.split(',')).map((g) => g.trim()).filter((g) => g !== '');
    const base = serviceAccountUserInfo(name);
    return { name, groups: groups.length > 0 ? [...groups, 'system:authenticated'] : base.groups };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://apiserver');
    const authenticated = this.authenticate(req);
    if (this.opts.token !== undefined && authenticated === undefined) {
      sendJson(res, 401, new ApiError(401, 'Unauthorized', 'Unauthorized').toStatus());
      return;
    }
    const userInfo = this.impersonate(req, authenticated ?? { name: 'admin', groups: [MASTERS_GROUP] });
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const route = parseResourcePath(path, this.served);
    if (route) {
      await this.handleResource(route, url, req, res, userInfo, authenticated === undefined ? undefined : userInfo.name);
      return;
    }
    const verb = (req.method ?? 'GET').toLowerCase();
    if (!this.authorizer.authorizeNonResource(userInfo, verb, url.pathname).allowed) {
      throw new ApiError(403, 'Forbidden', `forbidden: User "${userInfo.name}" cannot ${verb} path "${url.pathname}"`);
    }
    if (req.method === 'GET' && this.discovery(path, res)) return;
    throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${path})`);
  }

  /** A request for a resource: authorized by RBAC, audited, then a review, a watch or a REST verb. */
  private async handleResource(route: ResourceRoute, url: URL, req: IncomingMessage, res: ServerResponse, userInfo: UserInfo, user: string | undefined): Promise<void> {
    const { resource: r, namespace, name, subresource } = route;
    const { verb, isWatch, fieldName, attrs } = requestInfo(route, url, req.method ?? 'GET');
    const record = this.auditor({ verb, group: r.group, resource: r.plural, subresource, namespace, user, fieldName }, name);
    if (!this.authorizer.authorizeResource(userInfo, attrs).allowed) {
      record(403);
      throw forbidden(userInfo.name, attrs, r);
    }
    if (r.review) {
      const body = isProtobuf(req.headers['content-type']) ? decodeProtobufReview(await readBody(req)) : await readJson(req);
      record(201);
      sendJson(res, 201, this.review(userInfo, body));
      return;
    }
    if (isWatch) {
      record(200);
      this.serveWatch(r, namespace, name, url, req, res);
      return;
    }
    const dryRun = url.searchParams.getAll('dryRun');
    if (dryRun.some((d) => d !== 'All')) throw new ApiError(400, 'BadRequest', `Invalid dry run value: ${JSON.stringify(dryRun)}; the only valid value is "All"`);
    let result: DispatchResult;
    try {
      result = await this.dispatch(verb, route, url, req, dryRun.length > 0, userInfo);
    } catch (err) {
      record(err instanceof ApiError ? err.code : 500);
      throw err;
    }
    record(result.code, name ?? (result.body as { metadata?: { name?: string } }).metadata?.name);
    if (result.warnings?.length) res.setHeader('Warning', result.warnings.map((w) => `299 - ${JSON.stringify(w)}`));
    sendJson(res, result.code, result.body);
    if (verb !== 'get' && verb !== 'list') this.scheduleSave();
  }

  /**
   * Field validation as kube-apiserver does it (fieldValidation=Strict|Warn|Ignore, default Warn):
   * fields the kind's type does not have refuse the request (Strict) or come back as warnings.
   * Kinds without a Go type here (custom resources) are not checked.
   */
  private validateFields(r: ResourceType, body: unknown, url: URL, verb: string): string[] {
    const mode = url.searchParams.get('fieldValidation') ?? 'Warn';
    if (mode !== 'Strict' && mode !== 'Warn' && mode !== 'Ignore') {
      throw new ApiError(400, 'BadRequest', `fieldValidation must be one of "Ignore", "Warn", or "Strict", got "${mode}"`);
    }
    const file = kindFile(r.group, r.version, r.kind);
    if (mode === 'Ignore' || !file) return [];
    const unknown = unknownFields(file, body).map((p) => `unknown field "${p}"`);
    if (unknown.length === 0) return [];
    if (mode === 'Warn') return unknown;
    const prefix = verb === 'patch' ? '' : `${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: `;
    throw new ApiError(400, 'BadRequest', `${prefix}strict decoding error: ${unknown.join(', ')}`);
  }

  /** A SelfSubjectAccessReview: may the asking (or impersonated) user do this? Answered, never stored. */
  private review(user: UserInfo, body: Record<string, unknown>): Record<string, unknown> {
    const spec = (body.spec ?? {}) as { resourceAttributes?: Record<string, string | undefined>; nonResourceAttributes?: { path?: string; verb?: string } };
    let decision;
    if (spec.resourceAttributes) {
      const a = spec.resourceAttributes;
      decision = this.authorizer.authorizeResource(user, { verb: a.verb ?? '', group: a.group ?? '', resource: a.resource ?? '', subresource: a.subresource || undefined, namespace: a.namespace || undefined, name: a.name || undefined });
    } else if (spec.nonResourceAttributes) {
      decision = this.authorizer.authorizeNonResource(user, spec.nonResourceAttributes.verb ?? '', spec.nonResourceAttributes.path ?? '');
    } else {
      throw new ApiError(422, 'Invalid', 'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified', { kind: 'SelfSubjectAccessReview', group: 'authorization.k8s.io' });
    }
    return { kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', metadata: { creationTimestamp: null }, spec, status: { allowed: decision.allowed, ...(decision.reason ? { reason: decision.reason } : {}) } };
  }

  /** A create, update or patch: fields validated as the request asks, then written (or, under dryRun, only checked). */
  private async write(verb: string, route: ResourceRoute, url: URL, req: IncomingMessage, dryRun: boolean, userInfo: UserInfo): Promise<DispatchResult> {
    const { resource: r, namespace, name = '', subresource } = route;
    const s = this.store;
    const type = verb === 'patch' ? patchTypeOf(req.headers['content-type']) : undefined;
    let body: Record<string, unknown>;
    if (verb === 'create' && isProtobuf(req.headers['content-type'])) body = decodeProtobufCreate(await readBody(req));
    else {
      requireJson(req, verb);
      body = await readJson(req, verb === 'patch');
    }
    const warnings = type === 'json' ? [] : this.validateFields(r, body, url, verb);
    const run = (): Record<string, unknown> => {
      if (verb === 'create') return s.create(r, namespace, body);
      if (verb === 'update') return s.update(r, namespace, name, body, subresource);
      return s.patch(r, namespace, name, type ?? 'merge', body, subresource);
    };
    this.admitWrite(verb, route, userInfo, run);
    return { code: verb === 'create' ? 201 : 200, body: dryRun ? s.dryRun(run) : run(), warnings };
  }

  /** Validating admission: the bound policies see the object as the write would leave it (computed without storing it). */
  private admitWrite(verb: string, route: ResourceRoute, userInfo: UserInfo, run: () => Record<string, unknown>): void {
    const policyType = this.served.find((x) => x.group === 'admissionregistration.k8s.io' && x.plural === 'validatingadmissionpolicies');
    const bindingType = this.served.find((x) => x.group === 'admissionregistration.k8s.io' && x.plural === 'validatingadmissionpolicybindings');
    if (!policyType || !bindingType) return;
    const bindings = this.store.list(bindingType, undefined, () => true, () => true).items as Record<string, unknown>[];
    if (bindings.length === 0) return;
    const policies = this.store.list(policyType, undefined, () => true, () => true).items as Record<string, unknown>[];
    const { resource: r, namespace, name = '', subresource } = route;
    const request = { operation: verb === 'create' ? 'CREATE' as const : 'UPDATE' as const, group: r.group, version: r.version, resource: r.plural, subresource, namespace, userInfo: { username: userInfo.name, groups: userInfo.groups } };
    // the object as the write would leave it is computed only for a request some policy matches
    if (!anyPolicyMatches(policies, bindings, request)) return;
    const oldObject = verb === 'create' ? null : this.store.get(r, namespace, name) as Record<string, unknown>;
    const object = this.store.dryRun(run);
    const objectName = name || String((object.metadata as { name?: string } | undefined)?.name ?? '');
    const denial = admit(policies, bindings, { ...request, name: objectName, object, oldObject });
    if (!denial) return;
    // admission.NewForbidden's shape: `<resource> "<name>" is forbidden: <message>`, the message as a cause, then the policy's reason and code
    throw new ApiError(denial.code, denial.reason, `${r.group ? `${r.plural}.${r.group}` : r.plural} "${objectName}" is forbidden: ${denial.message}`, { name: objectName, group: r.group, kind: r.plural, causes: [{ message: denial.message }] });
  }

  private async dispatch(verb: string, route: ResourceRoute, url: URL, req: IncomingMessage, dryRun: boolean, userInfo: UserInfo): Promise<DispatchResult> {
    const { resource: r, namespace, name } = route;
    const s = this.store;
    const write = <T>(fn: () => T): T => (dryRun ? s.dryRun(fn) : fn());
    if (verb === 'create' || verb === 'update' || verb === 'patch') return this.write(verb, route, url, req, dryRun, userInfo);
    switch (verb) {
      case 'get': {
        const obj = s.get(r, namespace, name ?? '');
        if (!wantsTable(req.headers.accept)) return { code: 200, body: obj };
        return { code: 200, body: toTable(r, [obj], { resourceVersion: obj.metadata.resourceVersion }, includeObjectOf(url)) };
      }
      case 'list': {
        const { label, field } = selectors(url);
        const { items, resourceVersion } = s.list(r, namespace, label, field);
        const list = paginate(r, items, resourceVersion, url);
        if (!wantsTable(req.headers.accept)) return { code: 200, body: list };
        const withKind = (list.items as Record<string, unknown>[]).map((o) => ({ apiVersion: apiVersionOf(r), kind: r.kind, ...o }));
        return { code: 200, body: toTable(r, withKind, list.metadata as Record<string, unknown>, includeObjectOf(url)) };
      }
      case 'delete': {
        const body = await readJson(req, true, true);
        const options = body as { preconditions?: { uid?: string; resourceVersion?: string }; dryRun?: string[] };
        // DeleteOptions carry dryRun in the body (client-go) as well as in the query
        const del = (): Record<string, unknown> => s.delete(r, namespace, name ?? '', options.preconditions);
        return { code: 200, body: options.dryRun?.includes('All') ? s.dryRun(del) : write(del) };
      }
      case 'deletecollection': {
        const { label, field } = selectors(url);
        const { items, resourceVersion } = s.list(r, namespace, label, field);
        for (const o of items) write(() => s.delete(r, o.metadata.namespace, o.metadata.name ?? ''));
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
    // with a Table asked for, each event carries a one-row Table; only the first has the column definitions
    const table = wantsTable(req.headers.accept);
    let headers = true;
    const write = (e: WatchEvent): void => {
      if (table && (e.type === 'ADDED' || e.type === 'MODIFIED' || e.type === 'DELETED')) {
        const meta = (e.object.metadata ?? {}) as { resourceVersion?: string };
        e = { type: e.type, object: toTable(r, [e.object], { resourceVersion: meta.resourceVersion }, includeObjectOf(url), headers) };
        headers = false;
      }
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
    if (path === '/openapi/v3') {
      sendJson(res, 200, openApiV3Paths(this.served));
      return true;
    }
    const openapi = /^\/openapi\/v3\/(api\/v1|apis\/[^/]+\/[^/]+)$/.exec(path);
    if (openapi) {
      const doc = openApiV3Document(openapi[1] ?? '', this.served);
      if (!doc) return false;
      sendJson(res, 200, doc);
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

/** kube-apiserver's RequestInfo: the verb, and the name RBAC sees (list/watch: the metadata.name field selector). */
function requestInfo(route: ResourceRoute, url: URL, method: string): { verb: string; isWatch: boolean; fieldName: string | undefined; attrs: ResourceAttributes } {
  const { resource: r, namespace, name, subresource } = route;
  const watch = url.searchParams.get('watch');
  const isWatch = method === 'GET' && (watch === 'true' || watch === '1');
  const verb = verbOf(method, name, isWatch);
  const fieldName = /(?:^|,)metadata\.name=([^,]+)/.exec(url.searchParams.get('fieldSelector') ?? '')?.[1];
  const listing = verb === 'list' || verb === 'watch';
  return { verb, isWatch, fieldName, attrs: { verb, group: r.group, resource: r.plural, subresource, namespace, name: name ?? (listing ? fieldName : undefined) } };
}

function forbidden(user: string, attrs: ResourceAttributes, r: ResourceType): ApiError {
  const listing = attrs.verb === 'list' || attrs.verb === 'watch';
  return new ApiError(403, 'Forbidden', forbiddenMessage(user, attrs), { ...(attrs.name !== undefined && !listing ? { name: attrs.name } : {}), ...(r.group ? { group: r.group } : {}), kind: r.plural });
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

/** kubectl's typed `create namespace|configmap|secret|serviceaccount` send protobuf; other kinds get 415 as before. */
function decodeProtobufCreate(body: Buffer): Record<string, unknown> {
  try {
    return decodeCreatedObject(body);
  } catch (err) {
    if (err instanceof ProtobufError) throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (${err.message})`);
    throw err;
  }
}

function decodeProtobufReview(body: Buffer): Record<string, unknown> {
  try {
    return decodeSelfSubjectAccessReview(body);
  } catch (err) {
    if (err instanceof ProtobufError) throw new ApiError(400, 'BadRequest', `protobuf body: ${err.message}`);
    throw err;
  }
}

interface DispatchResult { code: number; body: unknown; warnings?: string[] }

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Bodies are JSON here. kube-apiserver also accepts protobuf for built-in kinds; kubectl sends it
 * only for typed calls, of which the lab sees `auth can-i` (decoded in protobuf.ts). Any other
 * media type gets the 415 kube-apiserver answers for one it does not accept.
 */
function requireJson(req: IncomingMessage, verb: string): void {
  const t = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
  if (verb === 'patch' || t === '' || t === 'application/json' || t === '*/*') return;
  throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got ${JSON.stringify(t)})`);
}

async function readJson(req: IncomingMessage, allowAnyJson = false, allowEmpty = false): Promise<Record<string, unknown>> {
  const text = (await readBody(req)).toString('utf8');
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

/** Writes a kubeconfig for a server URL, the CA that signed its certificate (PEM) and a bearer token. */
export function kubeconfigYaml(server: string, token: string, caPem: Buffer | string, name = 'chorus-lab'): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    `current-context: ${name}`,
    'clusters:',
    `- name: ${name}`,
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
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
