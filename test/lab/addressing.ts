/**
 * The lab's address plan, pure (but for newPrefix, which draws a new lab's prefix). Every address
 * comes from 198.18.0.0/15 (RFC 2544 benchmarking):
 *   underlay 198.18.0.0/20   control plane .0.2, device .0.3, node i at 198.18.1.0 + i
 *   overlay  198.18.16.0/20  (the coordinator's --overlay-network)
 *   pods     198.19.0.0/16   node i owns 198.19.(i-1).0/24; its bridge is .1, pod j is .(j+1)
 *   routed   198.18.64.0/20  (--routing auto) the subnet behind the router: the router is .64.1
 *                            (and 198.18.0.4 on the underlay), node i there is 198.18.65.0 + i
 * A dual-stack lab (--ip-family dual) adds IPv6 from 2001:db8::/32 (RFC 3849, documentation; it
 * lives only inside the lab's namespaces, as the IPv4 plan does):
 *   overlay  2001:db8:c0::/64        (--overlay-network-ipv6; each IPv4 overlay address's twin)
 *   pods     2001:db8:19:<i-1>::/64  node i (hex); its bridge is ::1, pod j is ::<j+1> (hex)
 * An IPv6-underlay lab (--ip-family ipv6) is the dual-stack lab plus an IPv6 underlay on the
 * same switch, which carries the VXLAN (the API and health checks stay on IPv4):
 *   underlay 2001:db8:18::/64        device VTEP ::3, node i at ::1:<i> (hex)
 */
import { randomBytes } from 'node:crypto';
import { formatIPv4, parseIPv4 } from '../../shared/ipv4.ts';
import { formatIp, parseIPv6 } from '../../shared/ip.ts';

export const UNDERLAY_NETWORK = '198.18.0.0/20';
export const UNDERLAY_PREFIX = 20;
export const CONTROL_PLANE_IP = '198.18.0.2';
export const DEVICE_IP = '198.18.0.3';
export const OVERLAY_NETWORK = '198.18.16.0/20';
export const API_PORT = 6443;
export const AGENT_HEALTH_PORT = 9641;
export const COORDINATOR_HEALTH_PORT = 9650;
export const GATEWAY_HEALTH_PORT = 9643;
/** The gateway's /status, which the lab enables on the device address (its default is loopback). */
export const GATEWAY_STATUS_PORT = 9646;
export const MAX_NODES = 256;
/** The VNI of the lab's default instance (the coordinator's default --vni). */
export const LAB_VNI = 100000;

/** How the lab's coordinator routes to nodes (its --routing), and where the lab puts them. */
export const LAB_ROUTINGS = ['vxlan', 'direct', 'auto'] as const;
export type LabRouting = (typeof LAB_ROUTINGS)[number];
/** The subnet behind the router (--routing auto): nodes there are not on the device's subnet. */
export const ROUTED_NETWORK = '198.18.64.0/20';
export const ROUTED_PREFIX = 20;
export const ROUTER_UNDERLAY_IP = '198.18.0.4';
export const ROUTER_ROUTED_IP = '198.18.64.1';
/** Where a node sits: on the device's subnet (the switch) or behind the router. */
export type Segment = 'switch' | 'routed';

/**
 * A second instance (deploy/instance-b) on the same nodes, for its own device: instance "b",
 * VNI 100001, overlay 198.18.32.0/20, its device at 198.18.0.6, its agents on ports 9651/9654.
 */
export const INSTANCE_B = 'b';
export const DEVICE_B_IP = '198.18.0.6';
export const OVERLAY_NETWORK_B = '198.18.32.0/20';
export const VNI_B = 100001;
export const AGENT_B_HEALTH_PORT = 9651;
export const AGENT_B_STATUS_PORT = 9654;
export const MAX_PODS_PER_NODE = 250;

export function nodeName(index: number): string {
  return `node-${index}`;
}

