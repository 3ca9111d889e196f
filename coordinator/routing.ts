/**
 * Which path the device takes to each node's pods, pure (--routing, --direct-subnets):
 *   vxlan   every node through the VXLAN overlay (route via the node's overlay IP)
 *   direct  every node by direct routing (route via the node's underlay IP, no tunnel): the
 *           device must share a subnet with every node
 *   auto    direct for a node whose underlay IP lies in one of the direct subnets (the subnets
 *           the device is attached to), VXLAN for the rest (nodes behind routers). The subnets
 *           are configured (--direct-subnets) or, on a device with an API, read from it: the
 *           subnet of each device VTEP, as its SNIP (Citrix) or self IP (F5) defines it. Until the
 *           device has answered, a node keeps the path its Node records (a coordinator restarted
 *           while the device is down flips nobody) and a node never routed before is tunneled.
 */
import { cidrContains, formatCidr, parseCidr, parseIPv4, type Cidr } from '../shared/ipv4.ts';
import type { PeerPath } from '../shared/tables.ts';

export const ROUTING_MODES = ['vxlan', 'direct', 'auto'] as const;
export type RoutingMode = (typeof ROUTING_MODES)[number];

export interface RoutingPolicy {
  readonly mode: RoutingMode;
  /** auto: the underlay subnets the device can reach without a router (CIDRs). */
  readonly directSubnets: readonly string[];
  /** auto without configured subnets: `directSubnets` are the ones last read from the device. */
  readonly fromDevice?: boolean;
  /** fromDevice, and the device has not answered yet: each node keeps the path its Node records. */
  readonly pending?: boolean;
}

export const VXLAN_ONLY: RoutingPolicy = { mode: 'vxlan', directSubnets: [] };

/** The policy as one comparable string (a plan built under another policy reuses nothing). */
export const policyKey = (p: RoutingPolicy): string => `${p.mode} ${p.pending === true ? 'pending' : p.directSubnets.join(',')}`;

/** The policy once the device's subnets are read (sorted, so the same set is the same policy). */
export const withDeviceSubnets = (p: RoutingPolicy, subnets: readonly string[]): RoutingPolicy => ({ mode: p.mode, directSubnets: [...new Set(subnets)].sort(), fromDevice: true });

/** Decides each node's path; parses the subnets once. */
export class PathChooser {
  private readonly mode: RoutingMode;
  private readonly subnets: readonly Cidr[];
  private readonly pending: boolean;

  constructor(policy: RoutingPolicy) {
    this.mode = policy.mode;
    this.subnets = policy.directSubnets.map((s) => parseCidr(s, false));
    this.pending = policy.pending === true;
  }

  /** The path to a node with this underlay IP; `recorded` is the path its Node records, if any. */
  pathFor(underlayIP: string, recorded?: PeerPath): PeerPath {
    if (this.mode !== 'auto') return this.mode;
    if (this.pending) return recorded ?? 'vxlan';
    const ip = parseIPv4(underlayIP);
    return this.subnets.some((s) => cidrContains(s, ip)) ? 'direct' : 'vxlan';
  }
}

/** An address the device has on one of its own subnets: a Citrix SNIP/NSIP, a BIG-IP self IP. */
export interface DeviceAddress {
  readonly ip: string;
  readonly prefix: number;
}

/**
 * The subnet each device VTEP address sits in, as the device's own address for it defines it
 * (--routing auto without --direct-subnets). Throws, naming the VTEP and what the device has,
 * when a VTEP address is none of the device's addresses: the operator has a misconfigured
 * device or must give --direct-subnets.
 */
export function vtepSubnets(vteps: readonly string[], addresses: readonly DeviceAddress[], what: string): string[] {
  return vteps.map((vtep) => {
    const own = addresses.find((a) => a.ip === vtep);
    if (!own) {
      const has = addresses.map((a) => `${a.ip}/${a.prefix}`).join(', ') || 'none';
      throw new Error(`cannot tell which subnet the device VTEP ${vtep} is on: the device has no ${what} ${vtep} (it has: ${has}); configure the VTEP address on the device, or give --direct-subnets`);
    }
    return formatCidr(parseCidr(`${own.ip}/${own.prefix}`, false));
  });
}
