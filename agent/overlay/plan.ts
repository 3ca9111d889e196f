/**
 * Planners: (hub info, this endpoint's facts, peers) -> the kernel state it should have.
 * planNodeOverlay is the spoke (agent on a node), planGatewayOverlay the hub (Linux device).
 * Pure; problems that make a plan impossible are thrown as errors naming the input at fault,
 * problems that only exclude one peer are returned as `skipped` so the rest still works.
 */
import { cidrContains, formatCidr, parseCidr, parseIPv4 } from '../../shared/ipv4.ts';
import { formatIp, formatIpCidr, ipCidrContains, parseIp, parseIpCidr } from '../../shared/ip.ts';
import { refusedNodes } from '../../shared/pod-cidrs.ts';
import { DEFAULT_NAMES, type InstanceNames } from '../../shared/keys.ts';
import { ALL_ZEROS_MAC, macFromOverlayIP } from '../../shared/mac.ts';
import type { HubInfo, Peer } from '../../shared/tables.ts';
import { vxlanOverhead, type DesiredOverlay, type FdbEntry, type NeighbourEntry, type RouteEntry, type VxlanSpec } from './state.ts';

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
  const mtu = hub.mtu ?? facts.underlayMtu - vxlanOverhead(facts.underlayIP);
  return { name: (facts.names ?? DEFAULT_NAMES).vxlanDevice(hub.vni), vni: hub.vni, port: hub.port, local: facts.underlayIP, mtu, mac: macFromOverlayIP(overlayIP) };
}

function overlayAddress(hub: HubInfo, overlayIP: string, who: string): string {
  const net = parseCidr(hub.overlayNetwork);
  if (!cidrContains(net, parseIPv4(overlayIP))) throw new PlanError(`${who}: overlay IP ${overlayIP} is outside the overlay network ${hub.overlayNetwork}`);
  return `${overlayIP}/${net.prefix}`;
}

