/**
 * Coordinator planning, pure: (Nodes, their pod CIDRs, held allocations, config) -> hub info,
 * peers and the desired content of every peer-table shard, plus what could not be served and
 * why, or a refusal when the configuration conflicts with the cluster.
 */
import type { V1Node } from '@kubernetes/client-node';
import { parseCidr, type Cidr } from '../shared/ipv4.ts';
import { CidrMemo, PodCidrLedger, type PodCidrRules } from '../shared/pod-cidrs.ts';
import { cidrsByFamily, formatIpCidr, twinAddress, type IpFamily } from '../shared/ip.ts';
import { macFromOverlayIP } from '../shared/mac.ts';
import { allocatedOverlayIP, internalIP, underlayFamilyOf } from '../shared/node-facts.ts';
import { ANNOTATION_OVERLAY_IP, ANNOTATION_PATH } from '../shared/keys.ts';
import { PEERS_PER_SHARD, encodePeer, shardName, type ConfigMapData, type HubInfo, type Peer, type PeerPath } from '../shared/tables.ts';
import { allocate, allocateNext, hostIndex, release, type IpamLedger, type IpamResult } from './ipam.ts';
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

/** Why a node without an InternalIP of the underlay's family is not in the overlay yet. */
const noUnderlayAddress = (family: IpFamily): string => `no IPv${family} InternalIP in status.addresses yet${family === 6 ? ' (the underlay is IPv6: --device-vtep is)' : ''}`;

const NO_POD_CIDR = 'no pod CIDR known yet (from the configured pod-CIDR source): the device gets this node\'s tunnel entries but no route to its pods until it has one';
const NO_CIDRS: readonly string[] = [];

/** One node as the last pass saw it. */
interface KeptNode {
  node: V1Node;
  cidrs: readonly string[];
  facts: NodeFacts;
}

/**
 * What the last full pass worked out, kept up to date by the node events after it: enough to
 * plan a join or a leave by changing only what that node touches.
 */
interface Kept {
  /** Everything besides the nodes the plan depends on: another key plans afresh. */
  readonly key: string;
  readonly nodes: Map<string, KeptNode>;
  /** Every node's facts, oldest first. */
  readonly sorted: NodeFacts[];
  /** The table's allocations and marks as last read (by object: a new read is compared). */
  held: ReadonlyMap<string, string>;
  highWater: ReadonlyMap<number, number>;
  /**
   * Whether that table holds every allocation and mark of the plan (it was published). Until it
   * does, a node event is planned afresh: what the plan gave a node not yet recorded is not the
   * table's to keep (a node that joins and leaves before its entry is written leaves no mark).
   */
  synced: boolean;
  readonly ledger: PodCidrLedger;
  readonly ipam: IpamLedger;
  /** Each served node's overlay address. */
  readonly allocations: Map<string, string>;
  plan: CoordinatorPlan;
}

/** The nodes with an underlay address, and a problem for each of the others (in the order given). */
function withAddresses(sorted: readonly NodeFacts[], family: IpFamily): { problems: { node: string; reason: string }[]; addressed: NodeFacts[] } {
  const problems: { node: string; reason: string }[] = [];
  const addressed: NodeFacts[] = [];
  const noAddress = noUnderlayAddress(family);
  for (const f of sorted) {
    if (f.underlayIP === undefined) problems.push({ node: f.name, reason: noAddress });
    else addressed.push(f);
  }
  return { problems, addressed };
}

/** Whether the table holds every allocation and exactly the marks of a plan. */
function holdsPlan(held: ReadonlyMap<string, string>, highWater: ReadonlyMap<number, number>, allocations: ReadonlyMap<string, string>, marks: ReadonlyMap<number, number>): boolean {
  for (const [name, ip] of allocations) if (held.get(name) !== ip) return false;
  if (highWater.size !== marks.size) return false;
  for (const [shard, mark] of highWater) if (marks.get(shard) !== mark) return false;
  return true;
}

/** What a pass needs to build peers. */
interface PeerPass { network: Cidr; config: OverlayConfig; shardSize: number; paths: PathChooser }

/**
 * Plans the coordinator's tables, remembering what it worked out. A node that joins (younger than
 * every other, as a new Node is) or leaves costs the work of that node: its pod CIDRs checked
 * against what the others claim, its address from where the allocation left off, its peer entry,
 * the shard it lives in; every other shard, peer and list is the same object as before. Anything
 * else (a node's addresses, pod CIDRs or age changed, a refused node, a full pool, a table that
 * disagrees with what was planned, other settings) plans every node afresh, reusing per node what
 * did not change (facts per Node object, parses per pod CIDR, the peer entry and its encoding).
 * Either way the answer is exactly planCoordinator's for the same inputs (a property test runs both
 * over random sequences of joins, leaves and changes); `full` forces the full pass (the coordinator
 * asks for one at every resync, a backstop). The coordinator keeps one for its life.
 */
