/**
 * The Citrix ADC side of the overlay as NITRO objects, pure: what the plan calls for (desired
 * entries), what GET answers mean in the same terms (observed entries: only objects this cluster
 * created), the request bodies and URLs of each object, and the ADC's HA role. The driver
 * (citrix-driver.ts) only moves these over HTTPS.
 *
 *   vxlan                id = VNI, port                                        one per cluster
 *   vxlan_srcip_binding  the VTEP SNIP the operator configured                 one per cluster
 *   nsip (SNIP)          the device overlay IP                                  one per cluster
 *   arp                  node overlay IP -> VTEP MAC, on the vxlan, vtep        per node
 *   bridgetable          00:00:00:00:00:00 on the vxlan, vtep                   per node
 *   route | nspbr        pod CIDR via the node's overlay IP                     per pod CIDR
 *                        (a node routed directly, --routing direct|auto: via its underlay IP,
 *                        and no arp or bridgetable entry)
 *   dual-stack overlay (--overlay-network-ipv6), beside the above:
 *   nsip6 (SNIP)         the device overlay IPv6 address/prefix                 one per cluster
 *   nd6                  node overlay IPv6 -> VTEP MAC, on the vxlan, vtep      per node (not with
 *                        --citrix-neighbours bridgetable: the ADC then resolves over the flood entries)
 *   route6               IPv6 pod CIDR via the node's overlay IPv6 address       per IPv6 pod CIDR
 *                        (a directly routed node's IPv6 pods are not routed: its next hop is IPv4)
 *   netprofile           source IP = the overlay SNIP                           optional
 *   policystringmap_pattern_binding  in map chorus_kube_router_owners: `vxlan-<vni>` and
 *                        `network-<overlay CIDR>` -> this cluster's identity    one pair per cluster
 *
 * Ownership. None of the objects above has a name or comment that could carry a marker (NITRO
 * reference: vxlan, vxlan_srcip_binding, nsip, arp, bridgetable and route have no comment
 * field), so this cluster claims its VNI and its overlay network in one policy string map shared
 * by every cluster on the ADC, and everything on that vxlan or via that network is ours only when
 * both claims are. A route of a directly routed node points at an underlay address, outside the
 * overlay network, so each one is claimed in the same map under `route-<network>/<netmask>/<gateway>`
 * (added before its route, deleted after it), and only a route with our claim is ours.
 * A VNI or an overlapping overlay network claimed by another cluster is a
 * conflict (ownershipConflict): nothing is observed as ours, so nothing is changed or deleted.
 *
 * What the ADC makes itself is never ours, even where it looks like ours: DIRECT (connected)
 * routes for each SNIP's subnet (one lies in the overlay network), DYNAMIC ARP entries and
 * bridge table entries learned on the vxlan, the NSIP. Observed entries are STATIC and of the
 * shapes this driver creates (NITRO reference; docs/citrix.md lists what is unconfirmed).
 */
import { formatIPv4, isIPv4, maskOf, prefixOfNetmask } from '../../../shared/ipv4.ts';
import { canonicalIpText, formatIpCidr, ipCidrContains, ipCidrsOverlap, parseIp, parseIpCidr, type IpCidr } from '../../../shared/ip.ts';
import type { DeviceAddress } from '../../routing.ts';
import { ALL_ZEROS_MAC } from '../../../shared/mac.ts';
import type { CoordinatorPlan } from '../../plan.ts';
import { PeerEntries, type DeviceEntry } from '../driver.ts';
import type { Peer } from '../../../shared/tables.ts';

/** The claim key of a direct route: `route-` and the route entry's key. */
const routeClaimKey = (routeKey: string): string => `route-${routeKey}`;
const ROUTE_CLAIM_PREFIX = 'route-';

export interface CitrixLayout {
  readonly vni: number;
  readonly overlayNetwork: string;
  /** The IPv6 overlay network of a dual-stack overlay (claimed and observed beside the IPv4 one). */
  readonly overlayNetworkIPv6?: string | undefined;
  /** How nodes' MACs reach the ADC: static arp entries, bridgetable flood entries, or both. */
  readonly neighbours: 'arp' | 'bridgetable' | 'both';
  /** route: one route per pod CIDR; pbr: one policy-based route per pod CIDR. */
  readonly routing: 'route' | 'pbr';
  readonly netprofile?: string | undefined;
  /** This cluster's identity (--cluster-id, default the kube-system namespace's UID). */
  readonly clusterId: string;
}

