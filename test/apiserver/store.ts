/**
 * The embedded API server's state: objects, one global resourceVersion counter, a bounded event
 * history for watches, and watchers. No HTTP here: server.ts translates requests into calls on
 * this store, so the semantics (CAS, 409, 404, 410, selectors, patches) are unit-testable alone.
 *
 * Semantics follow the Kubernetes API conventions: resourceVersion changes on every write and is
 * a precondition when a client sends it (update, patch, delete); a watch from a resourceVersion
 * older than the retained history gets an ERROR event with a 410 Status ("Expired"); a watch with
 * no resourceVersion (or "0") first sends ADDED for every current object; selector watches see an
 * object that starts or stops matching as ADDED / DELETED.
 */
import { randomUUID, randomBytes } from 'node:crypto';
import { apiVersionOf, type ResourceType } from './resources.ts';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, PatchError } from './patch.ts';
import { kindFile } from './schema.ts';
import type { Selector } from '../../shared/selectors.ts';

export type KubeObject = Record<string, unknown> & { metadata: ObjectMeta };
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: number, reason: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }
  toStatus(): Record<string, unknown> {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, ...(this.details ? { details: this.details } : {}), code: this.code };
  }
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
export interface WatchEvent { type: WatchEventType; object: Record<string, unknown> }

interface HistoryEntry {
  rv: number;
  resource: ResourceType;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KubeObject;
  old: KubeObject | undefined;
}

export interface WatchOptions {
  namespace?: string | undefined;
  labelSelector: Selector;
  fieldSelector: Selector;
  resourceVersion?: string | undefined;
}

interface Watcher { resource: ResourceType; opts: WatchOptions; send: (e: WatchEvent) => void }

export type PatchType = 'merge' | 'json' | 'strategic';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;
export const MAX_OBJECT_BYTES = 1024 * 1024;
export const INITIAL_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

function resourceKey(r: ResourceType): string {
  return `${r.group}/${r.plural}`;
}

export interface StoreOptions {
  /** Watch events kept for resuming watches; older resourceVersions get 410 Gone. */
  readonly historyLimit?: number;
  readonly now?: () => Date;
}

/** Defaulting kube-apiserver does on create for the kinds stored here: a Secret without a type is Opaque. */
function defaults(r: ResourceType, obj: KubeObject): void {
  if (r.kind === 'Secret' && (obj.type === undefined || obj.type === '')) obj.type = 'Opaque';
}

export class Store {
  private rv = 0;
  private compactedUpTo = 0;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private history: HistoryEntry[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly historyLimit: number;
  private readonly now: () => Date;
  private readonly namespaceType: ResourceType;
  private readonly typesByKind = new Map<string, ResourceType>();

  constructor(resources: readonly ResourceType[], opts: StoreOptions = {}) {
    this.historyLimit = opts.historyLimit ?? 10_000;
    this.now = opts.now ?? (() => new Date());
    for (const r of resources) this.typesByKind.set(`${apiVersionOf(r)}/${r.kind}`, r);
    const namespaceType = resources.find((r) => r.kind === 'Namespace' && r.group === '');
    if (!namespaceType) throw new Error('the store needs the Namespace resource');
    this.namespaceType = namespaceType;
    for (const ns of INITIAL_NAMESPACES) this.create(namespaceType, undefined, { metadata: { name: ns } });
  }

  /** Set while a dryRun=All request runs: everything is checked and answered, nothing is kept. */
  private dry = false;

  /** Runs a write as kube-apiserver runs dryRun=All: validated and answered as if done, nothing stored or sent to watchers. */
  dryRun<T>(write: () => T): T {
    this.dry = true;
    try {
      return write();
    } finally {
      this.dry = false;
    }
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Drops all watch history: every watch resuming from an older resourceVersion gets 410. */
  compact(): void {
    this.compactedUpTo = this.rv;
    this.history = [];
  }

  private table(r: ResourceType): Map<string, KubeObject> {
    const k = resourceKey(r);
    let t = this.objects.get(k);
    if (!t) {
      t = new Map();
      this.objects.set(k, t);
    }
    return t;
  }

  private notFound(r: ResourceType, name: string): ApiError {
    return new ApiError(404, 'NotFound', `${r.plural}${r.group ? '.' + r.group : ''} "${name}" not found`, { name, group: r.group, kind: r.plural });
  }

  private conflict(r: ResourceType, name: string): ApiError {
    return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${r.plural}${r.group ? '.' + r.group : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: r.group, kind: r.plural });
  }

  private invalid(r: ResourceType, name: string, field: string, message: string): ApiError {
    return new ApiError(422, 'Invalid', `${r.kind} "${name}" is invalid: ${field}: ${message}`, { name, group: r.group, kind: r.kind, causes: [{ reason: 'FieldValueInvalid', message, field }] });
  }

  private validate(r: ResourceType, obj: KubeObject): void {
    const name = obj.metadata.name ?? '';
    if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
      throw this.invalid(r, name, 'metadata.name', `Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`);
    }
    if (r.kind === 'ConfigMap') {
      const data = obj.data;
      if (data !== undefined && data !== null) {
        if (typeof data !== 'object') throw this.invalid(r, name, 'data', 'must be a map of strings');
        for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
          if (!CONFIGMAP_KEY.test(k)) throw this.invalid(r, name, `data[${k}]`, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'");
          if (typeof v !== 'string') throw this.invalid(r, name, `data[${k}]`, 'must be a string');
        }
      }
    }
    const size = Buffer.byteLength(JSON.stringify(obj));
    if (size > MAX_OBJECT_BYTES) throw this.invalid(r, name, r.kind === 'ConfigMap' ? '[]' : 'metadata', `Too long: must have at most ${MAX_OBJECT_BYTES} bytes`);
  }

