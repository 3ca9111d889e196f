/** What the product reads from a Kubernetes Node object. */
import type { V1Node } from '@kubernetes/client-node';
import { cidrTextFamily } from './ip.ts';
import { isIPv4 } from './ipv4.ts';
import { ANNOTATION_OVERLAY_IP } from './keys.ts';

/** The node's underlay address: its first IPv4 InternalIP (as kubelet reports it). */
export function internalIPv4(node: V1Node): string | undefined {
  return node.status?.addresses?.find((a) => a.type === 'InternalIP' && isIPv4(a.address))?.address;
}

/** Pod CIDRs of both families from spec.podCIDRs (or the older single spec.podCIDR), in the Node's order. */
export function podCIDRsOf(node: V1Node): string[] {
  const list = node.spec?.podCIDRs ?? (node.spec?.podCIDR ? [node.spec.podCIDR] : []);
  return list.filter((c) => cidrTextFamily(c) !== undefined);
}

/** `key`: the instance's overlay-IP annotation (InstanceNames.annotationOverlayIP). */
export function allocatedOverlayIP(node: V1Node, key: string = ANNOTATION_OVERLAY_IP): string | undefined {
  const v = node.metadata?.annotations?.[key];
  return v !== undefined && isIPv4(v) ? v : undefined;
}
