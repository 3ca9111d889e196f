/**
 * Writes the coordinator's published state, always conditionally: the peer-table shards with a
 * resourceVersion precondition (compare-and-swap, so two coordinators acting on stale caches can
 * never hand one address to two nodes), the hub info, and each node's allocation annotation
 * (after its shard write has committed the address).
 */
import type { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';
import { mergePatch } from '../shared/kube/client.ts';
import { ANNOTATION_OVERLAY_IP, ANNOTATION_VTEP_MAC, HUB_CONFIGMAP, LABEL_MANAGED_BY, LABEL_TABLE, PRODUCT } from '../shared/keys.ts';
import { SCHEMA_VERSION, type ConfigMapData } from '../shared/tables.ts';
import { dataPatch } from './plan.ts';

export interface WriteCounter { writes: number }

export function tableLabels(table: 'hub' | 'peers'): Record<string, string> {
  return { [LABEL_TABLE]: table, [LABEL_MANAGED_BY]: PRODUCT };
}

/**
 * Creates or patches a ConfigMap to hold exactly `want`. The patch carries the observed
 * resourceVersion, so a concurrent change makes it fail with 409 instead of being overwritten.
 * Returns the written object, or undefined when nothing needed writing.
 */
export async function writeTable(core: CoreV1Api, namespace: string, name: string, table: 'hub' | 'peers', have: V1ConfigMap | undefined, want: ConfigMapData, counter: WriteCounter): Promise<V1ConfigMap | undefined> {
  if (!have) {
    counter.writes++;
    return core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name, namespace, labels: tableLabels(table), annotations: { [`${LABEL_TABLE}-schema`]: SCHEMA_VERSION } }, data: want },
    });
  }
  const patch = dataPatch(have.data ?? {}, want);
  if (!patch) return undefined;
  counter.writes++;
  return core.patchNamespacedConfigMap(
    { name, namespace, body: { metadata: { resourceVersion: have.metadata?.resourceVersion }, data: patch } },
    mergePatch(),
  );
}

export { HUB_CONFIGMAP };

export async function annotateNode(core: CoreV1Api, node: string, overlayIP: string, mac: string, counter: WriteCounter): Promise<void> {
  counter.writes++;
  await core.patchNode({ name: node, body: { metadata: { annotations: { [ANNOTATION_OVERLAY_IP]: overlayIP, [ANNOTATION_VTEP_MAC]: mac } } } }, mergePatch());
}
