/**
 * Planners: (hub info, this endpoint's facts, peers) -> the kernel state it should have.
 * planNodeOverlay is the spoke (agent on a node), planGatewayOverlay the hub (Linux device).
 * Pure; problems that make a plan impossible are thrown as errors naming the input at fault,
 * problems that only exclude one peer are returned as `skipped` so the rest still works.
 */
import { cidrContains, formatCidr, parseCidr, parseIPv4 } from '../../shared/ipv4.ts';
import { refusedNodes } from '../../shared/pod-cidrs.ts';
import { DEFAULT_NAMES, type InstanceNames } from '../../shared/keys.ts';
import { ALL_ZEROS_MAC, macFromOverlayIP } from '../../shared/mac.ts';
import type { HubInfo, Peer } from '../../shared/tables.ts';
import { VXLAN_OVERHEAD_IPV4, type DesiredOverlay, type FdbEntry, type NeighbourEntry, type RouteEntry, type VxlanSpec } from './state.ts';

export class PlanError extends Error {}

export interface EndpointFacts {
  /** This endpoint's underlay (VTEP) address. */
  readonly underlayIP: string;
  /** MTU of the underlay interface holding underlayIP. */
  readonly underlayMtu: number;
  /** The instance whose device this is (default: the default instance). */
  readonly names?: InstanceNames;
  /** The gateway's underlay interface and its subnets: where routes to directly routed nodes go. */
  readonly underlay?: { readonly device: string; readonly cidrs: readonly string[] };
}

function vxlanSpec(hub: HubInfo, facts: EndpointFacts, overlayIP: string): VxlanSpec {
  const mtu = hub.mtu ?? facts.underlayMtu - VXLAN_OVERHEAD_IPV4;
  return { name: (facts.names ?? DEFAULT_NAMES).vxlanDevice(hub.vni), vni: hub.vni, port: hub.port, local: facts.underlayIP, mtu, mac: macFromOverlayIP(overlayIP) };
}

function overlayAddress(hub: HubInfo, overlayIP: string, who: string): string {
  const net = parseCidr(hub.overlayNetwork);
  if (!cidrContains(net, parseIPv4(overlayIP))) throw new PlanError(`${who}: overlay IP ${overlayIP} is outside the overlay network ${hub.overlayNetwork}`);
  return `${overlayIP}/${net.prefix}`;
}

/**
 * The node side: one device, its address, and a flood entry per device VTEP. When the hub info
 * publishes the device MACs, also a static neighbour per device overlay IP and a unicast FDB
 * entry toward its VTEP; otherwise the node learns the device's MAC by ARP through the flood entry.
 */
export function planNodeOverlay(hub: HubInfo, facts: EndpointFacts, overlayIP: string): DesiredOverlay {
  const address = overlayAddress(hub, overlayIP, 'node');
  const fdb: FdbEntry[] = hub.deviceVTEPs.map((dst) => ({ mac: ALL_ZEROS_MAC, dst }));
  const neighbours: NeighbourEntry[] = [];
  hub.deviceMACs?.forEach((mac, i) => {
    const ip = hub.deviceOverlayIPs[i];
    if (ip !== undefined) neighbours.push({ ip, mac });
    const vtep = hub.deviceVTEPs[i];
    if (vtep !== undefined && hub.deviceVTEPs.length === hub.deviceOverlayIPs.length) fdb.push({ mac, dst: vtep });
  });
  return { vxlan: vxlanSpec(hub, facts, overlayIP), addresses: [address], fdb, neighbours, routes: [] };
}

export interface GatewayPlan {
  readonly desired: DesiredOverlay;
  /** Peers left out, each with the reason. */
  readonly skipped: readonly { node: string; reason: string }[];
}

/**
 * The hub side: per node an FDB entry, a static neighbour and a route to each pod CIDR via its
 * overlay IP; per directly routed node only a route to each pod CIDR via its underlay IP on the
 * underlay interface (which must share a subnet with the node, or the route could not be made).
 */