export class CoordinatorPlanner {
  private facts = new WeakMap<V1Node, NodeFacts>();
  private order: { nodes: readonly V1Node[]; sorted: NodeFacts[] } | undefined;
  /** The underlay's family (that of the device VTEPs): which InternalIP of a node is its VTEP. */
  private underlayFamily: IpFamily = 4;
  private peers = new Map<string, BuiltPeer>();
  private readonly memo = new CidrMemo();
  /** The key (keyOf) the remembered peers were built under: under another, nothing is reused. */
  private context = '';
  private kept: Kept | undefined;
  /** Passes that found nothing to plan, planned node by node, and planned afresh (for the benchmark and tests). */
  readonly passes = { unchanged: 0, incremental: 0, full: 0 };

  plan(inputs: PlanInputs, opts: { full?: boolean } = {}): CoordinatorPlan {
    const key = this.keyOf(inputs);
    if (opts.full !== true && this.kept?.key === key) {
      const before = this.kept.plan;
      const plan = this.planEvents(this.kept, inputs);
      if (plan) {
        if (plan === before) this.passes.unchanged++;
        else this.passes.incremental++;
        return plan;
      }
    }
    this.passes.full++;
    return this.planAll(inputs, key);
  }

  /** Everything a kept state depends on besides the nodes and the table. */
  private keyOf(inputs: PlanInputs): string {
    const c = inputs.config;
    return JSON.stringify([c.vni, c.port, c.overlayNetwork, c.overlayNetworkIPv6 ?? '', c.deviceVTEPs, c.mtu ?? 0, inputs.shardSize ?? PEERS_PER_SHARD, inputs.peersPrefix ?? '',
      inputs.serviceCIDRs ?? [], inputs.podRanges ?? [], inputs.annotationKey ?? '', inputs.deviceMACs ?? '', policyKey(inputs.routing ?? VXLAN_ONLY), inputs.pathAnnotationKey ?? '']);
  }

