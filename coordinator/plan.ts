/**
 * Coordinator planning, pure: (Nodes, their pod CIDRs, held allocations, config) -> hub info,
 * peers and the desired content of every peer-table shard, plus what could not be served and
 * why, or a refusal when the configuration conflicts with the cluster.
 */
import type { V1Node } from '@kubernetes/client-node';
import { parseCidr, type Cidr } from '../shared/ipv4.ts';
import { CidrMemo, refusedNodes } from '../shared/pod-cidrs.ts';
import { cidrsByFamily, formatIpCidr, twinAddress, type IpFamily } from '../shared/ip.ts';
import { macFromOverlayIP } from '../shared/mac.ts';
import { allocatedOverlayIP, internalIP, underlayFamilyOf } from '../shared/node-facts.ts';
import { ANNOTATION_OVERLAY_IP, ANNOTATION_PATH } from '../shared/keys.ts';
import { PEERS_PER_SHARD, encodePeer, shardName, type ConfigMapData, type HubInfo, type Peer, type PeerPath } from '../shared/tables.ts';
import { allocate, hostIndex } from './ipam.ts';
import { PathChooser, VXLAN_ONLY, policyKey, type RoutingPolicy } from './routing.ts';

export interface OverlayConfig {
  readonly vni: number;
  readonly port: number;
  readonly overlayNetwork: string;
  readonly deviceVTEPs: readonly string[];
  readonly mtu?: number;
  /** The IPv6 network of a dual-stack overlay (--overlay-network-ipv6). */
  readonly overlayNetworkIPv6?: string;
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
  /** Nodes with IPv6 pod CIDRs that are not routed because no IPv6 overlay network is configured (a dual-stack cluster on an IPv4-only overlay). */
  readonly ipv6NotRouted: readonly string[];
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
  /** Which nodes the device reaches directly, without the tunnel (default: none, every node through VXLAN). */
  readonly routing?: RoutingPolicy;
  /** The Node annotation that records a node's path (default: the default instance's), read while the routing policy is pending. */
  readonly pathAnnotationKey?: string;
}

/**
 * The peer table's allocations, plus, for a node the table does not list, the address its Node
 * annotation records (the record survives a malformed entry or a deleted shard). The table wins:
 * an annotated address the table gives to another node is not taken.
 */
function annotated(held: ReadonlyMap<string, string>, nodes: readonly { name: string; annotated: string | undefined }[]): ReadonlyMap<string, string> {
  let taken: Set<string> | undefined;
  let out: Map<string, string> | undefined;
  for (const { name, annotated: ip } of nodes) {
    if (ip === undefined || held.has(name)) continue;
    taken ??= new Set(held.values());
    if (taken.has(ip)) continue;
    out ??= new Map(held);
    out.set(name, ip);
    taken.add(ip);
  }
  return out ?? held;
}

/**
 * What the planner reads from one Node object. Worked out once per object: a changed Node is a
 * new object (the watch cache replaces it; nothing edits a cached Node in place).
 */
interface NodeFacts {
  readonly name: string;
  /** creationTimestamp in ms (0 when absent): the oldest node is served first. */
  readonly created: number;
  readonly underlayIP: string | undefined;
  /** The overlay address the Node's annotation records, under `annotationKey`. */
  readonly annotationKey: string;
  readonly annotated: string | undefined;
  /** The path the Node's annotation records ('direct', or absent: the overlay). */
  readonly recordedPath: PeerPath | undefined;
}

/** A node's peer entry as last built, reused while what it is built from is the same. */
interface BuiltPeer {
  /** The pod CIDR list it was built from (the same array while the node's source is unchanged). */
  readonly cidrs: readonly string[];
  readonly peer: Peer;
  readonly encoded: string;
  readonly shard: number;
  /** It has IPv6 pod CIDRs and the overlay carries no IPv6. */
  readonly ipv6NotRouted: boolean;
}

function hubInfo(config: OverlayConfig, deviceIPs: readonly string[], deviceMACs: 'derived' | 'learned'): HubInfo {
  const v6 = config.overlayNetworkIPv6;
  return {
    vni: config.vni, port: config.port, overlayNetwork: config.overlayNetwork,
    deviceVTEPs: config.deviceVTEPs, deviceOverlayIPs: deviceIPs,
    ...(deviceMACs === 'derived' ? { deviceMACs: deviceIPs.map(macFromOverlayIP) } : {}),
    ...(config.mtu !== undefined ? { mtu: config.mtu } : {}),
    ...(v6 !== undefined ? { overlayNetworkIPv6: v6, deviceOverlayIPv6s: deviceIPs.map((ip) => twinAddress(config.overlayNetwork, v6, ip)) } : {}),
  };
}

const sameList = (a: readonly string[], b: readonly string[]): boolean => a === b || (a.length === b.length && a.every((x, i) => x === b[i]));