/** The IPv6 overlay address with the IPv6 overlay network's prefix, as the kernel lists it (canonical text). */
function overlayAddressIPv6(hub: HubInfo, ip: string, who: string): string {
  const net = parseIpCidr(hub.overlayNetworkIPv6 ?? '');
  let a;
  try {
    a = parseIp(ip);
  } catch (err) {
    throw new PlanError(`${who}: IPv6 overlay IP ${ip} is not an address: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!ipCidrContains(net, a)) throw new PlanError(`${who}: IPv6 overlay IP ${ip} is outside the IPv6 overlay network ${hub.overlayNetworkIPv6 ?? ''}`);
  return formatIpCidr({ family: 6, network: a.value, prefix: net.prefix });
}

/**
 * The node side: one device, its address, and a flood entry per device VTEP. When the hub info
 * publishes the device MACs, also a static neighbour per device overlay IP and a unicast FDB
 * entry toward its VTEP; otherwise the node learns the device's MAC by ARP through the flood entry.
 * In a dual-stack overlay (`overlayIPv6` given) also the IPv6 overlay address and, with published
 * MACs, a static neighbour per device IPv6 overlay address (the same MAC; otherwise NDP learns it).
 */
export function planNodeOverlay(hub: HubInfo, facts: EndpointFacts, overlayIP: string, overlayIPv6?: string): DesiredOverlay {
  const addresses = [overlayAddress(hub, overlayIP, 'node'), ...(overlayIPv6 !== undefined ? [overlayAddressIPv6(hub, overlayIPv6, 'node')] : [])];
  const fdb: FdbEntry[] = hub.deviceVTEPs.map((dst) => ({ mac: ALL_ZEROS_MAC, dst }));
  const neighbours: NeighbourEntry[] = [];
  hub.deviceMACs?.forEach((mac, i) => {
    const ip = hub.deviceOverlayIPs[i];
    if (ip !== undefined) neighbours.push({ ip, mac });
    const ip6 = overlayIPv6 !== undefined ? hub.deviceOverlayIPv6s?.[i] : undefined;
    if (ip6 !== undefined) neighbours.push({ ip: ip6, mac });
    const vtep = hub.deviceVTEPs[i];
    if (vtep !== undefined && hub.deviceVTEPs.length === hub.deviceOverlayIPs.length) fdb.push({ mac, dst: vtep });
  });
  return { vxlan: vxlanSpec(hub, facts, overlayIP), addresses, fdb, neighbours, routes: [] };
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
  const addresses = [overlayAddress(hub, ownIP, 'gateway')];
  const ownIPv6 = hub.overlayNetworkIPv6 !== undefined ? (hub.deviceOverlayIPv6s?.[index] ?? hub.deviceOverlayIPv6s?.[0]) : undefined;
  if (ownIPv6 !== undefined) addresses.push(overlayAddressIPv6(hub, ownIPv6, 'gateway'));
  const net = parseCidr(hub.overlayNetwork);
  const out: GatewayEntries = { skipped: [], fdb: [], neighbours: [], routes: [] };
  const overlayOwner = new Map<string, string>();
  const sorted = [...peers].sort((a, b) => a.node.localeCompare(b.node));
  // the coordinator's check (shared/pod-cidrs.ts), again here: a peer table edited by hand or by another tool cannot route the overlay away
  const refused = refusedNodes(sorted.map((p) => ({ node: p.node, underlayIP: p.underlayIP, podCIDRs: [...p.podCIDRs, ...(p.podCIDRsIPv6 ?? [])] })), { overlayNetwork: hub.overlayNetwork, overlayNetworkIPv6: hub.overlayNetworkIPv6, deviceVTEPs: hub.deviceVTEPs });
  for (const p of sorted) {
    const bad = refused.get(p.node) ?? overlayIPProblem(p, net, hub, overlayOwner);
    if (bad !== undefined) {
      out.skipped.push({ node: p.node, reason: bad });
      continue;
    }
    overlayOwner.set(p.overlayIP, p.node);
    const v6 = ownIPv6 !== undefined ? ipv6Of(hub, p) : undefined;
    if (v6 instanceof Error) out.skipped.push({ node: p.node, reason: v6.message });
    else addPeer(out, p, v6, facts.underlay);
  }
  const { skipped, fdb, neighbours, routes } = out;
  const directDevice = facts.underlay?.device;
  return { desired: { vxlan: vxlanSpec(hub, facts, ownIP), addresses, fdb, neighbours, routes, ...(directDevice !== undefined ? { directDevice } : {}) }, skipped };
}

interface GatewayEntries {
  readonly skipped: { node: string; reason: string }[];
  readonly fdb: FdbEntry[];
  readonly neighbours: NeighbourEntry[];
  readonly routes: RouteEntry[];
}

/** Why a peer's overlay IP cannot be used (outside the network, or taken), or undefined. */
function overlayIPProblem(p: Peer, net: ReturnType<typeof parseCidr>, hub: HubInfo, owners: ReadonlyMap<string, string>): string | undefined {
  if (!cidrContains(net, parseIPv4(p.overlayIP))) return `overlay IP ${p.overlayIP} is outside ${hub.overlayNetwork}`;
  const clash = owners.get(p.overlayIP);
  if (clash !== undefined || hub.deviceOverlayIPs.includes(p.overlayIP)) return `overlay IP ${p.overlayIP} is already used by ${clash ?? 'the device'}`;
  return undefined;
}

/** One peer's entries: FDB, neighbours and routes through the tunnel, or its direct routes. */
function addPeer(out: GatewayEntries, p: Peer, v6: { overlayIP: string; podCIDRs: string[] } | undefined, underlay: EndpointFacts['underlay']): void {
  if (p.path === 'direct') {
    const reason = directUnreachable(p.underlayIP, underlay);
    if (reason !== undefined) out.skipped.push({ node: p.node, reason });
    else for (const cidr of p.podCIDRs) out.routes.push({ dst: formatCidr(parseCidr(cidr, false)), via: p.underlayIP, dev: underlay?.device ?? '' });
    // a direct route's next hop is the node's IPv4 underlay address, which carries IPv4 only
    if (v6 !== undefined && v6.podCIDRs.length > 0) out.skipped.push({ node: p.node, reason: `its IPv6 pod CIDRs (${v6.podCIDRs.join(', ')}) are not routed: the node is routed directly, via its IPv4 underlay address, which carries IPv4 only; route dual-stack nodes through VXLAN` });
    return;
  }
  out.fdb.push({ mac: p.vtepMAC, dst: p.underlayIP });
  out.neighbours.push({ ip: p.overlayIP, mac: p.vtepMAC });
  for (const cidr of p.podCIDRs) out.routes.push({ dst: formatCidr(parseCidr(cidr, false)), via: p.overlayIP });
  if (v6 !== undefined) {
    out.neighbours.push({ ip: v6.overlayIP, mac: p.vtepMAC });
    for (const cidr of v6.podCIDRs) out.routes.push({ dst: cidr, via: v6.overlayIP });
  }
}

/**
 * A peer's IPv6 overlay address and pod CIDRs in canonical text (as the kernel lists them), in a
 * dual-stack overlay; an Error when its entry lacks them or its address is outside the network.
 */
function ipv6Of(hub: HubInfo, p: Peer): { overlayIP: string; podCIDRs: string[] } | Error {
  if (p.overlayIPv6 === undefined) return new Error('its peer entry has no overlayIPv6 (the overlay is dual-stack: written by an older coordinator, or by hand?)');
  const a = parseIp(p.overlayIPv6);
  if (!ipCidrContains(parseIpCidr(hub.overlayNetworkIPv6 ?? ''), a)) return new Error(`IPv6 overlay IP ${p.overlayIPv6} is outside ${hub.overlayNetworkIPv6 ?? ''}`);
  return { overlayIP: formatIp(a), podCIDRs: (p.podCIDRsIPv6 ?? []).map((c) => formatIpCidr(parseIpCidr(c, false))) };
}

/** Why a directly routed node cannot be routed from here (not on a subnet of the underlay interface), or undefined. */
function directUnreachable(nodeIP: string, underlay: EndpointFacts['underlay']): string | undefined {
  if (!underlay) return 'routed directly (its peer entry says path "direct"), but this gateway does not know its underlay interface';
  const ip = parseIPv4(nodeIP);
  if (underlay.cidrs.some((c) => cidrContains(parseCidr(c, false), ip))) return undefined;
  return `routed directly (path "direct"), but its address ${nodeIP} is on none of this gateway's subnets on ${underlay.device} (${underlay.cidrs.join(', ') || 'none'}): a direct route needs the node on a shared subnet; route it through VXLAN (--routing auto with --direct-subnets covering only the shared subnets)`;
}