export function nodeUnderlayIP(index: number): string {
  if (index < 1 || index > MAX_NODES) throw new Error(`lab node index ${index} is outside 1..${MAX_NODES}`);
  return formatIPv4(parseIPv4('198.18.1.0') + index);
}

/** Node i's address behind the router. */
export function routedNodeIP(index: number): string {
  if (index < 1 || index > MAX_NODES) throw new Error(`lab node index ${index} is outside 1..${MAX_NODES}`);
  return formatIPv4(parseIPv4('198.18.65.0') + index);
}

/** Where node i starts: with --routing auto the even-numbered nodes are behind the router; otherwise all on the switch. */
export function initialSegment(routing: LabRouting, index: number): Segment {
  return routing === 'auto' && index % 2 === 0 ? 'routed' : 'switch';
}

/** The lab's address families: ipv4; dual (IPv4 underlay, dual-stack overlay and pods); ipv6 (the same over an IPv6 underlay). */
export const LAB_IP_FAMILIES = ['ipv4', 'dual', 'ipv6'] as const;
export const UNDERLAY_PREFIX_IPV6 = 64;
export const DEVICE_IPV6 = '2001:db8:18::3';

/** Node i's IPv6 underlay address (an IPv6-underlay lab). */
export function nodeUnderlayIPv6(index: number): string {
  if (index < 1 || index > MAX_NODES) throw new Error(`lab node index ${index} is outside 1..${MAX_NODES}`);
  return `2001:db8:18::1:${index.toString(16)}`;
}
export type LabIpFamily = (typeof LAB_IP_FAMILIES)[number];
export const OVERLAY_NETWORK_IPV6 = '2001:db8:c0::/64';

/** Node i's IPv6 pod network, host `host` in it, in canonical text (as the tables and the kernel write them). */
const podAddress6 = (index: number, host: number): string => formatIp({ family: 6, value: parseIPv6(`2001:db8:19:${(index - 1).toString(16)}::`) + BigInt(host) });

export function podCIDRv6(index: number): string {
  return `${podAddress6(index, 0)}/64`;
}

export function podGatewayIPv6(index: number): string {
  return podAddress6(index, 1);
}

export function podIPv6(nodeIndex: number, pod: number): string {
  if (pod < 1 || pod > MAX_PODS_PER_NODE) throw new Error(`pod index ${pod} is outside 1..${MAX_PODS_PER_NODE}`);
  return podAddress6(nodeIndex, pod + 1);
}

export function podCIDR(index: number): string {
  return `198.19.${index - 1}.0/24`;
}

export function podGatewayIP(index: number): string {
  return `198.19.${index - 1}.1`;
}

export function podIP(nodeIndex: number, pod: number): string {
  if (pod < 1 || pod > MAX_PODS_PER_NODE) throw new Error(`pod index ${pod} is outside 1..${MAX_PODS_PER_NODE}`);
  return `198.19.${nodeIndex - 1}.${pod + 1}`;
}

export interface Names {
  readonly prefix: string;
  readonly underlay: string;
  readonly controlPlane: string;
  readonly device: string;
  /** The second instance's device. */
  readonly deviceB: string;
  /** The router between the switch and the routed subnet (--routing auto). */
  readonly router: string;
  node(index: number): string;
  pod(nodeIndex: number, pod: number): string;
}

/** Namespace names, all starting with the per-run prefix so cleanup can find every one. */
export function namesFor(prefix: string): Names {
  return {
    prefix,
    underlay: `${prefix}-ul`,
    controlPlane: `${prefix}-cp`,
    device: `${prefix}-dev`,
    deviceB: `${prefix}-devb`,
    router: `${prefix}-rt`,
    node: (i) => `${prefix}-n${i}`,
    pod: (i, j) => `${prefix}-n${i}p${j}`,
  };
}

export const PREFIX_RE = /^ckr[0-9a-f]{5}$/;

/** A new lab's prefix: every namespace, device and file of the lab is named after it. */
export function newPrefix(): string {
  return `ckr${randomBytes(3).toString('hex').slice(0, 5)}`;
}
