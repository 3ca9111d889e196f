/** What the product reads from a Kubernetes Node object. */
import type { V1Node } from '@kubernetes/client-node';
import { cidrTextFamily, formatIp, parseIp, type IpFamily } from './ip.ts';
import { isIPv4 } from './ipv4.ts';
import { ANNOTATION_OVERLAY_IP } from './keys.ts';

/** The node's first InternalIP of a family (as kubelet reports it; IPv6 in canonical text). */
export function internalIP(node: V1Node, family: IpFamily): string | undefined {
  for (const a of node.status?.addresses ?? []) {
    if (a.type !== 'InternalIP') continue;
    if (family === 4 && isIPv4(a.address)) return a.address;
    if (family === 6 && a.address.includes(':')) {
      try {
        const ip = parseIp(a.address);
        if (ip.family === 6) return formatIp(ip);
      } catch {
        // not an address: look further
      }
    }
  }
  return undefined;
}

/** The family of an underlay: that of its device VTEPs (all one family; a mixed underlay is refused where VTEPs are configured). */
export const underlayFamilyOf = (deviceVTEPs: readonly string[]): IpFamily => (deviceVTEPs.some((v) => v.includes(':')) ? 6 : 4);

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
