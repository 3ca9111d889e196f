/**
 * The F5 BIG-IP side of the overlay as iControl REST objects, pure: what the plan calls for
 * (desired entries), what a GET answer means in the same terms (observed entries, only objects
 * this cluster owns), and the request bodies that create or change each object.
 *
 * Objects (all in one partition, named with this cluster's prefix P, default `chorus-<vni>`, and
 * marked in `description`):
 *   profile  P-vxlan          VXLAN profile (port, flooding none; multipoint with interface routing)
 *   tunnel   P                tunnel: key = VNI, local address = the BIG-IP VTEP, that profile
 *   self     P-self           the overlay self IP on the tunnel (allow-service, traffic group)
 *   fdb      <node VTEP MAC>  a record in the tunnel's FDB: MAC -> node underlay IP
 *   arp      P-<overlay IP>   static ARP overlay IP -> node VTEP MAC (gateway routing only)
 *   route    P-<net>_<len>    route to a pod CIDR via the node's overlay IP, or via the tunnel;
 *                             for a directly routed node via its underlay IP (and no fdb or arp)
 *   dual-stack overlay (--overlay-network-ipv6), beside the above:
 *   self     P-self6          the overlay IPv6 self IP on the tunnel
 *   ndp      P-<overlay IPv6> static NDP entry overlay IPv6 -> node VTEP MAC (gateway routing only)
 *   route    P-<net6>_<len>   route to an IPv6 pod CIDR via the node's overlay IPv6 address, or
 *                             via the tunnel; none for a directly routed node (its next hop is IPv4)
 * In names an IPv6 address's ":" is written "-" (a BIG-IP name of letters, digits, ".", "_"
 * and "-" only: whether ":" is allowed is not confirmed).
 * Entry fields are text, normalised (route domains dropped, MACs lower case, allow-service as a
 * sorted list) so desired and observed compare field by field.
 */
import { isIPv4 } from '../../../shared/ipv4.ts';
import { canonicalIpText, formatIpCidr, parseIpCidr } from '../../../shared/ip.ts';
import type { DeviceAddress } from '../../routing.ts';
import type { CoordinatorPlan } from '../../plan.ts';
import { PeerEntries, type DeviceEntry } from '../driver.ts';
import type { Peer } from '../../../shared/tables.ts';

export interface F5Layout {
  readonly partition: string;
  readonly namePrefix: string;
  /** gateway: route via the node's overlay IP + static ARP; interface: route via the tunnel. */
  readonly routing: 'gateway' | 'interface';
  /** `none`, `default`, or a comma-separated list of protocol:port (allow-service of the overlay self IP). */
  readonly allowService: string;
  readonly trafficGroup: string;
  /** This cluster's identity (--cluster-id, default the kube-system namespace's UID), in every marker. */
  readonly clusterId: string;
}

/** Kinds in the order they are created (deleted in reverse). */
export const F5_KINDS = ['profile', 'tunnel', 'self', 'fdb', 'arp', 'ndp', 'route'] as const;
export type F5Kind = (typeof F5_KINDS)[number];

export const COLLECTIONS: Record<Exclude<F5Kind, 'fdb'>, string> = {
  profile: '/mgmt/tm/net/tunnels/vxlan',
  tunnel: '/mgmt/tm/net/tunnels/tunnel',
  self: '/mgmt/tm/net/self',
  arp: '/mgmt/tm/net/arp',
  route: '/mgmt/tm/net/route',
  ndp: '/mgmt/tm/net/ndp',
};
export const FDB_TUNNELS = '/mgmt/tm/net/fdb/tunnel';

export const ownerMarker = (l: F5Layout): string => `chorus-kube-router ${l.namePrefix} cluster ${l.clusterId}: managed, do not edit`;
/** The marker of versions before cluster identities: adopted (and rewritten) by the first cluster that finds it. */
export const legacyMarker = (l: F5Layout): string => `chorus-kube-router ${l.namePrefix}: managed, do not edit`;
const MARKER_RE = /^chorus-kube-router \S+ cluster (\S+): managed, do not edit$/;
const hasOurName = (o: F5Object, l: F5Layout): boolean => {
  const name = text(o.name);
  return (name === l.namePrefix || name.startsWith(`${l.namePrefix}-`)) && (o.partition === undefined || text(o.partition) === l.partition);
};
export const fullPath = (l: F5Layout, name: string): string => `/${l.partition}/${name}`;
/** `~Partition~name`, the form iControl addresses an object by. */
export const itemPath = (l: F5Layout, collection: string, name: string): string => `${collection}/~${l.partition}~${encodeURIComponent(name)}`;