export type NitroObject = Record<string, unknown>;

/** Resources in the order they are added (deleted in the reverse order: what refers to another goes first). */
export const ADD_ORDER = ['policystringmap_pattern_binding', 'vxlan', 'nsip', 'nsip6', 'vxlan_srcip_binding', 'arp', 'nd6', 'bridgetable', 'route', 'route6', 'nspbr', 'netprofile'] as const;

/**
 * NITRO has no update for these: a changed entry is deleted and added again (`arp`, `nd6`: the
 * NITRO reference lists no UPDATE for either; a binding and a route are all key).
 */
export const REPLACED_NOT_UPDATED: ReadonlySet<string> = new Set(['arp', 'nd6', 'vxlan_srcip_binding', 'route', 'route6', 'bridgetable', 'policystringmap_pattern_binding']);

/** The policy string map every cluster on the ADC records its claims in (a name of letters, digits and _ only). */
export const OWNERS_MAP = 'chorus_kube_router_owners';
/** The resource (and entry kind) of one claim: a key-value pair bound to OWNERS_MAP. */
export const CLAIM = 'policystringmap_pattern_binding';
/** The claims of a cluster: its VNI and each overlay network (`network-<CIDR>`, canonical text). */
const claimKeys = (l: CitrixLayout): { vni: string; networks: string[] } => ({
  vni: `vxlan-${l.vni}`,
  networks: [l.overlayNetwork, ...(l.overlayNetworkIPv6 === undefined ? [] : [l.overlayNetworkIPv6])].map((n) => `network-${formatIpCidr(parseIpCidr(n))}`),
});

/** NITRO error codes the driver acts on (shared/reference/citrix-nitro.md). */
export const NITRO = {
  ALREADY_EXISTS: 273,
  NO_SUCH_RESOURCE: 258,
  SESSION_EXPIRED: 444,
  NOT_LOGGED_IN: 1027,
  SECONDARY_NODE: 1028,
  BULK_FAILED: 1243,
} as const;

const netmaskOf = (prefix: number): string => formatIPv4(maskOf(prefix));
/** Text of a field NITRO may answer as a string or a number. */
export const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '');
/** Path ids are URL-encoded twice, as the official NITRO clients do (`1/1` -> `1%252F1`). */
const enc = (id: string): string => encodeURIComponent(encodeURIComponent(id));
const pbrName = (l: CitrixLayout, network: string, prefix: number): string => `chorus-${l.vni}-${network.replace(/\./g, '-')}-${prefix}`;

export function desiredEntries(plan: CoordinatorPlan, l: CitrixLayout, cache: PeerEntries = new PeerEntries()): DeviceEntry[] {
  const vni = String(plan.hub.vni);
  const vtep = plan.hub.deviceVTEPs[0] ?? '';
  const snip = plan.hub.deviceOverlayIPs[0] ?? '';
  const claims = claimKeys(l);
  const snip6 = ipv6Snip(plan, l);
  const entries: DeviceEntry[] = [
    { kind: CLAIM, key: claims.vni, fields: { cluster: l.clusterId } },
    ...claims.networks.map((key): DeviceEntry => ({ kind: CLAIM, key, fields: { cluster: l.clusterId } })),
    { kind: 'vxlan', key: vni, fields: { port: String(plan.hub.port) } },
    { kind: 'nsip', key: snip, fields: { netmask: netmaskOf(parseIpCidr(l.overlayNetwork).prefix) } },
    ...(snip6 === undefined ? [] : [{ kind: 'nsip6', key: snip6, fields: {} }]),
    { kind: 'vxlan_srcip_binding', key: `${vni}/${vtep}`, fields: {} },
  ];
  for (const p of plan.peers) entries.push(...desiredPeerEntries(plan, l, cache, p));
  if (l.netprofile) entries.push({ kind: 'netprofile', key: l.netprofile, fields: { srcip: snip } });
  return entries;
}