  private planAll(inputs: PlanInputs, key: string): CoordinatorPlan {
    this.kept = undefined;
    const { config, podCIDRs } = inputs;
    const { shardSize, routing } = this.settle(inputs, key);
    const annotationKey = inputs.annotationKey ?? ANNOTATION_OVERLAY_IP;
    const pathKey = inputs.pathAnnotationKey ?? ANNOTATION_PATH;
    const network: Cidr = parseCidr(config.overlayNetwork);
    const family = this.settleUnderlayFamily(config.deviceVTEPs);
    const paths = new PathChooser(routing);
    const sorted = this.sorted(inputs.nodes, annotationKey, pathKey);
    const { problems, addressed } = withAddresses(sorted, family);
    // one bad node is left out (with its reason), never the whole plan
    const { refused, ledger } = PodCidrLedger.check(addressed.map((f) => ({ node: f.name, underlayIP: f.underlayIP, podCIDRs: podCIDRs.get(f.name) ?? NO_CIDRS })), this.rulesOf(inputs), this.memo);
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
      const b = this.peer(f, overlayIP, podCIDRs.get(f.name) ?? NO_CIDRS, { network, config, shardSize, paths });
      built.set(f.name, b);
      peers.push(b.peer);
      if (b.ipv6NotRouted) ipv6NotRouted.push(f.name);
      if (b.peer.podCIDRs.length === 0) incomplete.push({ node: f.name, reason: NO_POD_CIDR });
      let d = data.get(b.shard);
      if (!d) data.set(b.shard, (d = {}));
      d[f.name] = b.encoded;
    }
    this.peers = built;
    const shards = new Map<string, ShardPlan>();
    for (const index of new Set([...data.keys(), ...ipam.highWater.keys()])) {
      shards.set(shardName(index, inputs.peersPrefix), { data: data.get(index) ?? {}, highWater: ipam.highWater.get(index) ?? 0 });
    }
    const plan: CoordinatorPlan = { hub, peers, shards, problems, incomplete, capacity: ipam.capacity, ipv6NotRouted };
    // node events go on from here only while every addressed node is served as the table says
    // (nothing refused, rejected or unallocated: a leave could change those) and no annotation
    // stands in for the table (its allocations then are the table's)
    if (refused.size === 0 && ipam.rejected.length === 0 && ipam.unallocated.length === 0 && held === inputs.held) this.keep(inputs, key, sorted, ledger, ipam, plan);
    return plan;
  }

  /** Keeps what a full pass worked out, for the node events after it. */
  private keep(inputs: PlanInputs, key: string, sorted: readonly NodeFacts[], ledger: PodCidrLedger, ipam: IpamResult, plan: CoordinatorPlan): void {
    const annotationKey = inputs.annotationKey ?? ANNOTATION_OVERLAY_IP;
    const pathKey = inputs.pathAnnotationKey ?? ANNOTATION_PATH;
    const nodes = new Map<string, KeptNode>();
    for (const n of inputs.nodes) {
      const name = n.metadata?.name ?? '';
      nodes.set(name, { node: n, cidrs: inputs.podCIDRs.get(name) ?? NO_CIDRS, facts: this.factsOf(n, annotationKey, pathKey) });
    }
    const allocations = new Map(ipam.allocations);
    const synced = holdsPlan(inputs.held, inputs.highWater, allocations, ipam.ledger.highWater);
    this.kept = { key, nodes, sorted: [...sorted], held: inputs.held, highWater: inputs.highWater, synced, ledger, ipam: ipam.ledger, allocations, plan };
  }

  private rulesOf(inputs: PlanInputs): PodCidrRules {
    const { config } = inputs;
    return { overlayNetwork: config.overlayNetwork, overlayNetworkIPv6: config.overlayNetworkIPv6, deviceVTEPs: config.deviceVTEPs, ...(inputs.serviceCIDRs ? { serviceCIDRs: inputs.serviceCIDRs } : {}), ...(inputs.podRanges ? { podRanges: inputs.podRanges } : {}) };
  }

  /**
   * The plan when what changed since the kept state is nodes joining (each younger than every
   * node before it) and leaving, or nothing that planning reads; undefined: plan afresh.
   */
  private planEvents(kept: Kept, inputs: PlanInputs): CoordinatorPlan | undefined {
    const changes = this.changesSince(kept, inputs);
    if (!changes || !this.tableAgrees(kept, inputs)) return undefined;
    const { joined, left } = changes;
    if (joined.length === 0 && left.length === 0) return kept.plan;
    const annotationKey = inputs.annotationKey ?? ANNOTATION_OVERLAY_IP;
    const pathKey = inputs.pathAnnotationKey ?? ANNOTATION_PATH;
    const facts = joined.map((n) => this.factsOf(n, annotationKey, pathKey)).sort(byAge);
    const youngest = kept.sorted[kept.sorted.length - 1];
    // a joining node older than one there, or one the table or an annotation already gives an
    // address, is planned afresh
    if (facts.some((f) => f.annotated !== undefined || inputs.held.has(f.name)) || (youngest && facts[0] && byAge(youngest, facts[0]) >= 0)) return undefined;
    const edit = new PlanEdit(kept.plan, inputs.peersPrefix);
    for (const name of left) this.leave(kept, name, edit);
    const pass = this.peerPass(inputs);
    const noAddress = noUnderlayAddress(this.underlayFamily);
    for (const f of facts) {
      const n = joined.find((j) => j.metadata?.name === f.name) as V1Node;
      const cidrs = inputs.podCIDRs.get(f.name) ?? NO_CIDRS;
      if (!this.join(kept, f, cidrs, pass, noAddress, edit)) return undefined;
      kept.nodes.set(f.name, { node: n, cidrs, facts: f });
      kept.sorted.push(f);
    }
    kept.plan = edit.done(kept.ipam.highWater);
    // a joined node's address is not in the table until this plan is published
    if (facts.some((f) => kept.allocations.has(f.name))) kept.synced = false;
    return kept.plan;
  }

  /**
   * The Nodes that joined and left since the kept state; undefined when a node changed in a way
   * planning reads (its addresses, age, recorded path or pod CIDRs). A Node whose only change is
   * the annotation recording the address it has is taken as it is.
   */
  private changesSince(kept: Kept, inputs: PlanInputs): { joined: V1Node[]; left: string[] } | undefined {
    const joined: V1Node[] = [];
    let present = 0;
    const annotationKey = inputs.annotationKey ?? ANNOTATION_OVERLAY_IP;
    const pathKey = inputs.pathAnnotationKey ?? ANNOTATION_PATH;
    for (const n of inputs.nodes) {
      const name = n.metadata?.name ?? '';
      const k = kept.nodes.get(name);
      if (!k) {
        joined.push(n);
        continue;
      }
      present++;
      const cidrs = inputs.podCIDRs.get(name) ?? NO_CIDRS;
      if (k.node === n && k.cidrs === cidrs) continue;
      if (!sameList(k.cidrs, cidrs)) return undefined;
      const f = this.factsOf(n, annotationKey, pathKey);
      const was = k.facts;
      if (f.underlayIP !== was.underlayIP || f.created !== was.created || f.recordedPath !== was.recordedPath) return undefined;
      if (f.annotated !== was.annotated && f.annotated !== kept.allocations.get(name)) return undefined;
      k.node = n;
      k.cidrs = cidrs;
    }
    const left: string[] = [];
    if (present < kept.nodes.size) {
      const names = new Set(inputs.nodes.map((n) => n.metadata?.name ?? ''));
      for (const name of kept.nodes.keys()) if (!names.has(name)) left.push(name);
    }
    return { joined, left };
  }

  /**
   * Whether the table (allocations and marks) is what the kept state was planned from, or what
   * it planned (its last plan published): anything else means someone changed the table.
   */
  private tableAgrees(kept: Kept, inputs: PlanInputs): boolean {
    if (inputs.held === kept.held && inputs.highWater === kept.highWater) return kept.synced;
    kept.held = inputs.held;
    kept.highWater = inputs.highWater;
    kept.synced = holdsPlan(inputs.held, inputs.highWater, kept.allocations, kept.ipam.highWater);
    return kept.synced;
  }

  private peerPass(inputs: PlanInputs): PeerPass {
    const { config } = inputs;
    return { network: parseCidr(config.overlayNetwork), config, shardSize: inputs.shardSize ?? PEERS_PER_SHARD, paths: new PathChooser(inputs.routing ?? VXLAN_ONLY) };
  }

  private leave(kept: Kept, name: string, edit: PlanEdit): void {
    const k = kept.nodes.get(name);
    if (!k) return;
    kept.nodes.delete(name);
    const at = kept.sorted.indexOf(k.facts);
    if (at >= 0) kept.sorted.splice(at, 1);
    const overlayIP = kept.allocations.get(name);
    if (k.facts.underlayIP === undefined || overlayIP === undefined) {
      edit.dropProblem(name);
      return;
    }
    kept.ledger.remove({ node: name, underlayIP: k.facts.underlayIP, podCIDRs: k.cidrs });
    release(kept.ipam, overlayIP);
    kept.allocations.delete(name);
    const b = this.peers.get(name);
    this.peers.delete(name);
    if (b) edit.dropPeer(b);
  }

  /** Plans a joining node, youngest of all; false: it cannot be planned on its own. */
  private join(kept: Kept, f: NodeFacts, cidrs: readonly string[], pass: PeerPass, noAddress: string, edit: PlanEdit): boolean {
    if (f.underlayIP === undefined) {
      edit.addProblem({ node: f.name, reason: noAddress });
      return true;
    }
    if (kept.ledger.append({ node: f.name, underlayIP: f.underlayIP, podCIDRs: cidrs }) !== 'ok') return false;
    const overlayIP = allocateNext(kept.ipam);
    if (overlayIP === undefined) return false;
    kept.allocations.set(f.name, overlayIP);
    const b = this.peer(f, overlayIP, cidrs, pass);
    this.peers.set(f.name, b);
    edit.addPeer(b);
    return true;
  }

  /** The settings of this pass; under settings other than the last pass's (another key), no remembered peer is reused. */
  private settle(inputs: PlanInputs, key: string): { shardSize: number; routing: RoutingPolicy } {
    if (key !== this.context) {
      this.peers = new Map();
      this.context = key;
    }
    return { shardSize: inputs.shardSize ?? PEERS_PER_SHARD, routing: inputs.routing ?? VXLAN_ONLY };
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

/** How a plan planned node by node differs from the plan it was planned from (the same hub). */
export interface PlanChanges {
  readonly base: CoordinatorPlan;
  /** How many plans, this one included, were planned node by node since the last full plan (at most MAX_CHANGE_CHAIN). */
  readonly depth: number;
  /** Peers of `base` that are not in this plan, and peers of this plan that are not in `base`. */
  readonly left: readonly Peer[];
  readonly joined: readonly Peer[];
}

const changesOfPlan = new WeakMap<CoordinatorPlan, PlanChanges>();
/**
 * Each plan's changes hold the plan before it: a chain is cut after this many, so a burst of node
 * events (or a device down meanwhile) keeps at most this many plans alive, not every one since
 * the last resync. A plan past it has no changes recorded: the device loop diffs it in full.
 */
export const MAX_CHANGE_CHAIN = 16;

/** What changed from the plan this one was planned from, when it was planned node by node (else undefined). */
export function planChanges(plan: CoordinatorPlan): PlanChanges | undefined {
  return changesOfPlan.get(plan);
}

/**
 * A plan changed node by node: its lists are copied once, and only the shards a node lives in
 * are rebuilt; every other shard is the very object it was (the publisher and the device then see
 * by object what did not change).
 */
class PlanEdit {
  private readonly base: CoordinatorPlan;
  private peers: Peer[] | undefined;
  private problems: { node: string; reason: string }[] | undefined;
  private incomplete: { node: string; reason: string }[] | undefined;
  private ipv6NotRouted: string[] | undefined;
  private readonly peersPrefix: string | undefined;
  private readonly data = new Map<number, ConfigMapData>();
  private readonly left: Peer[] = [];
  private readonly joined: Peer[] = [];

  constructor(base: CoordinatorPlan, peersPrefix: string | undefined) {
    this.base = base;
    this.peersPrefix = peersPrefix;
  }

  dropProblem(node: string): void {
    this.problems = (this.problems ?? [...this.base.problems]).filter((p) => p.node !== node);
  }

  addProblem(p: { node: string; reason: string }): void {
    (this.problems ??= [...this.base.problems]).push(p);
  }

  dropPeer(b: BuiltPeer): void {
    const peers = (this.peers ??= [...this.base.peers]);
    const at = peers.indexOf(b.peer);
    if (at >= 0) peers.splice(at, 1);
    this.left.push(b.peer);
    const node = b.peer.node;
    if (b.peer.podCIDRs.length === 0) this.incomplete = (this.incomplete ?? [...this.base.incomplete]).filter((p) => p.node !== node);
    if (b.ipv6NotRouted) this.ipv6NotRouted = (this.ipv6NotRouted ?? [...this.base.ipv6NotRouted]).filter((n) => n !== node);
    delete this.shard(b.shard)[node];
  }

  addPeer(b: BuiltPeer): void {
    (this.peers ??= [...this.base.peers]).push(b.peer);
    this.joined.push(b.peer);
    const node = b.peer.node;
    if (b.peer.podCIDRs.length === 0) (this.incomplete ??= [...this.base.incomplete]).push({ node, reason: NO_POD_CIDR });
    if (b.ipv6NotRouted) (this.ipv6NotRouted ??= [...this.base.ipv6NotRouted]).push(node);
    this.shard(b.shard)[node] = b.encoded;
  }

  /** The shard's data, copied from the plan's on first change. */
  private shard(index: number): ConfigMapData {
    let d = this.data.get(index);
    if (!d) {
      d = { ...(this.base.shards.get(shardName(index, this.peersPrefix))?.data ?? {}) };
      this.data.set(index, d);
    }
    return d;
  }

  /** The changed plan; `highWater` is the allocation's, by shard index. */
  done(highWater: ReadonlyMap<number, number>): CoordinatorPlan {
    const shards = new Map(this.base.shards);
    for (const [index, mark] of highWater) {
      const name = shardName(index, this.peersPrefix);
      const was = shards.get(name);
      const data = this.data.get(index);
      if (data !== undefined || was?.highWater !== mark) shards.set(name, { data: data ?? was?.data ?? {}, highWater: mark });
    }
    for (const [index, data] of this.data) if (!highWater.has(index)) shards.set(shardName(index, this.peersPrefix), { data, highWater: 0 });
    const b = this.base;
    const plan: CoordinatorPlan = { hub: b.hub, peers: this.peers ?? b.peers, shards, problems: this.problems ?? b.problems, incomplete: this.incomplete ?? b.incomplete, capacity: b.capacity, ipv6NotRouted: this.ipv6NotRouted ?? b.ipv6NotRouted };
    const depth = (changesOfPlan.get(b)?.depth ?? 0) + 1;
    if (depth <= MAX_CHANGE_CHAIN) changesOfPlan.set(plan, { base: b, depth, left: this.left, joined: this.joined });
    return plan;
  }
}

/** The plan for these inputs, worked out from scratch (CoordinatorPlanner remembers between passes). */
export function planCoordinator(inputs: PlanInputs): CoordinatorPlan {
  return new CoordinatorPlanner().plan(inputs);
}

export { dataPatch } from '../shared/tables.ts';
