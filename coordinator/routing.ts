/**
 * Which path the device takes to each node's pods, pure (--routing, --direct-subnets):
 *   vxlan   every node through the VXLAN overlay (route via the node's overlay IP)
 *   direct  every node by direct routing (route via the node's underlay IP, no tunnel): the
 *           device must share a subnet with every node
 *   auto    direct for a node whose underlay IP lies in one of the direct subnets (the subnets
 *           the device is attached to), VXLAN for the rest (nodes behind routers)
 */
import { cidrContains, parseCidr, parseIPv4, type Cidr } from '../shared/ipv4.ts';
import type { PeerPath } from '../shared/tables.ts';

export const ROUTING_MODES = ['vxlan', 'direct', 'auto'] as const;
export type RoutingMode = (typeof ROUTING_MODES)[number];

export interface RoutingPolicy {
  readonly mode: RoutingMode;
  /** auto: the underlay subnets the device can reach without a router (CIDRs). */
  readonly directSubnets: readonly string[];
}

export const VXLAN_ONLY: RoutingPolicy = { mode: 'vxlan', directSubnets: [] };

/** The policy as one comparable string (a plan built under another policy reuses nothing). */
export const policyKey = (p: RoutingPolicy): string => `${p.mode} ${p.directSubnets.join(',')}`;

/** Decides each node's path; parses the subnets once. */
export class PathChooser {
  private readonly mode: RoutingMode;
  private readonly subnets: readonly Cidr[];

  constructor(policy: RoutingPolicy) {
    this.mode = policy.mode;
    this.subnets = policy.directSubnets.map((s) => parseCidr(s, false));
  }

  /** The path to a node with this underlay IP. */
  pathFor(underlayIP: string): PeerPath {
    if (this.mode !== 'auto') return this.mode;
    const ip = parseIPv4(underlayIP);
    return this.subnets.some((s) => cidrContains(s, ip)) ? 'direct' : 'vxlan';
  }
}
