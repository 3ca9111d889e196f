/**
 * Server-side printing (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), which kubectl asks
 * for on every `get`: a meta.k8s.io/v1 Table with the columns kube-apiserver's printers give each
 * built-in kind (pkg/printers/internalversion), the default Name/Age pair for others, ages in
 * k8s.io/apimachinery's HumanDuration format, and each row's object as PartialObjectMetadata
 * (includeObject=Metadata, the default), the whole object (Object) or nothing (None).
 */
import type { ResourceType } from './resources.ts';

type Obj = Record<string, unknown>;
type Cell = string | number;
interface Column { readonly name: string; readonly type?: 'string' | 'integer' | 'date'; readonly priority?: number; readonly cell: (o: Obj, now: number) => Cell }

const get = (o: unknown, path: string): unknown => path.split('.').reduce<unknown>((v, k) => (typeof v === 'object' && v !== null ? (v as Obj)[k] : undefined), o);
const str = (o: Obj, path: string, none = '<none>'): string => {
  const v = get(o, path);
  if (v === undefined || v === null || v === '') return none;
  return typeof v === 'string' ? v : JSON.stringify(v);
};
const num = (o: Obj, path: string): number => Number(get(o, path) ?? 0) || 0;
const count = (o: Obj, path: string): number => {
  const v = get(o, path);
  return Array.isArray(v) ? v.length : typeof v === 'object' && v !== null ? Object.keys(v).length : 0;
};
const age = (o: Obj, now: number): string => ageOf(str(o, 'metadata.creationTimestamp', ''), now);