export const names = (l: F5Layout): { profile: string; tunnel: string; self: string; self6: string } => ({
  profile: `${l.namePrefix}-vxlan`, tunnel: l.namePrefix, self: `${l.namePrefix}-self`, self6: `${l.namePrefix}-self6`,
});
/** An address or CIDR as part of a name: an IPv6 ":" written "-". */
const nameSafe = (text: string): string => text.replace(/:/g, '-');
const arpName = (l: F5Layout, ip: string): string => `${l.namePrefix}-${nameSafe(ip)}`;
const routeName = (l: F5Layout, cidr: string): string => `${l.namePrefix}-${nameSafe(cidr.replace('/', '_'))}`;
/** Address text in canonical form (an IPv6 address however the BIG-IP spells it); other text kept. */
const canonicalIp = canonicalIpText;
/** A self IP's `address/prefix` with the address canonical (not its network). */
const canonicalSelf = (v: string): string => [canonicalIp(v.split('/')[0] ?? ''), ...v.split('/').slice(1)].join('/');

/** Text of a field that may come back as a string or a number (iControl does both). */
export const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
/** Drops a route-domain suffix: `198.18.0.11%0` -> `198.18.0.11`, `10.0.0.0%0/24` -> `10.0.0.0/24`. */
export const withoutRouteDomain = (v: string): string => v.replace(/%\d+/, '');
/**
 * allow-service as one string, the same however it is given or answered (the BIG-IP normalises
 * the list): absent or "none" -> none; ["default"] -> default; lists sorted, without duplicates,
 * joined by commas.
 */
export function allowServiceText(v: unknown): string {
  if (Array.isArray(v)) return v.length === 0 ? 'none' : [...new Set(v.map(text).map((x) => x.trim()))].sort().join(',');
  const t = text(v);
  return t === '' ? 'none' : t;
}
const flooding = (l: F5Layout): string => (l.routing === 'interface' ? 'multipoint' : 'none');

export function desiredEntries(plan: CoordinatorPlan, l: F5Layout, cache: PeerEntries = new PeerEntries()): DeviceEntry[] {
  const n = names(l);
  const vtep = plan.hub.deviceVTEPs[0] ?? '';
  const selfIP = plan.hub.deviceOverlayIPs[0] ?? '';
  const prefix = parseIpCidr(plan.hub.overlayNetwork).prefix;
  const allow = allowServiceText(l.allowService === 'none' || l.allowService === 'default' ? l.allowService : l.allowService.split(','));
  const entries: DeviceEntry[] = [
    { kind: 'profile', key: n.profile, fields: { port: String(plan.hub.port), flooding: flooding(l) } },
    { kind: 'tunnel', key: n.tunnel, fields: { key: String(plan.hub.vni), local: vtep, profile: fullPath(l, n.profile) } },
    { kind: 'self', key: n.self, fields: { address: `${selfIP}/${prefix}`, vlan: fullPath(l, n.tunnel), allow, group: l.trafficGroup } },
  ];
  const selfIPv6 = plan.hub.deviceOverlayIPv6s?.[0];
  if (plan.hub.overlayNetworkIPv6 !== undefined && selfIPv6 !== undefined) {
    entries.push({ kind: 'self', key: n.self6, fields: { address: `${selfIPv6}/${parseIpCidr(plan.hub.overlayNetworkIPv6).prefix}`, vlan: fullPath(l, n.tunnel), allow, group: l.trafficGroup } });
  }
  for (const p of plan.peers) entries.push(...desiredPeerEntries(l, cache, p));
  return entries;
}

/** One peer's entries, as desiredEntries holds them (the same objects, from the cache). */
export function desiredPeerEntries(l: F5Layout, cache: PeerEntries, peer: Peer): readonly DeviceEntry[] {
  // a peer's entries depend only on the peer and the layout (fixed for a driver's life)
  return cache.of(peer, '', (p) => peerEntries(p, l));
}

/**
 * One node's entries: its FDB record, its ARP entry (gateway routing) and a route per pod CIDR;
 * for a directly routed node only a route per pod CIDR via its underlay IP (the BIG-IP shares its
 * subnet and resolves it by ARP on the VLAN).
 */
