/**
 * Coordinator planning, pure: (Nodes, their pod CIDRs, held allocations, config) -> hub info,
 * peers and the desired content of every peer-table shard, plus what could not be served and
 * why, or a refusal when the configuration conflicts with the cluster.
 */
import type { V1Node } from '@kubernetes/client-node';
import { cidrContains, cidrsOverlap, parseCidr, parseIPv4, type Cidr } from '../shared/ipv4.ts';
import { macFromOverlayIP } from '../shared/mac.ts';
import { internalIPv4 } from '../shared/node-facts.ts';
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
  /** Set when the configuration conflicts with the cluster: nothing may be published. */
  readonly refused?: string;
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
  /** 'derived': the device uses MACs derived from its overlay IPs (Linux), published in the hub info. */
  readonly deviceMACs?: 'derived' | 'learned';
}

/** Why the overlay network cannot be used with these nodes, or undefined. */
export function overlayConflict(network: Cidr, overlayNetwork: string, nodes: readonly V1Node[], podCIDRs: ReadonlyMap<string, readonly string[]>): string | undefined {
  for (const n of nodes) {
    const name = n.metadata?.name ?? '';
    const ip = internalIPv4(n);
    if (ip && cidrContains(network, parseIPv4(ip))) return `overlay network ${overlayNetwork} contains node ${name}'s address ${ip}; pick a subnet no node, pod or service uses`;
    for (const c of podCIDRs.get(name) ?? []) {
      if (cidrsOverlap(network, parseCidr(c, false))) return `overlay network ${overlayNetwork} overlaps node ${name}'s pod CIDR ${c}; pick a subnet no node, pod or service uses`;
    }
  }
  return undefined;
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
  const { eligible, problems } = eligibleNodes(inputs.nodes);
  const ipam = allocate({ network, deviceCount: config.deviceVTEPs.length, nodes: eligible.map((n) => n.metadata?.name ?? ''), held: inputs.held, highWater: inputs.highWater, shardSize });
  const hub = hubInfo(config, ipam.deviceIPs, inputs.deviceMACs ?? 'derived');
  const refused = overlayConflict(network, config.overlayNetwork, inputs.nodes, podCIDRs);
  if (refused) return { hub, peers: [], shards: new Map(), problems, incomplete: [], capacity: ipam.capacity, refused };
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
