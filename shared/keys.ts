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
/** 'direct' on a Node the device reaches by direct routing (absent: through the overlay). */
export const ANNOTATION_PATH = `${KEY_PREFIX}/path`;

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

/**
 * Several instances per cluster (one per device: an F5 for one team, a Citrix ADC for another):
 * an instance name prefixes everything an instance writes, so two instances on the same nodes
 * and in the same namespace never read or touch each other's state. The default instance ('')
 * keeps the names above. 1 to 4 characters (a lower-case letter, then letters or digits), so the
 * VXLAN device name `ch<instance>-<vni>` stays within the kernel's 15 characters.
 */
export const INSTANCE_RE = /^[a-z][a-z0-9]{0,3}$/;

export interface InstanceNames {
  readonly instance: string;
  /** `chorus-kube-router[-<instance>]`: object names, field manager, Event source. */
  readonly product: string;
  /** `[<instance>.]kube-router.chorus.io`: annotation and label keys. */
  readonly keyPrefix: string;
  readonly annotationOverlayIP: string;
  readonly annotationVtepMAC: string;
  /** `direct` on a node the device routes to directly (its agent then makes no VXLAN device); absent: VXLAN. */
  readonly annotationPath: string;
  readonly annotationSchema: string;
  readonly annotationHighWater: string;
  readonly labelTable: string;
  readonly hubConfigMap: string;
  readonly peersConfigMapPrefix: string;
  readonly leaderLease: string;
  readonly deviceStatusConfigMap: string;
  /** The agent's nftables table (family inet). */
  readonly firewallTable: string;
  /** The node's VXLAN device for a VNI. */
  readonly vxlanDevice: (vni: number) => string;
  /** Whether a link name is a VXLAN device of this instance (any VNI: a stale one after a VNI change). */
  readonly ownsDevice: (name: string) => boolean;
}

export function instanceNames(instance = ''): InstanceNames {
  if (instance !== '' && !INSTANCE_RE.test(instance)) throw new Error(`instance name ${JSON.stringify(instance)} must be 1 to 4 characters: a lower-case letter, then letters or digits`);
  const product = instance ? `${PRODUCT}-${instance}` : PRODUCT;
  const keyPrefix = instance ? `${instance}.${KEY_PREFIX}` : KEY_PREFIX;
  const devicePrefix = instance ? `ch${instance}-` : 'chorus-';
  const owned = new RegExp(`^${devicePrefix}\\d+$`);
  return {
    instance, product, keyPrefix,
    annotationOverlayIP: `${keyPrefix}/overlay-ip`,
    annotationVtepMAC: `${keyPrefix}/vtep-mac`,
    annotationPath: `${keyPrefix}/path`,
    annotationSchema: `${keyPrefix}/table-schema`,
    annotationHighWater: `${keyPrefix}/high-water`,
    labelTable: `${keyPrefix}/table`,
    hubConfigMap: `${product}-hub`,
    peersConfigMapPrefix: `${product}-peers-`,
    leaderLease: `${product}-coordinator`,
    deviceStatusConfigMap: `${product}-device`,
    firewallTable: product,
    vxlanDevice: (vni) => `${devicePrefix}${vni}`,
    ownsDevice: (name) => owned.test(name),
  };
}

/** The names of the default instance (those above). */
export const DEFAULT_NAMES = instanceNames('');
