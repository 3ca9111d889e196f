/**
 * The published tables: hub info (small; every agent watches it) and the peer table (one entry
 * per node, sharded over ConfigMaps so each stays far below the 1 MiB object limit).
 * Schema versions 1 and 2 are documented in docs/peer-table.md; readers must check `schemaVersion`.
 * Version 2 is version 1 plus the IPv6 overlay of a dual-stack overlay; the coordinator writes
 * version 1, exactly as before, while no IPv6 overlay network is configured, so a v1 reader keeps
 * working on every IPv4-only overlay.
 *
 * Hub ConfigMap `chorus-kube-router-hub`, data keys (all strings):
 *   schemaVersion "1" or "2", vni, port, overlayNetwork (CIDR), deviceVTEPs (comma list),
 *   deviceOverlayIPs (comma list, same order), deviceMACs (optional, same order), mtu (optional);
 *   v2 adds overlayNetworkIPv6 (CIDR) and deviceOverlayIPv6s (comma list, same order).
 * Peer shard ConfigMap `chorus-kube-router-peers-<n>`: one key per node name, value a JSON
 *   object {"underlayIP","overlayIP","vtepMAC","podCIDRs":[..]}, plus "path":"direct" for a node
 *   the device reaches by direct routing (absent: through the VXLAN overlay); v2 adds
 *   "overlayIPv6" and "podCIDRsIPv6":[..] (podCIDRs stays IPv4). Shard n holds the nodes whose
 *   overlay address has host index in [n*PEERS_PER_SHARD, (n+1)*PEERS_PER_SHARD).
 */
import { isIPv4, parseCidr, parseIPv4, cidrContains, type Cidr } from './ipv4.ts';
import { formatIp, ipCidrContains, parseIp, parseIpCidr } from './ip.ts';
import { PEERS_CONFIGMAP_PREFIX } from './keys.ts';

/** The version written for an IPv4-only overlay, and the one a dual-stack overlay needs. */
export const SCHEMA_VERSION = '1';
export const SCHEMA_VERSION_DUAL_STACK = '2';
export const SCHEMA_VERSIONS: readonly string[] = [SCHEMA_VERSION, SCHEMA_VERSION_DUAL_STACK];
export const PEERS_PER_SHARD = 1000;

export interface HubInfo {
  readonly vni: number;
  readonly port: number;
  readonly overlayNetwork: string;
  readonly deviceVTEPs: readonly string[];
  readonly deviceOverlayIPs: readonly string[];
  /**
   * The device's VTEP MACs, same order, when known in advance (a Linux device uses MACs derived
   * from its overlay IPs). Absent for devices that choose their own MAC (Citrix, F5): nodes then
   * learn it by ARP through the flood entry.
   */
  readonly deviceMACs?: readonly string[];
  /** Overlay MTU when set by the operator; otherwise each end derives it from its underlay. */
  readonly mtu?: number;
  /** The IPv6 network of a dual-stack overlay (schema 2). */
  readonly overlayNetworkIPv6?: string;
  /** The device's IPv6 overlay address(es), same order as deviceOverlayIPs (schema 2). */
  readonly deviceOverlayIPv6s?: readonly string[];
}

/** The schema version a hub document needs: 2 when it carries an IPv6 overlay or an IPv6 underlay (IPv6 VTEPs and node addresses, which schema 1 readers refuse). */
export const schemaVersionOf = (hub: HubInfo): string => (hub.overlayNetworkIPv6 !== undefined || hub.deviceVTEPs.some((v) => v.includes(':')) ? SCHEMA_VERSION_DUAL_STACK : SCHEMA_VERSION);

/**
 * How the device reaches a node's pods: through the VXLAN overlay (route via the node's overlay
 * IP), or directly (route via the node's underlay IP, no tunnel; the device shares its subnet).
 */
export type PeerPath = 'vxlan' | 'direct';
export const PEER_PATHS: readonly PeerPath[] = ['vxlan', 'direct'];