/** One peer's entries under the plan, as desiredEntries holds them (the same objects, from the cache). */
export function desiredPeerEntries(plan: CoordinatorPlan, l: CitrixLayout, cache: PeerEntries, peer: Peer): readonly DeviceEntry[] {
  const vni = String(plan.hub.vni);
  const snip = plan.hub.deviceOverlayIPs[0] ?? '';
  return cache.of(peer, `${vni} ${snip} ${ipv6Snip(plan, l) ?? ''}`, (p) => peerEntries(p, l, vni, snip));
}

/** The device's IPv6 SNIP as `address/prefix` (nsip6 takes both in `ipv6address`), when the overlay is dual-stack. */
function ipv6Snip(plan: CoordinatorPlan, l: CitrixLayout): string | undefined {
  const ip = plan.hub.deviceOverlayIPv6s?.[0];
  if (l.overlayNetworkIPv6 === undefined || ip === undefined) return undefined;
  return `${ip}/${parseIpCidr(l.overlayNetworkIPv6).prefix}`;
}

/**
 * One node's entries: its neighbour (arp or bridgetable) and a route (or PBR) per pod CIDR via its
 * overlay IP; for a directly routed node, a route (or PBR) per pod CIDR via its underlay IP, each
 * route with its claim, and no neighbour entry (the ADC ARPs for the node on the shared subnet).
 * In a dual-stack overlay a tunnelled node adds its nd6 entry and a route6 per IPv6 pod CIDR.
 */
function peerEntries(p: Peer, l: CitrixLayout, vni: string, snip: string): DeviceEntry[] {
  const entries: DeviceEntry[] = [];
  const direct = p.path === 'direct';
  if (!direct && l.neighbours !== 'bridgetable') entries.push({ kind: 'arp', key: p.overlayIP, fields: { mac: p.vtepMAC.toLowerCase(), vxlan: vni, vtep: p.underlayIP }, node: p.node });
  if (!direct && l.neighbours !== 'arp') entries.push({ kind: 'bridgetable', key: `${ALL_ZEROS_MAC}/${vni}/${p.underlayIP}`, fields: {}, node: p.node });
  const nextHop = direct ? p.underlayIP : p.overlayIP;
  for (const c of p.podCIDRs) {
    const cidr = parseIpCidr(c, false);
    const network = formatIPv4(Number(cidr.network));
    if (l.routing === 'pbr') {
      const last = formatIPv4(Number(cidr.network) + 2 ** (32 - cidr.prefix) - 1);
      entries.push({ kind: 'nspbr', key: pbrName(l, network, cidr.prefix), fields: { srcipval: snip, destipval: `${network}-${last}`, nexthopval: nextHop }, node: p.node });
      continue;
    }
    const key = `${network}/${netmaskOf(cidr.prefix)}/${nextHop}`;
    if (direct) entries.push({ kind: CLAIM, key: routeClaimKey(key), fields: { cluster: l.clusterId }, node: p.node });
    entries.push({ kind: 'route', key, fields: {}, node: p.node });
  }
  if (!direct && l.overlayNetworkIPv6 !== undefined && p.overlayIPv6 !== undefined) entries.push(...ipv6PeerEntries(p, p.overlayIPv6, l, vni));
  return entries;
}

/** A tunnelled node's IPv6 entries: its nd6 entry (like its arp entry) and a route6 per IPv6 pod CIDR via its overlay IPv6 address. */
function ipv6PeerEntries(p: Peer, overlayIPv6: string, l: CitrixLayout, vni: string): DeviceEntry[] {
  const entries: DeviceEntry[] = [];
  if (l.neighbours !== 'bridgetable') entries.push({ kind: 'nd6', key: overlayIPv6, fields: { mac: p.vtepMAC.toLowerCase(), vxlan: vni, vtep: p.underlayIP }, node: p.node });
  for (const c of p.podCIDRsIPv6 ?? []) entries.push({ kind: 'route6', key: `${formatIpCidr(parseIpCidr(c, false))}/${overlayIPv6}`, fields: {}, node: p.node });
  return entries;
}

/** The GET answers observe() reads, one list per resource. */
export interface ObservedLists {
  readonly vxlans: readonly NitroObject[];
  readonly bindings: readonly NitroObject[];
  readonly nsips: readonly NitroObject[];
  readonly arps: readonly NitroObject[];
  readonly bridges: readonly NitroObject[];
  readonly routes: readonly NitroObject[];
  readonly profiles: readonly NitroObject[];
  readonly pbrs: readonly NitroObject[];
  /** nsip6, nd6 and route6 (dual-stack overlay only; empty otherwise). */
  readonly nsip6s?: readonly NitroObject[];
  readonly nd6s?: readonly NitroObject[];
  readonly route6s?: readonly NitroObject[];
  /** The claims of every cluster (bindings of OWNERS_MAP). */
  readonly claims: readonly NitroObject[];
}