function peerEntries(p: Peer, l: F5Layout): DeviceEntry[] {
  const n = names(l);
  const direct = p.path === 'direct';
  const entries: DeviceEntry[] = direct ? [] : [{ kind: 'fdb', key: p.vtepMAC.toLowerCase(), fields: { endpoint: p.underlayIP }, node: p.node }];
  if (!direct && l.routing === 'gateway') entries.push({ kind: 'arp', key: arpName(l, p.overlayIP), fields: { ip: p.overlayIP, mac: p.vtepMAC.toLowerCase() }, node: p.node });
  for (const c of p.podCIDRs) {
    const network = formatIpCidr(parseIpCidr(c, false));
    const via: Record<string, string> = direct ? { gw: p.underlayIP } : l.routing === 'gateway' ? { gw: p.overlayIP } : { interface: fullPath(l, n.tunnel) };
    entries.push({ kind: 'route', key: routeName(l, network), fields: { network, ...via }, node: p.node });
  }
  // a dual-stack overlay (the peer has an IPv6 overlay address only then): the same over IPv6
  if (!direct && p.overlayIPv6 !== undefined) {
    if (l.routing === 'gateway') entries.push({ kind: 'ndp', key: arpName(l, p.overlayIPv6), fields: { ip: p.overlayIPv6, mac: p.vtepMAC.toLowerCase() }, node: p.node });
    for (const c of p.podCIDRsIPv6 ?? []) {
      const network = formatIpCidr(parseIpCidr(c, false));
      const via: Record<string, string> = l.routing === 'gateway' ? { gw: p.overlayIPv6 } : { interface: fullPath(l, n.tunnel) };
      entries.push({ kind: 'route', key: routeName(l, network), fields: { network, ...via }, node: p.node });
    }
  }
  return entries;
}

export type F5Object = Record<string, unknown>;

export interface ObservedLists {
  readonly profiles: readonly F5Object[];
  readonly tunnels: readonly F5Object[];
  readonly selfs: readonly F5Object[];
  /** The FDB tunnel object of our tunnel (with `records`), if the tunnel exists. */
  readonly fdbTunnel: F5Object | undefined;
  readonly arps: readonly F5Object[];
  /** Static NDP entries (asked for only in a dual-stack overlay; absent otherwise). */
  readonly ndps?: readonly F5Object[];
  readonly routes: readonly F5Object[];
}

/** An object is ours when it is named with our prefix AND carries our marker (or the marker of an earlier version, which names no cluster). */
export function isOwned(o: F5Object, l: F5Layout): boolean {
  return hasOurName(o, l) && [ownerMarker(l), legacyMarker(l)].includes(text(o.description));
}

/** The cluster that owns an object of our name, when it is another cluster's; undefined otherwise. */
export function foreignOwner(o: F5Object, l: F5Layout): string | undefined {
  const cluster = MARKER_RE.exec(text(o.description))?.[1];
  return hasOurName(o, l) && cluster !== undefined && cluster !== l.clusterId ? cluster : undefined;
}

/** Why nothing of ours may be touched: our tunnel is marked as another cluster's. undefined: no conflict. */
export function ownershipConflict(tunnels: readonly F5Object[], l: F5Layout): string | undefined {
  const tunnel = tunnels.find((t) => text(t.name) === names(l).tunnel);
  const owner = tunnel ? foreignOwner(tunnel, l) : undefined;
  if (owner === undefined) return undefined;
  return `tunnel ${fullPath(l, names(l).tunnel)} on the BIG-IP belongs to cluster "${owner}" (its description says so); this cluster is "${l.clusterId}": nothing of it is changed. Give this cluster its own --vni and overlay network (or --f5-name-prefix / --f5-partition), or, if that cluster is gone for good, run its teardown or delete its objects`;
}

/** Observed fields of an object that still carries the earlier marker: differs from desired, so the update rewrites the description. */
const legacy = (o: F5Object, l: F5Layout): Record<string, string> => (text(o.description) === legacyMarker(l) ? { marker: 'legacy' } : {});

export function observedEntries(lists: ObservedLists, l: F5Layout): DeviceEntry[] {
  const own = (xs: readonly F5Object[]): F5Object[] => xs.filter((o) => isOwned(o, l));
  const tunnels = own(lists.tunnels);
  const records = tunnels.some((t) => text(t.name) === names(l).tunnel) && Array.isArray(lists.fdbTunnel?.records) ? (lists.fdbTunnel.records as F5Object[]) : [];
  return [
    ...own(lists.profiles).map((o): DeviceEntry => ({ kind: 'profile', key: text(o.name), fields: { port: text(o.port) || '4789', flooding: text(o.floodingType) || 'multipoint', ...legacy(o, l) } })),
    ...tunnels.map((o): DeviceEntry => ({ kind: 'tunnel', key: text(o.name), fields: { key: text(o.key), local: canonicalIp(withoutRouteDomain(text(o.localAddress))), profile: text(o.profile), ...legacy(o, l) } })),
    ...own(lists.selfs).map((o): DeviceEntry => ({ kind: 'self', key: text(o.name), fields: { address: canonicalSelf(withoutRouteDomain(text(o.address))), vlan: text(o.vlan), allow: allowServiceText(o.allowService), group: text(o.trafficGroup), ...legacy(o, l) } })),
    ...records.map((r): DeviceEntry => ({ kind: 'fdb', key: text(r.name).toLowerCase(), fields: { endpoint: canonicalIp(withoutRouteDomain(text(r.endpoint))) } })),
    ...own(lists.arps).map((o): DeviceEntry => ({ kind: 'arp', key: text(o.name), fields: { ip: withoutRouteDomain(text(o.ipAddress)), mac: text(o.macAddress).toLowerCase(), ...legacy(o, l) } })),
    ...own(lists.ndps ?? []).map((o): DeviceEntry => ({ kind: 'ndp', key: text(o.name), fields: { ip: canonicalIp(withoutRouteDomain(text(o.ipAddress))), mac: text(o.macAddress).toLowerCase(), ...legacy(o, l) } })),
    ...own(lists.routes).map((o): DeviceEntry => {
      const network = canonicalIp(withoutRouteDomain(text(o.network)));
      const via: Record<string, string> = o.gw !== undefined ? { gw: canonicalIp(withoutRouteDomain(text(o.gw))) } : { interface: text(o.tmInterface) };
      return { kind: 'route', key: text(o.name), fields: { network, ...via, ...legacy(o, l) } };
    }),
  ];
}