export interface Peer {
  readonly node: string;
  readonly underlayIP: string;
  readonly overlayIP: string;
  readonly vtepMAC: string;
  readonly podCIDRs: readonly string[];
  /** Absent: 'vxlan' (every entry written before direct routing existed). */
  readonly path?: PeerPath;
  /** The node's IPv6 overlay address, in a dual-stack overlay (schema 2). */
  readonly overlayIPv6?: string;
  /** The node's IPv6 pod CIDRs, routed via overlayIPv6 (schema 2; podCIDRs holds the IPv4 ones). */
  readonly podCIDRsIPv6?: readonly string[];
}

/** The path a peer's pods are reached by. */
export const pathOf = (p: Peer): PeerPath => p.path ?? 'vxlan';

export type ConfigMapData = Record<string, string>;

/** The merge patch that turns `have` into `want` (null removes a key), or undefined if equal. */
export function dataPatch(have: ConfigMapData, want: ConfigMapData): Record<string, string | null> | undefined {
  const patch: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(want)) if (have[k] !== v) patch[k] = v;
  for (const k of Object.keys(have)) if (!(k in want)) patch[k] = null;
  return Object.keys(patch).length === 0 ? undefined : patch;
}

export function encodeHubInfo(hub: HubInfo): ConfigMapData {
  const data: ConfigMapData = {
    schemaVersion: schemaVersionOf(hub),
    vni: String(hub.vni),
    port: String(hub.port),
    overlayNetwork: hub.overlayNetwork,
    deviceVTEPs: hub.deviceVTEPs.join(','),
    deviceOverlayIPs: hub.deviceOverlayIPs.join(','),
  };
  if (hub.deviceMACs !== undefined) data.deviceMACs = hub.deviceMACs.join(',');
  if (hub.mtu !== undefined) data.mtu = String(hub.mtu);
  if (hub.overlayNetworkIPv6 !== undefined) {
    data.overlayNetworkIPv6 = hub.overlayNetworkIPv6;
    data.deviceOverlayIPv6s = (hub.deviceOverlayIPv6s ?? []).join(',');
  }
  return data;
}