  private requireNamespace(r: ResourceType, namespace: string | undefined): void {
    if (!r.namespaced) return;
    if (!namespace) throw new ApiError(400, 'BadRequest', `the namespace of the provided object does not match the namespace sent on the request`);
    if (!this.table(this.namespaceType).has(keyOf(undefined, namespace))) {
      throw new ApiError(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' });
    }
  }

  private stamp(r: ResourceType, obj: KubeObject): KubeObject {
    obj.apiVersion = apiVersionOf(r);
    obj.kind = r.kind;
    if (this.dry) return obj;
    this.rv += 1;
    obj.metadata.resourceVersion = String(this.rv);
    return obj;
  }

  /** Keeps a written object (or its deletion) and tells the watchers; nothing under dryRun. */
  private commit(r: ResourceType, key: string, type: HistoryEntry['type'], object: KubeObject, old: KubeObject | undefined): void {
    if (this.dry) return;
    if (type === 'DELETED') this.table(r).delete(key);
    else this.table(r).set(key, object);
    this.record(r, type, structuredClone(object), old);
  }

  private record(r: ResourceType, type: HistoryEntry['type'], object: KubeObject, old: KubeObject | undefined): void {
    const entry: HistoryEntry = { rv: this.rv, resource: r, type, object, old };
    this.history.push(entry);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactedUpTo = dropped[dropped.length - 1]?.rv ?? this.compactedUpTo;
    }
    for (const w of this.watchers) if (w.resource === r) this.deliver(w, entry);
  }

  private matches(opts: WatchOptions, obj: KubeObject | undefined): boolean {
    if (!obj) return false;
    if (opts.namespace !== undefined && obj.metadata.namespace !== opts.namespace) return false;
    return opts.labelSelector(obj) && opts.fieldSelector(obj);
  }

  private deliver(w: Watcher, e: HistoryEntry): void {
    const now = this.matches(w.opts, e.object);
    if (e.type === 'DELETED') {
      if (now) w.send({ type: 'DELETED', object: e.object });
      return;
    }
    const before = e.type === 'MODIFIED' && this.matches(w.opts, e.old);
    if (now && before) w.send({ type: 'MODIFIED', object: e.object });
    else if (now) w.send({ type: 'ADDED', object: e.object });
    else if (before) w.send({ type: 'DELETED', object: e.object });
  }

  get(r: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const obj = this.table(r).get(keyOf(namespace, name));
    if (!obj) throw this.notFound(r, name);
    return structuredClone(obj);
  }