/** The documented GET forms for each list (literal filters: a NITRO filter value is compared as text unless written /regex/). */
export function observePaths(l: CitrixLayout): Record<keyof ObservedLists, string | undefined> {
  const vni = String(l.vni);
  return {
    vxlans: `vxlan/${enc(vni)}`,
    bindings: `vxlan_srcip_binding/${enc(vni)}`,
    nsips: 'nsip',
    arps: `arp?filter=vxlan:${vni}`,
    bridges: `bridgetable?filter=vxlan:${vni}`,
    routes: 'route',
    profiles: l.netprofile ? `netprofile/${enc(l.netprofile)}` : undefined,
    claims: `${CLAIM}/${enc(OWNERS_MAP)}`,
    pbrs: l.routing === 'pbr' ? `nspbr?filter=name:${encodeURIComponent(`/^chorus-${vni}-/`)}` : undefined,
    // nd6 has GET (ALL) only (NITRO reference): the whole table, filtered to our vxlan
    nsip6s: l.overlayNetworkIPv6 === undefined ? undefined : 'nsip6',
    nd6s: l.overlayNetworkIPv6 === undefined ? undefined : `nd6?filter=vxlan:${vni}`,
    route6s: l.overlayNetworkIPv6 === undefined ? undefined : 'route6',
  };
}

const truthy = (v: unknown): boolean => v === true || str(v).toLowerCase() === 'true';
/** Made by the ADC itself (connected, learned, dynamic) rather than configured: never ours. */
const systemRoute = (r: NitroObject): boolean => truthy(r.direct) || truthy(r.dynamic) || ['DIRECT', 'CONNECTED', 'DYNAMIC', 'FIB6', 'ND-RA-ROUTE'].includes(str(r.routetype).toUpperCase());
const staticEntry = (o: NitroObject): boolean => o.type === undefined || str(o.type).toUpperCase() === 'STATIC';

function inNetwork(network: IpCidr, ip: string): boolean {
  try {
    return ipCidrContains(network, parseIp(ip));
  } catch {
    return false;
  }
}

/** Address (or CIDR) text in canonical form, however the ADC spells it. */
const canonical = canonicalIpText;

/**
 * Why this cluster may not touch the overlay objects it would otherwise own: another cluster has
 * claimed its VNI, or an overlay network that overlaps its own. undefined: no conflict.
 */
export function ownershipConflict(claims: readonly NitroObject[], l: CitrixLayout): string | undefined {
  const ours = claimKeys(l);
  const networks = [l.overlayNetwork, ...(l.overlayNetworkIPv6 === undefined ? [] : [l.overlayNetworkIPv6])].map((n) => ({ text: n, cidr: parseIpCidr(n) }));
  for (const c of claims) {
    const key = str(c.key);
    const owner = str(c.value);
    if (str(c.name).toLowerCase() !== OWNERS_MAP || owner === l.clusterId) continue;
    const fix = `nothing of it is changed. Give this cluster its own --vni and --overlay-network, or, if that cluster is gone for good, remove its claim on the ADC (unbind policy stringmap ${OWNERS_MAP} ${key})`;
    if (key.toLowerCase() === ours.vni) return `VXLAN ${l.vni} on the ADC belongs to cluster "${owner}" (claim ${key} in policy stringmap ${OWNERS_MAP}); this cluster is "${l.clusterId}": ${fix}`;
    const other = /^network-(.+)$/i.exec(key)?.[1];
    let theirs: IpCidr | undefined;
    try {
      theirs = other === undefined ? undefined : parseIpCidr(other, false);
    } catch {
      theirs = undefined;
    }
    const network = theirs && networks.find((n) => ipCidrsOverlap(theirs, n.cidr));
    if (network) return `overlay network ${network.text} overlaps ${other ?? ''}, which cluster "${owner}" uses on this ADC (claim ${key} in policy stringmap ${OWNERS_MAP}); this cluster is "${l.clusterId}": ${fix}`;
  }
  return undefined;
}