export function planGatewayOverlay(hub: HubInfo, facts: EndpointFacts, peers: readonly Peer[]): GatewayPlan {
  const index = hub.deviceVTEPs.indexOf(facts.underlayIP);
  if (index < 0) throw new PlanError(`gateway: this device's VTEP ${facts.underlayIP} is not among the hub's deviceVTEPs (${hub.deviceVTEPs.join(', ')})`);
  const ownIP = hub.deviceOverlayIPs[index] ?? hub.deviceOverlayIPs[0];
  if (ownIP === undefined) throw new PlanError('gateway: hub info has no device overlay IP');
  const address = overlayAddress(hub, ownIP, 'gateway');
  const net = parseCidr(hub.overlayNetwork);
  const skipped: { node: string; reason: string }[] = [];
  const fdb: FdbEntry[] = [];
  const neighbours: NeighbourEntry[] = [];
  const routes: RouteEntry[] = [];
  const overlayOwner = new Map<string, string>();
  const sorted = [...peers].sort((a, b) => a.node.localeCompare(b.node));
  // the coordinator's check (shared/pod-cidrs.ts), again here: a peer table edited by hand or by another tool cannot route the overlay away
  const refused = refusedNodes(sorted, { overlayNetwork: hub.overlayNetwork, deviceVTEPs: hub.deviceVTEPs });
  for (const p of sorted) {
    const bad = refused.get(p.node);
    if (bad !== undefined) {
      skipped.push({ node: p.node, reason: bad });
      continue;
    }
    if (!cidrContains(net, parseIPv4(p.overlayIP))) {
      skipped.push({ node: p.node, reason: `overlay IP ${p.overlayIP} is outside ${hub.overlayNetwork}` });
      continue;
    }
    const clash = overlayOwner.get(p.overlayIP);
    if (clash !== undefined || hub.deviceOverlayIPs.includes(p.overlayIP)) {
      skipped.push({ node: p.node, reason: `overlay IP ${p.overlayIP} is already used by ${clash ?? 'the device'}` });
      continue;
    }
    overlayOwner.set(p.overlayIP, p.node);
    if (p.path === 'direct') {
      const reason = directUnreachable(p.underlayIP, facts.underlay);
      if (reason !== undefined) skipped.push({ node: p.node, reason });
      else for (const cidr of p.podCIDRs) routes.push({ dst: formatCidr(parseCidr(cidr, false)), via: p.underlayIP, dev: facts.underlay?.device ?? '' });
      continue;
    }
    fdb.push({ mac: p.vtepMAC, dst: p.underlayIP });
    neighbours.push({ ip: p.overlayIP, mac: p.vtepMAC });
    for (const cidr of p.podCIDRs) routes.push({ dst: formatCidr(parseCidr(cidr, false)), via: p.overlayIP });
  }
  const directDevice = facts.underlay?.device;
  return { desired: { vxlan: vxlanSpec(hub, facts, ownIP), addresses: [address], fdb, neighbours, routes, ...(directDevice !== undefined ? { directDevice } : {}) }, skipped };
}

/** Why a directly routed node cannot be routed from here (not on a subnet of the underlay interface), or undefined. */
function directUnreachable(nodeIP: string, underlay: EndpointFacts['underlay']): string | undefined {
  if (!underlay) return 'routed directly (its peer entry says path "direct"), but this gateway does not know its underlay interface';
  const ip = parseIPv4(nodeIP);
  if (underlay.cidrs.some((c) => cidrContains(parseCidr(c, false), ip))) return undefined;
  return `routed directly (path "direct"), but its address ${nodeIP} is on none of this gateway's subnets on ${underlay.device} (${underlay.cidrs.join(', ') || 'none'}): a direct route needs the node on a shared subnet; route it through VXLAN (--routing auto with --direct-subnets covering only the shared subnets)`;
}