  list(r: ResourceType, namespace: string | undefined, label: Selector, field: Selector): { items: KubeObject[]; resourceVersion: string } {
    const items: KubeObject[] = [];
    for (const obj of this.table(r).values()) {
      if (namespace !== undefined && obj.metadata.namespace !== namespace) continue;
      if (label(obj) && field(obj)) items.push(structuredClone(obj));
    }
    items.sort((a, b) => keyOf(a.metadata.namespace, a.metadata.name ?? '').localeCompare(keyOf(b.metadata.namespace, b.metadata.name ?? '')));
    return { items, resourceVersion: this.resourceVersion };
  }

  create(r: ResourceType, namespace: string | undefined, body: Record<string, unknown>): KubeObject {
    const obj = structuredClone(body) as KubeObject;
    if (typeof obj.metadata !== 'object' || obj.metadata === null) obj.metadata = {};
    const meta = obj.metadata;
    if (r.namespaced) {
      if (meta.namespace !== undefined && meta.namespace !== namespace) throw new ApiError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
      meta.namespace = namespace;
    } else delete meta.namespace;
    this.requireNamespace(r, namespace);
    if (!meta.name && meta.generateName) meta.name = meta.generateName + randomBytes(3).toString('hex').slice(0, 5);
    if (!meta.name) throw this.invalid(r, '', 'metadata.name', 'Required value: name or generateName is required');
    if (meta.resourceVersion) throw new ApiError(400, 'BadRequest', 'resourceVersion should not be set on objects to be created');
    const t = this.table(r);
    const key = keyOf(meta.namespace, meta.name);
    if (t.has(key)) throw new ApiError(409, 'AlreadyExists', `${r.plural}${r.group ? '.' + r.group : ''} "${meta.name}" already exists`, { name: meta.name, group: r.group, kind: r.plural });
    defaults(r, obj);
    this.validate(r, obj);
    meta.uid = randomUUID();
    meta.creationTimestamp = this.now().toISOString().replace(/\.\d{3}Z$/, 'Z');
    this.stamp(r, obj);
    this.commit(r, key, 'ADDED', obj, undefined);
    return structuredClone(obj);
  }

  update(r: ResourceType, namespace: string | undefined, name: string, body: Record<string, unknown>, subresource?: 'status'): KubeObject {
    const t = this.table(r);
    const key = keyOf(namespace, name);
    const old = t.get(key);
    if (!old) throw this.notFound(r, name);
    const next = structuredClone(body) as KubeObject;
    if (typeof next.metadata !== 'object' || next.metadata === null) next.metadata = {};
    if (next.metadata.name !== undefined && next.metadata.name !== name) throw new ApiError(400, 'BadRequest', `the name of the object (${String(next.metadata.name)}) does not match the name on the URL (${name})`);
    const sentRv = next.metadata.resourceVersion;
    if (sentRv !== undefined && sentRv !== '' && sentRv !== old.metadata.resourceVersion) throw this.conflict(r, name);
    let merged: KubeObject;
    if (subresource === 'status') {
      merged = structuredClone(old);
      merged.status = next.status;
    } else {
      merged = next;
      if (r.statusSubresource) merged.status = structuredClone(old.status);
    }
    merged.metadata = { ...merged.metadata, name, uid: old.metadata.uid, creationTimestamp: old.metadata.creationTimestamp };
    if (r.namespaced) merged.metadata.namespace = namespace;
    else delete merged.metadata.namespace;
    this.validate(r, merged);
    // a write that changes nothing does not bump resourceVersion, as in Kubernetes
    const { resourceVersion: _a, ...oldMeta } = old.metadata;
    const { resourceVersion: _b, ...newMeta } = merged.metadata;
    if (JSON.stringify({ ...old, metadata: oldMeta }) === JSON.stringify({ ...merged, apiVersion: old.apiVersion, kind: old.kind, metadata: newMeta })) {
      return structuredClone(old);
    }
    this.stamp(r, merged);
    this.commit(r, key, 'MODIFIED', merged, old);
    return structuredClone(merged);
  }