export function observedEntries(lists: ObservedLists, l: CitrixLayout): DeviceEntry[] {
  const vni = String(l.vni);
  const network = parseIpCidr(l.overlayNetwork);
  const claims = claimKeys(l);
  const ours = lists.claims.filter((c) => str(c.name).toLowerCase() === OWNERS_MAP && str(c.value) === l.clusterId);
  const claimedRoutes = new Set(ours.map((c) => str(c.key)).filter((k) => k.startsWith(ROUTE_CLAIM_PREFIX)).map((k) => k.slice(ROUTE_CLAIM_PREFIX.length)));
  const routeKey = (r: NitroObject): string => `${str(r.network)}/${str(r.netmask)}/${str(r.gateway)}`;
  return [
    ...ours.filter((c) => [claims.vni, ...claims.networks].includes(str(c.key).toLowerCase()))
      .map((c): DeviceEntry => ({ kind: CLAIM, key: str(c.key).toLowerCase(), fields: { cluster: str(c.value) } })),
    // route claims keep their case: the key holds addresses only
    ...ours.filter((c) => str(c.key).startsWith(ROUTE_CLAIM_PREFIX)).map((c): DeviceEntry => ({ kind: CLAIM, key: str(c.key), fields: { cluster: str(c.value) } })),
    ...lists.vxlans.filter((v) => str(v.id) === vni).map((v): DeviceEntry => ({ kind: 'vxlan', key: vni, fields: { port: str(v.port) || '4789' } })),
    ...lists.bindings.filter((b) => str(b.id) === vni).map((b): DeviceEntry => ({ kind: 'vxlan_srcip_binding', key: `${vni}/${str(b.srcip)}`, fields: {} })),
    ...lists.nsips.filter((n) => inNetwork(network, str(n.ipaddress)) && (n.type === undefined || str(n.type) === 'SNIP'))
      .map((n): DeviceEntry => ({ kind: 'nsip', key: str(n.ipaddress), fields: { netmask: str(n.netmask) } })),
    ...lists.arps.filter((a) => str(a.vxlan) === vni && staticEntry(a))
      .map((a): DeviceEntry => ({ kind: 'arp', key: str(a.ipaddress), fields: { mac: str(a.mac).toLowerCase(), vxlan: vni, vtep: str(a.vtep) } })),
    ...lists.bridges.filter((b) => str(b.vxlan) === vni && str(b.mac).toLowerCase() === ALL_ZEROS_MAC && staticEntry(b))
      .map((b): DeviceEntry => ({ kind: 'bridgetable', key: `${ALL_ZEROS_MAC}/${vni}/${str(b.vtep)}`, fields: {} })),
    ...lists.routes.filter((r) => !systemRoute(r) && (inNetwork(network, str(r.gateway)) || claimedRoutes.has(routeKey(r))))
      .map((r): DeviceEntry => ({ kind: 'route', key: routeKey(r), fields: {} })),
    ...lists.profiles.map((p): DeviceEntry => ({ kind: 'netprofile', key: str(p.name), fields: { srcip: str(p.srcip) } })),
    ...lists.pbrs.filter((p) => str(p.name).startsWith(`chorus-${vni}-`))
      .map((p): DeviceEntry => ({ kind: 'nspbr', key: str(p.name), fields: { srcipval: str(p.srcipval), destipval: str(p.destipval), nexthopval: str(p.nexthopval) } })),
    ...observedIPv6Entries(lists, l),
  ];
}

/** GET nsip6 answers the type as `iptype`, a list (the official Terraform provider reads `iptype[0]`); `type` is read too. */
const isSnip6 = (n: NitroObject): boolean => {
  const types = Array.isArray(n.iptype) ? n.iptype.map(str) : n.type !== undefined ? [str(n.type)] : ['SNIP'];
  return types.length === 1 && types[0]?.toUpperCase() === 'SNIP';
};

/**
 * The dual-stack overlay's objects on the ADC: SNIP6s in the IPv6 overlay network (not the ADC's
 * link-local NSIP6), nd6 entries on our vxlan inside it, route6s via an address inside it. Their
 * addresses compared in canonical text, however the ADC spells them.
 */
