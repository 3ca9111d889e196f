/**
 * The published tables: hub info (small; every agent watches it) and the peer table (one entry
 * per node, sharded over ConfigMaps so each stays far below the 1 MiB object limit).
 * Schema version 1 is documented in docs/peer-table.md; readers must check `schemaVersion`.
 *
 * Hub ConfigMap `chorus-kube-router-hub`, data keys (all strings):
 *   schemaVersion "1", vni, port, overlayNetwork (CIDR), deviceVTEPs (comma list),
 *   deviceOverlayIPs (comma list, same order), deviceMACs (optional, same order), mtu (optional)
 * Peer shard ConfigMap `chorus-kube-router-peers-<n>`: one key per node name, value a JSON
 *   object {"underlayIP","overlayIP","vtepMAC","podCIDRs":[..]}, plus "path":"direct" for a node
 *   the device reaches by direct routing (absent: through the VXLAN overlay). Shard n holds the nodes whose
 *   overlay address has host index in [n*PEERS_PER_SHARD, (n+1)*PEERS_PER_SHARD).
 */
import { isIPv4, parseCidr, parseIPv4, cidrContains, type Cidr } from './ipv4.ts';
import { PEERS_CONFIGMAP_PREFIX } from './keys.ts';

export const SCHEMA_VERSION = '1';
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
}

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
    schemaVersion: SCHEMA_VERSION,
    vni: String(hub.vni),
    port: String(hub.port),
    overlayNetwork: hub.overlayNetwork,
    deviceVTEPs: hub.deviceVTEPs.join(','),
    deviceOverlayIPs: hub.deviceOverlayIPs.join(','),
  };
  if (hub.deviceMACs !== undefined) data.deviceMACs = hub.deviceMACs.join(',');
  if (hub.mtu !== undefined) data.mtu = String(hub.mtu);
  return data;
}

function intField(data: ConfigMapData, key: string, min: number, max: number): number {
  const raw = data[key];
  if (raw === undefined || !/^\d+$/.test(raw)) throw new Error(`hub info: "${key}" must be an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new Error(`hub info: "${key}" must be in ${min}..${max}, got ${n}`);
  return n;
}

function ipList(data: ConfigMapData, key: string): string[] {
  const list = (data[key] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new Error(`hub info: "${key}" is empty`);
  for (const ip of list) if (!isIPv4(ip)) throw new Error(`hub info: "${key}" has "${ip}", not an IPv4 address`);
  return list;
}

/** Decodes and validates hub info; throws an Error naming the field on anything malformed. */
export function decodeHubInfo(data: ConfigMapData | undefined): HubInfo {
  if (!data) throw new Error('hub info: ConfigMap has no data');
  if (data.schemaVersion !== SCHEMA_VERSION) {
    throw new Error(`hub info: schemaVersion ${JSON.stringify(data.schemaVersion)} is not supported (this build reads "${SCHEMA_VERSION}")`);
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
    deviceVTEPs: ipList(data, 'deviceVTEPs'),
    deviceOverlayIPs,
    ...(deviceMACs ? { deviceMACs } : {}),
    ...(data.mtu !== undefined ? { mtu: intField(data, 'mtu', 576, 9000) } : {}),
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
  return JSON.stringify({ underlayIP: peer.underlayIP, overlayIP: peer.overlayIP, vtepMAC: peer.vtepMAC, podCIDRs: peer.podCIDRs, ...(peer.path === 'direct' ? { path: 'direct' } : {}) });
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
  const { underlayIP, overlayIP, vtepMAC, podCIDRs, path } = r;
  if (typeof underlayIP !== 'string' || !isIPv4(underlayIP)) return new Error(`peer ${node}: underlayIP ${JSON.stringify(underlayIP)} is not IPv4`);
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
  return { node, underlayIP, overlayIP, vtepMAC, podCIDRs, ...(path === 'direct' ? { path: 'direct' as const } : {}) };
}