const byAge = (a: NodeFacts, b: NodeFacts): number => a.created - b.created || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * Plans the coordinator's tables, remembering per node what it worked out last time. A node event
 * then costs the work of that node: its facts (addresses, age, annotation), its pod CIDRs parsed
 * and checked, its peer entry and its encoding are reused for every Node object, pod CIDR and
 * allocation that did not change. What stays proportional to the cluster is cheap: a pass over
 * the nodes to find what changed, the age order (re-sorted only when a Node object changed), the overlap
 * and allocation bookkeeping over numbers, and the shard objects. Its answer is exactly
 * planCoordinator's for the same inputs (a property test runs both over random sequences of
 * joins, leaves and changes); the coordinator keeps one for its life.
 */
/** Why a node without an InternalIP of the underlay's family is not in the overlay yet. */
const noUnderlayAddress = (family: IpFamily): string => `no IPv${family} InternalIP in status.addresses yet${family === 6 ? ' (the underlay is IPv6: --device-vtep is)' : ''}`;

export class CoordinatorPlanner {
  private facts = new WeakMap<V1Node, NodeFacts>();
  private order: { nodes: readonly V1Node[]; sorted: NodeFacts[] } | undefined;
  /** The underlay's family (that of the device VTEPs): which InternalIP of a node is its VTEP. */
  private underlayFamily: IpFamily = 4;
  private peers = new Map<string, BuiltPeer>();
  private readonly memo = new CidrMemo();
  /** The settings the remembered peers were built under: when they change, nothing is reused. */
  private context = '';

  plan(inputs: PlanInputs): CoordinatorPlan {
    const { config, podCIDRs } = inputs;
    const { shardSize, routing } = this.settle(inputs);
    const annotationKey = inputs.annotationKey ?? ANNOTATION_OVERLAY_IP;
    const pathKey = inputs.pathAnnotationKey ?? ANNOTATION_PATH;
    const network: Cidr = parseCidr(config.overlayNetwork);
    const family = this.settleUnderlayFamily(config.deviceVTEPs);
    const paths = new PathChooser(routing);
    const problems: { node: string; reason: string }[] = [];
    const addressed: NodeFacts[] = [];
    const noAddress = noUnderlayAddress(family);
    for (const f of this.sorted(inputs.nodes, annotationKey, pathKey)) {
      if (f.underlayIP === undefined) problems.push({ node: f.name, reason: noAddress });
      else addressed.push(f);
    }
    // one bad node is left out (with its reason), never the whole plan
    const refused = refusedNodes(addressed.map((f) => ({ node: f.name, underlayIP: f.underlayIP, podCIDRs: podCIDRs.get(f.name) ?? [] })), {
      overlayNetwork: config.overlayNetwork, overlayNetworkIPv6: config.overlayNetworkIPv6, deviceVTEPs: config.deviceVTEPs, ...(inputs.serviceCIDRs ? { serviceCIDRs: inputs.serviceCIDRs } : {}), ...(inputs.podRanges ? { podRanges: inputs.podRanges } : {}),
    }, this.memo);
    for (const [node, reason] of refused) problems.push({ node, reason: `left out of the overlay: ${reason}` });
    const eligible = refused.size === 0 ? addressed : addressed.filter((f) => !refused.has(f.name));
    const held = annotated(inputs.held, eligible);
    const ipam = allocate({ network, deviceCount: config.deviceVTEPs.length, nodes: eligible.map((f) => f.name), held, highWater: inputs.highWater, shardSize });
    const hub = hubInfo(config, ipam.deviceIPs, inputs.deviceMACs ?? 'derived');
    const incomplete: { node: string; reason: string }[] = [];
    for (const r of ipam.rejected) problems.push({ node: r.node, reason: `held overlay IP ${r.ip} dropped: ${r.reason}` });
    problems.push(...ipam.unallocated);
    const peers: Peer[] = [];
    const ipv6NotRouted: string[] = [];
    const data = new Map<number, ConfigMapData>();
    const built = new Map<string, BuiltPeer>();
    for (const f of eligible) {
      const overlayIP = ipam.allocations.get(f.name);
      if (overlayIP === undefined) continue;
      const b = this.peer(f, overlayIP, podCIDRs.get(f.name) ?? [], { network, config, shardSize, paths });
      built.set(f.name, b);
      peers.push(b.peer);
      if (b.ipv6NotRouted) ipv6NotRouted.push(f.name);
      if (b.peer.podCIDRs.length === 0) incomplete.push({ node: f.name, reason: 'no pod CIDR known yet (from the configured pod-CIDR source): the device gets this node\'s tunnel entries but no route to its pods until it has one' });
      let d = data.get(b.shard);
      if (!d) data.set(b.shard, (d = {}));
      d[f.name] = b.encoded;
    }
    this.peers = built;
    const shards = new Map<string, ShardPlan>();
    for (const index of new Set([...data.keys(), ...ipam.highWater.keys()])) {
      shards.set(shardName(index, inputs.peersPrefix), { data: data.get(index) ?? {}, highWater: ipam.highWater.get(index) ?? 0 });
    }
    return { hub, peers, shards, problems, incomplete, capacity: ipam.capacity, ipv6NotRouted };
  }