function observedIPv6Entries(lists: ObservedLists, l: CitrixLayout): DeviceEntry[] {
  if (l.overlayNetworkIPv6 === undefined) return [];
  const network = parseIpCidr(l.overlayNetworkIPv6);
  const vni = String(l.vni);
  const addressOf = (ipv6address: string): string => ipv6address.split('/')[0] ?? '';
  // address/prefix of a SNIP6 (not its network): the address canonical, the prefix as given
  const snipKey = (ipv6address: string): string => [canonical(addressOf(ipv6address)), ...ipv6address.split('/').slice(1)].join('/');
  return [
    ...(lists.nsip6s ?? []).filter((n) => inNetwork(network, addressOf(str(n.ipv6address))) && isSnip6(n))
      .map((n): DeviceEntry => ({ kind: 'nsip6', key: snipKey(str(n.ipv6address)), fields: {} })),
    ...(lists.nd6s ?? []).filter((n) => str(n.vxlan) === vni && inNetwork(network, str(n.neighbor)))
      .map((n): DeviceEntry => ({ kind: 'nd6', key: canonical(str(n.neighbor)), fields: { mac: str(n.mac).toLowerCase(), vxlan: vni, vtep: canonical(str(n.vtep)) } })),
    ...(lists.route6s ?? []).filter((r) => !systemRoute(r) && inNetwork(network, str(r.gateway)))
      .map((r): DeviceEntry => ({ kind: 'route6', key: `${canonical(str(r.network))}/${canonical(str(r.gateway))}`, fields: {} })),
  ];
}

/** The claim's body: this cluster's identity bound to the key, with a comment for whoever reads `show policy stringmap`. */
function claimBody(e: DeviceEntry): NitroObject {
  const cluster = e.fields.cluster ?? '';
  const what = e.key.startsWith('vxlan-') ? 'this VNI and the objects on it' : e.key.startsWith(ROUTE_CLAIM_PREFIX) ? 'this route (a directly routed node\'s pod CIDR)' : 'this overlay network and the objects on it';
  return { name: OWNERS_MAP, key: e.key, value: cluster, comment: `chorus-kube-router: cluster ${cluster} owns ${what}` };
}

/** The NITRO object an entry stands for (add and update bodies; numbers where NITRO takes numbers). */
export function bodyOf(e: DeviceEntry): NitroObject {
  const [a = '', b = '', c = ''] = e.key.split('/');
  const f = (k: string): string => e.fields[k] ?? '';
  switch (e.kind) {
    case 'vxlan': return { id: Number(a), port: Number(f('port')) };
    case 'nsip': return { ipaddress: a, netmask: f('netmask'), type: 'SNIP' };
    case 'nsip6': return { ipv6address: e.key, type: 'SNIP' };
    case 'nd6': return { neighbor: a, mac: f('mac'), vxlan: Number(f('vxlan')), vtep: f('vtep') };
    case 'route6': return { network: `${a}/${b}`, gateway: c };
    case 'vxlan_srcip_binding': return { id: Number(a), srcip: b };
    case 'arp': return { ipaddress: a, mac: f('mac'), vxlan: Number(f('vxlan')), vtep: f('vtep') };
    case 'bridgetable': return { mac: a, vxlan: Number(b), vtep: c };
    case 'route': return { network: a, netmask: b, gateway: c };
    case 'netprofile': return { name: a, srcip: f('srcip') };
    case CLAIM: return claimBody(e);
    case 'nspbr': return { name: e.key, action: 'ALLOW', srcip: true, srcipop: '=', srcipval: f('srcipval'), destip: true, destipop: '=', destipval: f('destipval'), nexthop: true, nexthopval: f('nexthopval') };
    default: throw new Error(`no NITRO object for a ${e.kind} entry`);
  }
}

