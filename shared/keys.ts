/**
 * Every name the product writes into Kubernetes, in one place. Everything is prefixed
 * `chorus-kube-router` / `kube-router.chorus.io/` so that nothing collides with the unrelated
 * kube-router CNI.
 */
export const PRODUCT = 'chorus-kube-router';
export const DEFAULT_NAMESPACE = 'chorus-system';
export const KEY_PREFIX = 'kube-router.chorus.io';

export const ANNOTATION_OVERLAY_IP = `${KEY_PREFIX}/overlay-ip`;
export const ANNOTATION_VTEP_MAC = `${KEY_PREFIX}/vtep-mac`;

/** On each table ConfigMap: the schema version of its content. */
export const ANNOTATION_SCHEMA = `${KEY_PREFIX}/table-schema`;
/** On each peer shard: how many of its node addresses were ever handed out (reuse-last IPAM). */
export const ANNOTATION_HIGH_WATER = `${KEY_PREFIX}/high-water`;

/** Label on every ConfigMap the coordinator publishes; value = what it holds ("hub" | "peers"). */
export const LABEL_TABLE = `${KEY_PREFIX}/table`;
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';

export const HUB_CONFIGMAP = `${PRODUCT}-hub`;
export const PEERS_CONFIGMAP_PREFIX = `${PRODUCT}-peers-`;
export const LEADER_LEASE = `${PRODUCT}-coordinator`;
/** Whether each node is programmed on the device, written by whoever programs it (coordinator or gateway). */
export const DEVICE_STATUS_CONFIGMAP = `${PRODUCT}-device`;
/** The key of that ConfigMap that names the device type rather than a node. */
export const DEVICE_STATUS_SUMMARY_KEY = '_device';
/** The key of that ConfigMap that holds the cluster identity the coordinator marks device objects with. */
export const DEVICE_STATUS_CLUSTER_KEY = '_cluster';

export const FIELD_MANAGER = PRODUCT;

/** VXLAN device name: unique per VNI and within the kernel's 15-character limit. */
export function vxlanDeviceName(vni: number): string {
  return `chorus-${vni}`;
}