function allowServiceBody(v: string): string | string[] {
  return v === 'none' ? 'none' : v.split(',');
}

/** The fields an entry sets, as iControl names them (without name/partition/description). */
export function fieldsFor(e: DeviceEntry): F5Object {
  const f = e.fields;
  switch (e.kind) {
    case 'profile': return { port: Number(f.port), floodingType: f.flooding ?? 'none' };
    case 'tunnel': return { key: Number(f.key), localAddress: f.local ?? '', profile: f.profile ?? '' };
    case 'self': return { address: f.address ?? '', vlan: f.vlan ?? '', allowService: allowServiceBody(f.allow ?? 'none'), trafficGroup: f.group ?? '' };
    case 'arp':
    case 'ndp': return { ipAddress: f.ip ?? '', macAddress: f.mac ?? '' };
    case 'route': return { network: f.network ?? '', ...(f.gw !== undefined ? { gw: f.gw } : { tmInterface: f.interface ?? '' }) };
    default: return {};
  }
}

/** The body that creates an entry's object. */
export function createBody(e: DeviceEntry, l: F5Layout): F5Object {
  const extra: F5Object = e.kind === 'profile' ? { defaultsFrom: '/Common/vxlan' } : e.kind === 'tunnel' ? { remoteAddress: 'any', mode: 'bidirectional', tos: 'preserve' } : {};
  return { name: e.key, partition: l.partition, ...extra, ...fieldsFor(e), description: ownerMarker(l) };
}

/** The body that changes an entry's object in place (fields iControl refuses to change are left out; the marker is always rewritten). */
export function updateBody(e: DeviceEntry, l: F5Layout): F5Object {
  const f: F5Object = { ...fieldsFor(e), description: ownerMarker(l) };
  if (e.kind === 'arp' || e.kind === 'ndp') delete f.ipAddress; // cannot be changed by update; the name carries it anyway
  if (e.kind === 'route') delete f.network;
  return f;
}

/** The FDB records the tunnel should hold, as the PUT body lists them. */
export function fdbRecords(desired: readonly DeviceEntry[]): { name: string; endpoint: string }[] {
  return desired.filter((e) => e.kind === 'fdb').map((e) => ({ name: e.key, endpoint: e.fields.endpoint ?? '' }));
}

/** `records` of the FDB PUT: the set, or null to clear it (an empty set is written as null, the form that clears). */
export function fdbRecordsBody(desired: readonly DeviceEntry[]): { name: string; endpoint: string }[] | null {
  const records = fdbRecords(desired);
  return records.length > 0 ? records : null;
}

/** `ACTIVE`, `STANDBY`, ... from a /mgmt/tm/cm/failover-status answer, or '' when absent. */
export function failoverStatus(body: Record<string, unknown>): string {
  const entries = body.entries;
  if (typeof entries !== 'object' || entries === null) return '';
  for (const v of Object.values(entries as Record<string, unknown>)) {
    const nested = (v as { nestedStats?: { entries?: { status?: { description?: unknown } } } } | undefined)?.nestedStats?.entries?.status?.description;
    if (typeof nested === 'string') return nested.toUpperCase();
  }
  return '';
}

/** The unit's self IPs as addresses with their prefix (`10.1.1.5%0/24`: the route domain dropped). */
export function selfAddresses(selfs: readonly F5Object[]): DeviceAddress[] {
  return selfs.flatMap((o) => {
    const m = /^([0-9.]+)(?:%\d+)?\/(\d{1,2})$/.exec(text(o.address));
    if (!m || !isIPv4(m[1] ?? '') || Number(m[2]) > 32) return [];
    return [{ ip: m[1] ?? '', prefix: Number(m[2]) }];
  });
}