/** k8s.io/apimachinery/pkg/util/duration.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${years}y` : `${years}y${days % 365}d`;
  return `${years}y`;
}

function ageOf(timestamp: string, now: number): string {
  const t = Date.parse(timestamp);
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}

const NAME: Column = { name: 'Name', cell: (o) => str(o, 'metadata.name', '') };
const AGE: Column = { name: 'Age', cell: age };

function nodeStatus(o: Obj): string {
  const ready = ((get(o, 'status.conditions') ?? []) as Obj[]).find((c) => c.type === 'Ready');
  const status = ready?.status === 'True' ? 'Ready' : ready ? 'NotReady' : 'Unknown';
  return get(o, 'spec.unschedulable') === true ? `${status},SchedulingDisabled` : status;
}

function nodeRoles(o: Obj): string {
  const labels = (get(o, 'metadata.labels') ?? {}) as Record<string, string>;
  const roles = Object.keys(labels).flatMap((k) => (k.startsWith('node-role.kubernetes.io/') ? [k.slice('node-role.kubernetes.io/'.length)] : k === 'kubernetes.io/role' ? [labels[k] ?? ''] : [])).filter((r) => r !== '');
  return roles.length ? roles.sort().join(',') : '<none>';
}

const address = (type: string) => (o: Obj): string => ((get(o, 'status.addresses') ?? []) as Obj[]).find((a) => a.type === type)?.address as string | undefined ?? '<none>';
const containers = (path: string) => (o: Obj): string => ((get(o, path) ?? []) as Obj[]).map((c) => String(c.name)).join(',');
const images = (path: string) => (o: Obj): string => ((get(o, path) ?? []) as Obj[]).map((c) => String(c.image)).join(',');
const selector = (o: Obj): string => {
  const ml = (get(o, 'spec.selector.matchLabels') ?? {}) as Record<string, string>;
  return Object.entries(ml).map(([k, v]) => `${k}=${v}`).join(',') || '<none>';
};
const mapText = (path: string) => (o: Obj): string => Object.entries((get(o, path) ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',') || '<none>';

const COLUMNS: Readonly<Record<string, readonly Column[]>> = {
  Node: [NAME, { name: 'Status', cell: nodeStatus }, { name: 'Roles', cell: nodeRoles }, AGE, { name: 'Version', cell: (o) => str(o, 'status.nodeInfo.kubeletVersion', '') },
    { name: 'Internal-IP', priority: 1, cell: address('InternalIP') }, { name: 'External-IP', priority: 1, cell: address('ExternalIP') },
    { name: 'OS-Image', priority: 1, cell: (o) => str(o, 'status.nodeInfo.osImage', '<unknown>') }, { name: 'Kernel-Version', priority: 1, cell: (o) => str(o, 'status.nodeInfo.kernelVersion', '<unknown>') },
    { name: 'Container-Runtime', priority: 1, cell: (o) => str(o, 'status.nodeInfo.containerRuntimeVersion', '<unknown>') }],
  Namespace: [NAME, { name: 'Status', cell: (o) => str(o, 'status.phase', 'Active') }, AGE],
  ConfigMap: [NAME, { name: 'Data', type: 'integer', cell: (o) => count(o, 'data') + count(o, 'binaryData') }, AGE],
  Secret: [NAME, { name: 'Type', cell: (o) => str(o, 'type', 'Opaque') }, { name: 'Data', type: 'integer', cell: (o) => count(o, 'data') }, AGE],
  ServiceAccount: [NAME, { name: 'Secrets', type: 'integer', cell: (o) => count(o, 'secrets') }, AGE],
  Event: [
    { name: 'Last Seen', cell: (o, now) => ageOf(str(o, 'lastTimestamp', '') || str(o, 'eventTime', '') || str(o, 'metadata.creationTimestamp', ''), now) },
    { name: 'Type', cell: (o) => str(o, 'type', '') }, { name: 'Reason', cell: (o) => str(o, 'reason', '') },
    { name: 'Object', cell: (o) => `${str(o, 'involvedObject.kind', '').toLowerCase()}/${str(o, 'involvedObject.name', '')}` },
    { name: 'Subobject', priority: 1, cell: (o) => str(o, 'involvedObject.fieldPath', '') },
    { name: 'Source', priority: 1, cell: (o) => [str(o, 'source.component', ''), str(o, 'source.host', '')].filter((x) => x !== '').join(', ') },
    { name: 'Message', cell: (o) => str(o, 'message', '') },
    { name: 'First Seen', priority: 1, cell: (o, now) => ageOf(str(o, 'firstTimestamp', '') || str(o, 'metadata.creationTimestamp', ''), now) },
    { name: 'Count', type: 'integer', priority: 1, cell: (o) => num(o, 'count') || 1 },
    { name: 'Name', priority: 1, cell: (o) => str(o, 'metadata.name', '') },
  ],
  Lease: [NAME, { name: 'Holder', cell: (o) => str(o, 'spec.holderIdentity', '') }, AGE],
  Pod: [NAME, { name: 'Ready', cell: (o) => `${((get(o, 'status.containerStatuses') ?? []) as Obj[]).filter((c) => c.ready === true).length}/${count(o, 'spec.containers')}` },
    { name: 'Status', cell: (o) => str(o, 'status.phase', 'Pending') }, { name: 'Restarts', type: 'integer', cell: () => 0 }, AGE,
    { name: 'IP', priority: 1, cell: (o) => str(o, 'status.podIP') }, { name: 'Node', priority: 1, cell: (o) => str(o, 'spec.nodeName') }],
  DaemonSet: [NAME, ...['desiredNumberScheduled', 'currentNumberScheduled', 'numberReady', 'updatedNumberScheduled', 'numberAvailable'].map((f, i): Column => ({ name: ['Desired', 'Current', 'Ready', 'Up-to-date', 'Available'][i] ?? f, type: 'integer', cell: (o) => num(o, `status.${f}`) })),
    { name: 'Node Selector', cell: mapText('spec.template.spec.nodeSelector') }, AGE,
    { name: 'Containers', priority: 1, cell: containers('spec.template.spec.containers') }, { name: 'Images', priority: 1, cell: images('spec.template.spec.containers') }, { name: 'Selector', priority: 1, cell: selector }],
  Deployment: [NAME, { name: 'Ready', cell: (o) => `${num(o, 'status.readyReplicas')}/${get(o, 'spec.replicas') === undefined ? 1 : num(o, 'spec.replicas')}` },
    { name: 'Up-to-date', type: 'integer', cell: (o) => num(o, 'status.updatedReplicas') }, { name: 'Available', type: 'integer', cell: (o) => num(o, 'status.availableReplicas') }, AGE,
    { name: 'Containers', priority: 1, cell: containers('spec.template.spec.containers') }, { name: 'Images', priority: 1, cell: images('spec.template.spec.containers') }, { name: 'Selector', priority: 1, cell: selector }],
  Job: [NAME, { name: 'Status', cell: (o) => (num(o, 'status.succeeded') > 0 ? 'Complete' : num(o, 'status.failed') > 0 ? 'Failed' : 'Running') },
    { name: 'Completions', cell: (o) => `${num(o, 'status.succeeded')}/${get(o, 'spec.completions') === undefined ? 1 : num(o, 'spec.completions')}` }, { name: 'Duration', cell: () => '' }, AGE],
  PodDisruptionBudget: [NAME, { name: 'Min Available', cell: (o) => str(o, 'spec.minAvailable', 'N/A') }, { name: 'Max Unavailable', cell: (o) => str(o, 'spec.maxUnavailable', 'N/A') },
    { name: 'Allowed Disruptions', type: 'integer', cell: (o) => num(o, 'status.disruptionsAllowed') }, AGE],
  ClusterRole: [NAME, { name: 'Created At', type: 'date', cell: (o) => str(o, 'metadata.creationTimestamp', '') }],
  Role: [NAME, { name: 'Created At', type: 'date', cell: (o) => str(o, 'metadata.creationTimestamp', '') }],
  ClusterRoleBinding: [NAME, { name: 'Role', cell: (o) => `${str(o, 'roleRef.kind', '')}/${str(o, 'roleRef.name', '')}` }, AGE],
  RoleBinding: [NAME, { name: 'Role', cell: (o) => `${str(o, 'roleRef.kind', '')}/${str(o, 'roleRef.name', '')}` }, AGE],
};

/** Whether a request's Accept header asks for a meta.k8s.io/v1 Table. */
export function wantsTable(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((part) => {
    const params = new Map(part.split(';').slice(1).map((p) => p.trim().split('=') as [string, string]));
    return params.get('as') === 'Table' && params.get('g') === 'meta.k8s.io' && params.get('v') === 'v1';
  });
}

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export function includeObjectOf(url: URL): IncludeObject {
  const v = url.searchParams.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}

function rowObject(o: Obj, include: IncludeObject): Obj | undefined {
  if (include === 'None') return undefined;
  if (include === 'Object') return o;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
}

/** A Table of objects of one kind; `headers: false` leaves out the column definitions (watch events after the first). */
export function toTable(r: ResourceType, objects: readonly Obj[], meta: Obj, include: IncludeObject, headers = true, now = Date.now()): Obj {
  const columns = COLUMNS[r.kind] ?? [NAME, AGE];
  return {
    kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: meta,
    ...(headers ? { columnDefinitions: columns.map((c) => ({ name: c.name, type: c.type ?? 'string', format: c === NAME ? 'name' : '', description: '', priority: c.priority ?? 0 })) } : {}),
    rows: objects.map((o) => {
      const object = rowObject(o, include);
      return { cells: columns.map((c) => c.cell(o, now)), ...(object ? { object } : {}) };
    }),
  };
}