  patch(r: ResourceType, namespace: string | undefined, name: string, type: PatchType, patch: unknown, subresource?: 'status'): KubeObject {
    const current = this.get(r, namespace, name);
    let patched: unknown;
    try {
      if (type === 'strategic') {
        const file = kindFile(r.group, r.version, r.kind);
        if (!file) throw new ApiError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml');
        patched = applyStrategicMergePatch(current, patch, file);
      } else patched = type === 'json' ? applyJsonPatch(current, patch) : applyMergePatch(current, patch);
    } catch (err) {
      if (err instanceof PatchError) throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${err.message}`);
      throw err;
    }
    if (typeof patched !== 'object' || patched === null || Array.isArray(patched)) throw new ApiError(422, 'Invalid', 'patch result is not an object');
    const result = patched as KubeObject;
    // a resourceVersion inside the patch is a precondition (optimistic concurrency)
    if (result.metadata?.resourceVersion !== current.metadata.resourceVersion) throw this.conflict(r, name);
    return this.update(r, namespace, name, result, subresource);
  }

  delete(r: ResourceType, namespace: string | undefined, name: string, preconditions?: { uid?: string; resourceVersion?: string }): KubeObject {
    const t = this.table(r);
    const key = keyOf(namespace, name);
    const old = t.get(key);
    if (!old) throw this.notFound(r, name);
    if (preconditions?.uid && preconditions.uid !== old.metadata.uid) {
      throw new ApiError(409, 'Conflict', `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${old.metadata.uid ?? ''}`);
    }
    if (preconditions?.resourceVersion && preconditions.resourceVersion !== old.metadata.resourceVersion) {
      throw new ApiError(409, 'Conflict', `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion ?? ''}`);
    }
    const gone = structuredClone(old);
    this.stamp(r, gone);
    this.commit(r, key, 'DELETED', gone, old);
    if (r === this.namespaceType && !this.dry) this.deleteNamespaceContents(name);
    return structuredClone(gone);
  }

  private deleteNamespaceContents(namespace: string): void {
    for (const [k, t] of this.objects) {
      if (k === resourceKey(this.namespaceType)) continue;
      for (const obj of [...t.values()]) {
        if (obj.metadata.namespace !== namespace) continue;
        const rt = this.resourceOf(obj);
        if (rt) this.delete(rt, namespace, obj.metadata.name ?? '');
      }
    }
  }

  private resourceOf(obj: KubeObject): ResourceType | undefined {
    return this.typesByKind.get(`${String(obj.apiVersion)}/${String(obj.kind)}`);
  }

  /**
   * Starts a watch. Events up to now (synthetic ADDED, or history after resourceVersion) are sent
   * synchronously before this returns; later ones as they happen. Returns a function that stops it.
   */
  watch(r: ResourceType, opts: WatchOptions, send: (e: WatchEvent) => void): () => void {
    const rvText = opts.resourceVersion;
    if (rvText === undefined || rvText === '' || rvText === '0') {
      for (const obj of this.list(r, opts.namespace, opts.labelSelector, opts.fieldSelector).items) send({ type: 'ADDED', object: obj });
    } else {
      const from = Number(rvText);
      if (!Number.isInteger(from) || from < 0) throw new ApiError(400, 'BadRequest', `invalid resourceVersion ${JSON.stringify(rvText)}`);
      if (from < this.compactedUpTo) {
        send({ type: 'ERROR', object: new ApiError(410, 'Expired', `too old resource version: ${from} (${this.compactedUpTo + 1})`).toStatus() });
        return () => undefined;
      }
      const w0: Watcher = { resource: r, opts, send };
      for (const e of this.history) if (e.rv > from && e.resource === r) this.deliver(w0, e);
    }
    const w: Watcher = { resource: r, opts, send };
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }

  bookmark(r: ResourceType): WatchEvent {
    return { type: 'BOOKMARK', object: { kind: r.kind, apiVersion: apiVersionOf(r), metadata: { resourceVersion: this.resourceVersion, annotations: { 'k8s.io/initial-events-end': 'true' } } } };
  }

  /** Every object, for saving the store to disk and loading it again. */
  snapshot(): { resourceVersion: number; objects: KubeObject[] } {
    const objects: KubeObject[] = [];
    for (const t of this.objects.values()) for (const o of t.values()) objects.push(structuredClone(o));
    return { resourceVersion: this.rv, objects };
  }

  restore(snap: { resourceVersion: number; objects: KubeObject[] }): void {
    this.objects.clear();
    for (const o of snap.objects) {
      const rt = this.resourceOf(o);
      if (!rt) continue;
      this.table(rt).set(keyOf(o.metadata.namespace, o.metadata.name ?? ''), o);
    }
    this.rv = snap.resourceVersion;
    this.compactedUpTo = this.rv;
    this.history = [];
  }
}