function intField(data: ConfigMapData, key: string, min: number, max: number): number {
  const raw = data[key];
  if (raw === undefined || !/^\d+$/.test(raw)) throw new Error(`hub info: "${key}" must be an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new Error(`hub info: "${key}" must be in ${min}..${max}, got ${n}`);
  return n;
}

function ipList(data: ConfigMapData, key: string, family: 4 | 6 = 4): string[] {
  const list = (data[key] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new Error(`hub info: "${key}" is empty`);
  for (const ip of list) if (ipFamilyOf(ip) !== family) throw new Error(`hub info: "${key}" has "${ip}", not an IPv${family} address`);
  return list;
}

/** Schema 2's deviceVTEPs: IPv4 or IPv6 addresses (canonical text), all of one family (a mixed underlay is not served). */
function vtepList(data: ConfigMapData): string[] {
  const first = ipFamilyOf((data.deviceVTEPs ?? '').split(',')[0]?.trim() ?? '');
  return ipList(data, 'deviceVTEPs', first ?? 4).map((ip) => formatIp(parseIp(ip)));
}

const ipFamilyOf = (text: string): 4 | 6 | undefined => {
  try {
    return parseIp(text).family;
  } catch {
    return undefined;
  }
};

/** Schema 2's IPv6 overlay: the network and the device's addresses in it, one per device overlay IP. */
function ipv6Overlay(data: ConfigMapData, deviceCount: number): Pick<HubInfo, 'overlayNetworkIPv6' | 'deviceOverlayIPv6s'> {
  const text = data.overlayNetworkIPv6 ?? '';
  let net;
  try {
    net = parseIpCidr(text);
  } catch (err) {
    throw new Error(`hub info: "overlayNetworkIPv6" ${JSON.stringify(data.overlayNetworkIPv6)} is not an IPv6 network`, { cause: err });
  }
  if (net.family !== 6) throw new Error(`hub info: "overlayNetworkIPv6" ${text} is not an IPv6 network`);
  const ips = ipList(data, 'deviceOverlayIPv6s', 6);
  if (ips.length !== deviceCount) throw new Error(`hub info: "deviceOverlayIPv6s" must list one address per device overlay IP (${deviceCount}), got ${ips.length}`);
  for (const ip of ips) if (!ipCidrContains(net, parseIp(ip))) throw new Error(`hub info: device overlay IPv6 ${ip} is outside overlayNetworkIPv6 ${text}`);
  // canonical text (RFC 5952), as the kernel and the devices list them: compared as strings later
  return { overlayNetworkIPv6: text, deviceOverlayIPv6s: ips.map((ip) => formatIp(parseIp(ip))) };
}

/** Decodes and validates hub info; throws an Error naming the field on anything malformed. */
export function decodeHubInfo(data: ConfigMapData | undefined): HubInfo {
  if (!data) throw new Error('hub info: ConfigMap has no data');
  if (data.schemaVersion === undefined || !SCHEMA_VERSIONS.includes(data.schemaVersion)) {
    throw new Error(`hub info: schemaVersion ${JSON.stringify(data.schemaVersion)} is not supported (this build reads ${SCHEMA_VERSIONS.map((v) => `"${v}"`).join(' and ')})`);
  }
  const overlayNetwork = data.overlayNetwork ?? '';
  const net = parseCidr(overlayNetwork);
  const deviceOverlayIPs = ipList(data, 'deviceOverlayIPs');
  for (const ip of deviceOverlayIPs) {
    if (!cidrContains(net, parseIPv4(ip))) throw new Error(`hub info: device overlay IP ${ip} is outside overlayNetwork ${overlayNetwork}`);
  }
  const deviceMACs = data.deviceMACs === undefined ? undefined : data.deviceMACs.split(',').map((m) => m.trim().toLowerCase());
  if (deviceMACs && (deviceMACs.length !== deviceOverlayIPs.length || !deviceMACs.every((m) => /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(m)))) {
    throw new Error(`hub info: "deviceMACs" must list one MAC per device overlay IP, got ${JSON.stringify(data.deviceMACs)}`);
  }
  const hub: HubInfo = {
    vni: intField(data, 'vni', 1, 16777215),
    port: intField(data, 'port', 1, 65535),
    overlayNetwork,
    // schema 2 allows an IPv6 underlay: VTEPs all of one family
    deviceVTEPs: data.schemaVersion === SCHEMA_VERSION_DUAL_STACK ? vtepList(data) : ipList(data, 'deviceVTEPs'),
    deviceOverlayIPs,
    ...(deviceMACs ? { deviceMACs } : {}),
    ...(data.mtu !== undefined ? { mtu: intField(data, 'mtu', 576, 9000) } : {}),
    // a v1 document's IPv6 keys (there are none, unless written by hand) mean nothing
    // schema 2 without an IPv6 overlay: an IPv6 underlay under an IPv4-only overlay
    ...(data.schemaVersion === SCHEMA_VERSION_DUAL_STACK && (data.overlayNetworkIPv6 !== undefined || data.deviceOverlayIPv6s !== undefined) ? ipv6Overlay(data, deviceOverlayIPs.length) : {}),
  };
  return hub;
}

export function overlayCidr(hub: HubInfo): Cidr {
  return parseCidr(hub.overlayNetwork);
}

/** `prefix`: the instance's peers ConfigMap prefix (InstanceNames.peersConfigMapPrefix). */
export function shardName(index: number, prefix = PEERS_CONFIGMAP_PREFIX): string {
  return `${prefix}${index}`;
}

export function shardIndexOf(name: string, prefix = PEERS_CONFIGMAP_PREFIX): number | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const rest = name.slice(prefix.length);
  return /^\d+$/.test(rest) ? Number(rest) : undefined;
}

export function encodePeer(peer: Peer): string {
  // `path` only when direct: a VXLAN entry reads exactly as before direct routing existed
  // the IPv6 fields only in a dual-stack overlay: an IPv4 entry reads exactly as in schema 1
  return JSON.stringify({
    underlayIP: peer.underlayIP, overlayIP: peer.overlayIP, vtepMAC: peer.vtepMAC, podCIDRs: peer.podCIDRs, ...(peer.path === 'direct' ? { path: 'direct' } : {}),
    ...(peer.overlayIPv6 !== undefined ? { overlayIPv6: peer.overlayIPv6, podCIDRsIPv6: peer.podCIDRsIPv6 ?? [] } : {}),
  });
}

/** Decodes one shard entry; returns an Error (not throws) so one bad entry never hides the rest. */
export function decodePeer(node: string, value: string): Peer | Error {
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch (err) {
    return new Error(`peer ${node}: value is not JSON`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null) return new Error(`peer ${node}: value is not an object`);
  const r = raw as Record<string, unknown>;
  const { underlayIP, overlayIP, vtepMAC, podCIDRs, path, overlayIPv6, podCIDRsIPv6 } = r;
  // an IPv6 underlay address only in schema 2 (a schema 1 reader refuses the hub that goes with it)
  if (typeof underlayIP !== 'string' || ipFamilyOf(underlayIP) === undefined) return new Error(`peer ${node}: underlayIP ${JSON.stringify(underlayIP)} is not an IP address`);
  if (typeof overlayIP !== 'string' || !isIPv4(overlayIP)) return new Error(`peer ${node}: overlayIP ${JSON.stringify(overlayIP)} is not IPv4`);
  if (typeof vtepMAC !== 'string' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(vtepMAC)) return new Error(`peer ${node}: vtepMAC ${JSON.stringify(vtepMAC)} is not a MAC`);
  if (!Array.isArray(podCIDRs) || !podCIDRs.every((c): c is string => typeof c === 'string')) return new Error(`peer ${node}: podCIDRs is not a list of strings`);
  for (const c of podCIDRs) {
    try {
      parseCidr(c);
    } catch (err) {
      return new Error(`peer ${node}: pod CIDR ${c} is invalid`, { cause: err });
    }
  }
  if (path !== undefined && !PEER_PATHS.includes(path as PeerPath)) return new Error(`peer ${node}: path ${JSON.stringify(path)} is not one of ${PEER_PATHS.join(', ')}`);
  const v6 = decodePeerIPv6(node, overlayIPv6, podCIDRsIPv6);
  if (v6 instanceof Error) return v6;
  return { node, underlayIP, overlayIP, vtepMAC, podCIDRs, ...(path === 'direct' ? { path: 'direct' as const } : {}), ...v6 };
}

/** A peer entry's IPv6 fields (schema 2): both or neither. */
function decodePeerIPv6(node: string, overlayIPv6: unknown, podCIDRsIPv6: unknown): Pick<Peer, 'overlayIPv6' | 'podCIDRsIPv6'> | Error {
  if (overlayIPv6 === undefined && podCIDRsIPv6 === undefined) return {};
  if (typeof overlayIPv6 !== 'string' || ipFamilyOf(overlayIPv6) !== 6) return new Error(`peer ${node}: overlayIPv6 ${JSON.stringify(overlayIPv6)} is not IPv6`);
  if (!Array.isArray(podCIDRsIPv6) || !podCIDRsIPv6.every((c): c is string => typeof c === 'string')) return new Error(`peer ${node}: podCIDRsIPv6 is not a list of strings`);
  for (const c of podCIDRsIPv6) {
    let family;
    try {
      family = parseIpCidr(c).family;
    } catch (err) {
      return new Error(`peer ${node}: IPv6 pod CIDR ${c} is invalid`, { cause: err });
    }
    if (family !== 6) return new Error(`peer ${node}: IPv6 pod CIDR ${c} is not IPv6`);
  }
  return { overlayIPv6, podCIDRsIPv6 };
}
