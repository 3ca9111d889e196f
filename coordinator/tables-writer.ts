/**
 * Writes the coordinator's published state, always conditionally: the peer-table shards with a
 * resourceVersion precondition (compare-and-swap, so two coordinators acting on stale caches can
 * never hand one address to two nodes), the hub info, and each node's allocation annotation
 * (after its shard write has committed the address). Every table object carries the schema
 * version of the hub document (1, or 2 for a dual-stack overlay) in an annotation.
 */
import type { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';
import { mergePatch } from '../shared/kube/client.ts';
import { DEFAULT_NAMES, LABEL_MANAGED_BY, type InstanceNames } from '../shared/keys.ts';
import { SCHEMA_VERSION, type ConfigMapData, type PeerPath } from '../shared/tables.ts';
import { dataPatch } from './plan.ts';

export interface WriteCounter { writes: number }

export function tableLabels(table: 'hub' | 'peers', names: InstanceNames = DEFAULT_NAMES): Record<string, string> {
  return { [names.labelTable]: table, [LABEL_MANAGED_BY]: names.product };
}

/** The high-water mark a shard records (0 when absent or garbled). */
export function highWaterOf(cm: V1ConfigMap | undefined, names: InstanceNames = DEFAULT_NAMES): number {
  const v = Number(cm?.metadata?.annotations?.[names.annotationHighWater] ?? '0');
  return Number.isInteger(v) && v >= 0 ? v : 0;
}

/**
 * Creates or patches a ConfigMap to hold exactly `want` (and, for a shard, its high-water mark).
 * The patch carries the observed resourceVersion, so a concurrent change makes it fail with 409
 * instead of being overwritten. Returns the written object, or undefined when nothing changed.
 */
export async function writeTable(core: CoreV1Api, namespace: string, name: string, table: 'hub' | 'peers', have: V1ConfigMap | undefined, want: ConfigMapData, counter: WriteCounter, highWater?: number, names: InstanceNames = DEFAULT_NAMES, schema: string = SCHEMA_VERSION): Promise<V1ConfigMap | undefined> {
  const wantAnnotations: Record<string, string> = { [names.annotationSchema]: schema, ...(highWater !== undefined ? { [names.annotationHighWater]: String(highWater) } : {}) };
  if (!have) {
    counter.writes++;
    return core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name, namespace, labels: tableLabels(table, names), annotations: wantAnnotations }, data: want },
    });
  }
  const patch = dataPatch(have.data ?? {}, want);
  const haveAnn = have.metadata?.annotations ?? {};
  const annPatch = Object.fromEntries(Object.entries(wantAnnotations).filter(([k, v]) => haveAnn[k] !== v));
  if (!patch && Object.keys(annPatch).length === 0) return undefined;
  counter.writes++;
  return core.patchNamespacedConfigMap(
    { name, namespace, body: { metadata: { resourceVersion: have.metadata?.resourceVersion, ...(Object.keys(annPatch).length > 0 ? { annotations: annPatch } : {}) }, ...(patch ? { data: patch } : {}) } },
    mergePatch(),
  );
}

/** Records a node's allocation on its Node; `path` direct is recorded, VXLAN is the annotation's absence (null removes it). */
export async function annotateNode(core: CoreV1Api, node: string, overlayIP: string, mac: string, counter: WriteCounter, names: InstanceNames = DEFAULT_NAMES, path: PeerPath = 'vxlan'): Promise<void> {
  counter.writes++;
  const annotations = { [names.annotationOverlayIP]: overlayIP, [names.annotationVtepMAC]: mac, [names.annotationPath]: path === 'direct' ? 'direct' : null };
  await core.patchNode({ name: node, body: { metadata: { annotations } } }, mergePatch());
}