  /** The settings of this pass; under settings other than the last pass's, no remembered peer is reused. */
  private settle(inputs: PlanInputs): { shardSize: number; routing: RoutingPolicy } {
    const shardSize = inputs.shardSize ?? PEERS_PER_SHARD;
    const routing = inputs.routing ?? VXLAN_ONLY;
    const context = JSON.stringify([inputs.config.overlayNetwork, inputs.config.overlayNetworkIPv6 ?? '', inputs.config.deviceVTEPs.length, shardSize, policyKey(routing)]);
    if (context !== this.context) {
      this.peers = new Map();
      this.context = context;
    }
    return { shardSize, routing };
  }

  /** The nodes' facts, oldest first; the order is reused while the list holds the same Node objects. */
  private sorted(nodes: readonly V1Node[], annotationKey: string, pathKey: string): NodeFacts[] {
    const prev = this.order;
    if (prev && prev.nodes.length === nodes.length && prev.sorted[0]?.annotationKey === annotationKey) {
      let same = true;
      for (let i = 0; i < nodes.length && same; i++) same = prev.nodes[i] === nodes[i];
      if (same) return prev.sorted;
    }
    const sorted = nodes.map((n) => this.factsOf(n, annotationKey, pathKey)).sort(byAge);
    this.order = { nodes, sorted };
    return sorted;
  }

  /** The underlay's family (the device VTEPs'); when it changes, the facts remembered hold the other family's addresses and are dropped. */
  private settleUnderlayFamily(deviceVTEPs: readonly string[]): IpFamily {
    const family = underlayFamilyOf(deviceVTEPs);
    if (family !== this.underlayFamily) {
      this.facts = new WeakMap();
      this.order = undefined;
      this.underlayFamily = family;
    }
    return family;
  }

  private factsOf(node: V1Node, annotationKey: string, pathKey: string): NodeFacts {
    const known = this.facts.get(node);
    if (known && known.annotationKey === annotationKey) return known;
    const t = node.metadata?.creationTimestamp;
    const f: NodeFacts = {
      name: node.metadata?.name ?? '', created: t ? new Date(t).getTime() : 0,
      underlayIP: internalIP(node, this.underlayFamily), annotationKey, annotated: allocatedOverlayIP(node, annotationKey),
      recordedPath: node.metadata?.annotations?.[pathKey] === 'direct' ? 'direct' : undefined,
    };
    this.facts.set(node, f);
    return f;
  }

  private peer(f: NodeFacts, overlayIP: string, cidrs: readonly string[], pass: { network: Cidr; config: OverlayConfig; shardSize: number; paths: PathChooser }): BuiltPeer {
    const underlayIP = f.underlayIP ?? '';
    const known = this.peers.get(f.name);
    const direct = pass.paths.pathFor(underlayIP, f.recordedPath) === 'direct';
    if (known && known.peer.underlayIP === underlayIP && known.peer.overlayIP === overlayIP && (known.peer.path === 'direct') === direct && sameList(known.cidrs, cidrs)) return known;
    const { config } = pass;
    // published as networks in canonical text (a Node may give host bits, and IPv6 in any of its spellings)
    const canonical = (list: readonly string[]): string[] => list.map((c) => {
      const parsed = this.memo.cidr(c);
      return parsed instanceof Error ? c : formatIpCidr(parsed.cidr);
    });
    const { v4, v6 } = cidrsByFamily(cidrs);
    const dual = config.overlayNetworkIPv6 === undefined ? {} : { overlayIPv6: twinAddress(config.overlayNetwork, config.overlayNetworkIPv6, overlayIP), podCIDRsIPv6: canonical(v6) };
    const peer: Peer = { node: f.name, underlayIP, overlayIP, vtepMAC: macFromOverlayIP(overlayIP), podCIDRs: canonical(v4), ...(direct ? { path: 'direct' as const } : {}), ...dual };
    return { cidrs, peer, encoded: encodePeer(peer), shard: Math.floor(hostIndex(pass.network, config.deviceVTEPs.length, overlayIP) / pass.shardSize), ipv6NotRouted: config.overlayNetworkIPv6 === undefined && v6.length > 0 };
  }
}

/** The plan for these inputs, worked out from scratch (CoordinatorPlanner remembers between passes). */
export function planCoordinator(inputs: PlanInputs): CoordinatorPlan {
  return new CoordinatorPlanner().plan(inputs);
}

export { dataPatch } from '../shared/tables.ts';
