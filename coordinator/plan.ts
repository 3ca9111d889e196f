/**
 * Coordinator planning, pure: (Nodes, their pod CIDRs, held allocations, config) -> hub info,
 * peers and the desired content of every peer-table shard, plus what could not be served and
 * why, or a refusal when the configuration conflicts with the cluster.
 */
import type { V1Node } from '@kubernetes/client-node';
import { parseCidr, type Cidr } from '../shared/ipv4.ts';
import { refusedNodes } from '../shared/pod-cidrs.ts';
import { macFromOverlayIP } from '../shared/mac.ts';
import { allocatedOverlayIP, internalIPv4 } from '../shared/node-facts.ts';
import { ANNOTATION_OVERLAY_IP } from '../shared/keys.ts';
import { PEERS_PER_SHARD, encodePeer, shardName, type ConfigMapData, type HubInfo, type Peer } from '../shared/tables.ts';
import { allocate, hostIndex } from './ipam.ts';

export interface OverlayConfig {
  readonly vni: number;
  readonly port: number;
  readonly overlayNetwork: string;
  readonly deviceVTEPs: readonly string[];
  readonly mtu?: number;
}

export interface ShardPlan {
  readonly data: ConfigMapData;
  /** How many of the shard's indexes were ever handed out (reuse-last bookkeeping). */
  readonly highWater: number;
}

export interface CoordinatorPlan {
  readonly hub: HubInfo;
  readonly peers: readonly Peer[];
  /** Desired content of every shard that has entries or a high-water mark, by ConfigMap name. */
  readonly shards: ReadonlyMap<string, ShardPlan>;
  readonly problems: readonly { node: string; reason: string }[];
  /** Nodes in the overlay whose pod CIDRs are not known yet: the device gets no route to their pods. */
  readonly incomplete: readonly { node: string; reason: string }[];
  readonly capacity: number;
}

export interface PlanInputs {
  readonly config: OverlayConfig;
  readonly nodes: readonly V1Node[];
  /** Pod CIDRs by node name, from the configured source. */
  readonly podCIDRs: ReadonlyMap<string, readonly string[]>;
  readonly held: ReadonlyMap<string, string>;
  readonly highWater: ReadonlyMap<number, number>;
  readonly shardSize?: number;
  /** The peers ConfigMap prefix of this instance (default: the default instance's). */
  readonly peersPrefix?: string;
  /** The cluster's service CIDRs (--service-cidr): no pod CIDR may overlap them. */
  readonly serviceCIDRs?: readonly string[];
  /** When set (--pod-cidr-ranges), every pod CIDR must lie inside one of these. */
  readonly podRanges?: readonly string[];
  /**
   * The Node annotation that records a node's overlay address (default: the default instance's).
   * When the peer table has lost a node's entry (a malformed entry, a deleted shard), the address
   * its Node still carries is kept, unless the table gives it to another node.
   */
  readonly annotationKey?: string;
  /** 'derived': the device uses MACs derived from its overlay IPs (Linux), published in the hub info. */
  readonly deviceMACs?: 'derived' | 'learned';
}

/** Why the overlay network cannot be used with these nodes, or undefined. */
/**
 * The peer table's allocations, plus, for a node the table does not list, the address its Node
 * annotation records (the record survives a malformed entry or a deleted shard). The table wins:
 * an annotated address the table gives to another node is not taken.
 */
export function withAnnotatedAddresses(held: ReadonlyMap<string, string>, nodes: readonly V1Node[], key: string): ReadonlyMap<string, string> {
  const taken = new Set(held.values());
  let out: Map<string, string> | undefined;
  for (const n of nodes) {
    const name = n.metadata?.name ?? '';
    if (held.has(name)) continue;
    const ip = allocatedOverlayIP(n, key);
    if (ip === undefined || taken.has(ip)) continue;
    out ??= new Map(held);
    out.set(name, ip);
    taken.add(ip);
  }
  return out ?? held;
}