/** The documented DELETE URL (under /nitro/v1/config/) of an entry's object. */
export function deletePath(e: DeviceEntry): string {
  const o = bodyOf(e);
  switch (e.kind) {
    case 'vxlan': return `vxlan/${enc(str(o.id))}`;
    case 'nsip': return `nsip/${enc(str(o.ipaddress))}`;
    case 'vxlan_srcip_binding': return `vxlan_srcip_binding/${enc(str(o.id))}?args=srcip:${encodeURIComponent(str(o.srcip))}`;
    case 'arp': return `arp/${enc(str(o.ipaddress))}`;
    case 'bridgetable': return `bridgetable?args=mac:${encodeURIComponent(str(o.mac))},vxlan:${str(o.vxlan)},vtep:${encodeURIComponent(str(o.vtep))}`;
    case 'route': return `route?args=network:${str(o.network)},netmask:${str(o.netmask)},gateway:${str(o.gateway)}`;
    // the forms the official Terraform provider deletes these with; IPv6 text in an args value URL-encoded (":" and "/")
    case 'nsip6': return `nsip6?args=ipv6address:${encodeURIComponent(str(o.ipv6address))}`;
    case 'nd6': return `nd6/${enc(str(o.neighbor))}?args=vxlan:${str(o.vxlan)}`;
    case 'route6': return `route6?args=network:${encodeURIComponent(str(o.network))},gateway:${encodeURIComponent(str(o.gateway))}`;
    case CLAIM: return `${CLAIM}/${enc(OWNERS_MAP)}?args=key:${encodeURIComponent(e.key)}`;
    default: return `${e.kind}/${enc(e.key)}`;
  }
}

/**
 * Whether `GET hanode` says this ADC is the secondary of an HA pair. The local node is id 0, its
 * peer 1..64; a secondary lists its peer as Primary, so only id 0's state counts.
 */
export function isSecondary(hanodes: readonly NitroObject[]): boolean {
  const local = hanodes.find((n) => str(n.id) === '0');
  return str(local?.state).toLowerCase() === 'secondary';
}

/** Types of `nsip` that are the ADC's own addresses on a subnet (a VIP is a service address). */
const SUBNET_ADDRESS_TYPES: ReadonlySet<string> = new Set(['SNIP', 'NSIP', 'MIP']);

/** The ADC's own subnet addresses from `GET nsip`: SNIPs, the NSIP (and legacy MIPs), with their netmask's prefix. */
export function deviceAddresses(nsips: readonly NitroObject[]): DeviceAddress[] {
  return nsips.flatMap((n) => {
    const ip = str(n.ipaddress);
    const mask = str(n.netmask);
    if (!SUBNET_ADDRESS_TYPES.has(str(n.type) || 'SNIP') || !isIPv4(ip) || !isIPv4(mask)) return [];
    return [{ ip, prefix: prefixOfNetmask(mask) }];
  });
}

/** The destination of a route or route6 entry: its kind and the key without the gateway (`network/netmask/gateway`, `network/prefix/gateway`). */
const routeDestination = (e: DeviceEntry): string => `${e.kind} ${e.key.split('/').slice(0, 2).join('/')}`;
const ROUTE_KINDS: ReadonlySet<string> = new Set(['route', 'route6']);

/**
 * Make-before-break for a route whose next hop changes (a node switching between the tunnel and
 * direct routing, or renumbered): NITRO keys a route by network, netmask and gateway and has no
 * update, so the change is a delete and an add. When a pass moves a route, the deletes of routes,
 * their claims and the node entries (arp, bridgetable) are made after the adds (`later`, in
 * reverse dependency order: routes, then bridgetable and arp, then the route claims), so the ADC
 * keeps a working path to those pods until the new one is in; the rest keeps the usual order
 * (`now`).
 */
export function splitMakeBeforeBreak<C extends { readonly op: string; readonly entry: DeviceEntry }>(changes: readonly C[]): { now: C[]; later: C[] } {
  const added = new Set(changes.filter((c) => c.op === 'add' && ROUTE_KINDS.has(c.entry.kind)).map((c) => routeDestination(c.entry)));
  const moves = changes.some((c) => c.op === 'delete' && ROUTE_KINDS.has(c.entry.kind) && added.has(routeDestination(c.entry)));
  if (!moves) return { now: [...changes], later: [] };
  const rank = (c: C): number => (c.op !== 'delete' ? -1 : LATER_DELETES.indexOf(c.entry.kind === CLAIM && c.entry.key.startsWith('route-') ? 'route-claim' : c.entry.kind));
  const later = changes.filter((c) => rank(c) >= 0).sort((a, b) => rank(a) - rank(b));
  return { now: changes.filter((c) => rank(c) < 0), later };
}

/** What a pass that moves a route deletes after its adds, in this order. */
const LATER_DELETES = ['route', 'route6', 'bridgetable', 'arp', 'nd6', 'route-claim'];