/** Nodes in the order they are served (oldest first), and those that cannot be served yet. */
function eligibleNodes(nodes: readonly V1Node[]): { eligible: V1Node[]; problems: { node: string; reason: string }[] } {
  const problems: { node: string; reason: string }[] = [];
  const eligible: V1Node[] = [];
  const created = (n: V1Node): number => {
    const t = n.metadata?.creationTimestamp;
    return t ? new Date(t).getTime() : 0;
  };
  const keyed = nodes.map((n) => ({ n, t: created(n), name: n.metadata?.name ?? '' }));
  keyed.sort((a, b) => a.t - b.t || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const { n } of keyed) {
    if (!internalIPv4(n)) problems.push({ node: n.metadata?.name ?? '', reason: 'no IPv4 InternalIP in status.addresses yet' });
    else eligible.push(n);
  }
  return { eligible, problems };
}

function hubInfo(config: OverlayConfig, deviceIPs: readonly string[], deviceMACs: 'derived' | 'learned'): HubInfo {
  return {
    vni: config.vni, port: config.port, overlayNetwork: config.overlayNetwork,
    deviceVTEPs: config.deviceVTEPs, deviceOverlayIPs: deviceIPs,
    ...(deviceMACs === 'derived' ? { deviceMACs: deviceIPs.map(macFromOverlayIP) } : {}),
    ...(config.mtu !== undefined ? { mtu: config.mtu } : {}),
  };
}

export function planCoordinator(inputs: PlanInputs): CoordinatorPlan {
  const { config, podCIDRs } = inputs;
  const shardSize = inputs.shardSize ?? PEERS_PER_SHARD;
  const network: Cidr = parseCidr(config.overlayNetwork);
  const { eligible: addressed, problems } = eligibleNodes(inputs.nodes);
  // one bad node is left out (with its reason), never the whole plan
  const refused = refusedNodes(addressed.map((n) => ({ node: n.metadata?.name ?? '', underlayIP: internalIPv4(n), podCIDRs: podCIDRs.get(n.metadata?.name ?? '') ?? [] })), {
    overlayNetwork: config.overlayNetwork, deviceVTEPs: config.deviceVTEPs, ...(inputs.serviceCIDRs ? { serviceCIDRs: inputs.serviceCIDRs } : {}), ...(inputs.podRanges ? { podRanges: inputs.podRanges } : {}),
  });
  for (const [node, reason] of refused) problems.push({ node, reason: `left out of the overlay: ${reason}` });
  const eligible = addressed.filter((n) => !refused.has(n.metadata?.name ?? ''));
  const held = withAnnotatedAddresses(inputs.held, eligible, inputs.annotationKey ?? ANNOTATION_OVERLAY_IP);
  const ipam = allocate({ network, deviceCount: config.deviceVTEPs.length, nodes: eligible.map((n) => n.metadata?.name ?? ''), held, highWater: inputs.highWater, shardSize });
  const hub = hubInfo(config, ipam.deviceIPs, inputs.deviceMACs ?? 'derived');
  const incomplete: { node: string; reason: string }[] = [];
  for (const r of ipam.rejected) problems.push({ node: r.node, reason: `held overlay IP ${r.ip} dropped: ${r.reason}` });
  problems.push(...ipam.unallocated);
  const peers: Peer[] = [];
  const data = new Map<number, ConfigMapData>();
  for (const n of eligible) {
    const node = n.metadata?.name ?? '';
    const overlayIP = ipam.allocations.get(node);
    if (overlayIP === undefined) continue;
    const peer: Peer = { node, underlayIP: internalIPv4(n) ?? '', overlayIP, vtepMAC: macFromOverlayIP(overlayIP), podCIDRs: [...(podCIDRs.get(node) ?? [])] };
    peers.push(peer);
    if (peer.podCIDRs.length === 0) incomplete.push({ node, reason: 'no pod CIDR known yet (from the configured pod-CIDR source): the device gets this node\'s tunnel entries but no route to its pods until it has one' });
    const shard = Math.floor(hostIndex(network, config.deviceVTEPs.length, overlayIP) / shardSize);
    const d = data.get(shard) ?? {};
    d[node] = encodePeer(peer);
    data.set(shard, d);
  }
  const shards = new Map<string, ShardPlan>();
  for (const index of new Set([...data.keys(), ...ipam.highWater.keys()])) {
    shards.set(shardName(index, inputs.peersPrefix), { data: data.get(index) ?? {}, highWater: ipam.highWater.get(index) ?? 0 });
  }
  return { hub, peers, shards, problems, incomplete, capacity: ipam.capacity };
}

export { dataPatch } from '../shared/tables.ts';
