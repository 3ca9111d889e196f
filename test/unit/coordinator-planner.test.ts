// The coordinator keeps one CoordinatorPlanner for its life: it remembers per node what it worked
// out and re-plans only what changed. Over random sequences of joins, leaves and changes (pod
// CIDRs, InternalIPs, annotations, the published table, settings), its answer must be exactly the
// answer planned from scratch for the same inputs, pass after pass.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { V1Node } from '@kubernetes/client-node';
import { CoordinatorPlanner, planCoordinator, type CoordinatorPlan, type OverlayConfig, type PlanInputs } from '../../coordinator/plan.ts';
import { podCIDRsBySource } from '../../coordinator/podcidr-sources.ts';
import { ANNOTATION_OVERLAY_IP, ANNOTATION_PATH } from '../../shared/keys.ts';
import { shardIndexOf } from '../../shared/tables.ts';
import type { RoutingPolicy } from '../../coordinator/routing.ts';

const NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
const UNDERLAYS = ['198.18.1.1', '198.18.1.2', '198.18.1.3', '198.18.2.1', '198.19.9.9', '198.18.16.5', 'garbage'];
// good ones, overlapping ones, one over the overlay network, one over a VTEP, one over an
// underlay address, one over the service CIDR, not CIDRs at all, host bits set; IPv6 ones alike
// (good, overlapping, over the IPv6 overlay network, host bits in upper case, not a CIDR)
const POD_CIDRS = ['10.1.0.0/24', '10.1.1.0/24', '10.1.0.0/16', '10.1.2.7/24', '198.18.16.0/24', '198.18.0.0/24', '198.18.1.0/28', '10.96.0.0/12', '10.2.0.0/24', 'nope', '10.3.0.0/33',
  'fd00:10::/64', 'fd00:10::/56', 'fd00:c0::/120', 'FD00:11::1/64', 'fd00:12::/129'];
const OVERLAY_IPS = ['198.18.16.2', '198.18.16.3', '198.18.16.9', '198.18.16.1', '198.18.17.2', '198.18.32.1', 'x'];
const CONFIGS: OverlayConfig[] = [
  { vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/28', deviceVTEPs: ['198.18.0.3'] },
  { vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/28', deviceVTEPs: ['198.18.0.3', '198.18.0.4'] },
  { vni: 4097, port: 4790, overlayNetwork: '198.18.16.0/29', deviceVTEPs: ['198.18.0.3'], mtu: 1400 },
  // dual-stack
  { vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/28', deviceVTEPs: ['198.18.0.3'], overlayNetworkIPv6: 'fd00:c0::/120' },
  { vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/28', deviceVTEPs: ['198.18.0.3', '198.18.0.4'], overlayNetworkIPv6: 'fd00:c0::/124' },
];
const ROUTINGS: RoutingPolicy[] = [
  { mode: 'vxlan', directSubnets: [] },
  { mode: 'direct', directSubnets: [] },
  { mode: 'auto', directSubnets: ['198.18.1.0/24'] },
  { mode: 'auto', directSubnets: ['198.18.2.0/24', '198.19.0.0/16'] },
  // the device's subnets not read yet: each node keeps the path its Node records
  { mode: 'auto', directSubnets: [], fromDevice: true, pending: true },
  { mode: 'auto', directSubnets: ['198.18.1.0/24'], fromDevice: true },
];

interface Cluster {
  nodes: Map<string, V1Node>;
  held: Map<string, string>;
  highWater: Map<number, number>;
  config: OverlayConfig;
  serviceCIDRs: string[] | undefined;
  shardSize: number;
  routing: RoutingPolicy;
  /** The order the watch cache lists the nodes in (not the planning order). */
  listing: string[];
}

type Op =
  | { op: 'join'; name: string; created: number; underlay: number; cidrs: number[] }
  /** A new Node, younger than every other (as a node that registers now is): the node-event path. */
  | { op: 'join-newest'; name: string; underlay: number; cidrs: number[] }
  /** A new Node, youngest, with an address and a pod CIDR of its own (nobody else's): a healthy join. */
  | { op: 'join-healthy'; name: string }
  | { op: 'leave'; name: string }
  | { op: 'cidrs'; name: string; cidrs: number[] }
  | { op: 'underlay'; name: string; underlay: number | null }
  | { op: 'annotate'; name: string; ip: number }
  | { op: 'record-path'; name: string; direct: boolean }
  | { op: 'publish' }
  | { op: 'lose-entry'; name: string }
  | { op: 'wrong-entry'; name: string; ip: number }
  | { op: 'config'; index: number; services: boolean; shardSize: number; routing: number }
  | { op: 'relist'; seed: number }
  | { op: 'same' };

const name = fc.constantFrom(...NAMES);
const cidrs = fc.array(fc.nat(POD_CIDRS.length - 1), { maxLength: 2 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('join' as const), name, created: fc.nat(3), underlay: fc.nat(UNDERLAYS.length - 1), cidrs }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('join-newest' as const), name, underlay: fc.nat(UNDERLAYS.length - 1), cidrs }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('leave' as const), name }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('cidrs' as const), name, cidrs }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('underlay' as const), name, underlay: fc.option(fc.nat(UNDERLAYS.length - 1)) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('annotate' as const), name, ip: fc.nat(OVERLAY_IPS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('record-path' as const), name, direct: fc.boolean() }) },
  { weight: 8, arbitrary: fc.constant({ op: 'publish' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('lose-entry' as const), name }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('wrong-entry' as const), name, ip: fc.nat(OVERLAY_IPS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('config' as const), index: fc.nat(CONFIGS.length - 1), services: fc.boolean(), shardSize: fc.constantFrom(2, 3, 1000), routing: fc.nat(ROUTINGS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('relist' as const), seed: fc.nat() }) },
  { weight: 2, arbitrary: fc.constant({ op: 'same' as const }) },
);

function nodeObject(n: string, created: number, underlay: string | undefined, podCIDRs: string[], annotation?: string): V1Node {
  return {
    metadata: { name: n, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, created)), ...(annotation !== undefined ? { annotations: { [ANNOTATION_OVERLAY_IP]: annotation } } : {}) },
    spec: { podCIDRs },
    status: { addresses: underlay !== undefined ? [{ type: 'InternalIP', address: underlay }, { type: 'Hostname', address: n }] : [{ type: 'Hostname', address: n }] },
  };
}

/** A changed Node is a new object, as the watch cache delivers it (never edited in place). */
function replaced(node: V1Node, change: (copy: V1Node) => void): V1Node {
  const copy = structuredClone(node);
  change(copy);
  return copy;
}

/** A Node's annotations after the coordinator (or someone) wrote its overlay IP or its path. */
function annotated(current: Record<string, string>, op: Extract<Op, { op: 'annotate' | 'record-path' }>): Record<string, string> {
  if (op.op === 'annotate') return { [ANNOTATION_OVERLAY_IP]: OVERLAY_IPS[op.ip]! };
  const { [ANNOTATION_PATH]: _, ...rest } = current;
  return op.direct ? { ...rest, [ANNOTATION_PATH]: 'direct' } : rest;
}

/** The watch cache lists the same nodes in another order (a re-list). */
function shuffled(listing: readonly string[], seed: number): string[] {
  const order = [...listing];
  let s = seed;
  for (let i = order.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

const addressesOf = (underlay: number | null): { type: string; address: string }[] => (underlay === null ? [] : [{ type: 'InternalIP', address: UNDERLAYS[underlay]! }]);

/** A node joins (at the age given, or younger than every other). */
function join(c: Cluster, op: Extract<Op, { op: 'join' | 'join-newest' | 'join-healthy' }>): void {
  const created = op.op === 'join' ? op.created : Math.max(3, ...[...c.nodes.values()].map((n) => Number(n.metadata?.creationTimestamp ?? 0) / 60_000 - Date.UTC(2026, 0, 1) / 60_000)) + 1;
  const i = NAMES.indexOf(op.name);
  const node = op.op === 'join-healthy'
    ? nodeObject(op.name, created, `198.18.3.${i + 1}`, [`10.50.${i}.0/24`, `fd00:50:${i}::/64`])
    : nodeObject(op.name, created, UNDERLAYS[op.underlay], op.cidrs.map((k) => POD_CIDRS[k]!));
  c.nodes.set(op.name, node);
  c.listing.push(op.name);
}

/** The table changes: the last plan published, an entry lost, an entry changed by someone else. */
function changeTable(c: Cluster, op: Extract<Op, { op: 'publish' | 'lose-entry' | 'wrong-entry' }>, last: CoordinatorPlan | undefined): void {
  switch (op.op) {
    case 'publish':
      // the coordinator wrote the last plan: the table now holds its allocations and marks
      if (!last) return;
      c.held = new Map(last.peers.map((p) => [p.node, p.overlayIP]));
      c.highWater = new Map([...last.shards].map(([shard, s]) => [shardIndexOf(shard) ?? 0, s.highWater]));
      return;
    case 'lose-entry':
      c.held = new Map(c.held);
      c.held.delete(op.name);
      return;
    case 'wrong-entry':
      c.held = new Map(c.held).set(op.name, OVERLAY_IPS[op.ip]!);
      return;
  }
}

/** A Node after a change (a new object, as the watch cache delivers it). */
function changed(existing: V1Node, op: Extract<Op, { op: 'cidrs' | 'underlay' | 'annotate' | 'record-path' }>): V1Node {
  switch (op.op) {
    case 'cidrs':
      return replaced(existing, (n) => void (n.spec = { podCIDRs: op.cidrs.map((i) => POD_CIDRS[i]!) }));
    case 'underlay':
      return replaced(existing, (n) => void (n.status = { addresses: addressesOf(op.underlay) }));
    default:
      return replaced(existing, (n) => void (n.metadata!.annotations = annotated(n.metadata!.annotations ?? {}, op)));
  }
}

function apply(c: Cluster, op: Op, last: CoordinatorPlan | undefined): void {
  const existing = 'name' in op ? c.nodes.get(op.name) : undefined;
  switch (op.op) {
    case 'join':
    case 'join-newest':
    case 'join-healthy':
      if (!existing) join(c, op);
      return;
    case 'leave':
      c.nodes.delete(op.name);
      c.listing = c.listing.filter((n) => n !== op.name);
      return;
    case 'cidrs':
    case 'underlay':
    case 'annotate':
    case 'record-path':
      if (existing) c.nodes.set(op.name, changed(existing, op));
      return;
    case 'publish':
    case 'lose-entry':
    case 'wrong-entry':
      changeTable(c, op, last);
      return;
    case 'config':
      c.config = CONFIGS[op.index]!;
      c.serviceCIDRs = op.services ? ['10.96.0.0/12'] : undefined;
      c.shardSize = op.shardSize;
      c.routing = ROUTINGS[op.routing]!;
      return;
    case 'relist':
      c.listing = shuffled(c.listing, op.seed);
      return;
    case 'same':
      return;
  }
}

function inputsOf(c: Cluster): PlanInputs {
  const nodes = c.listing.map((n) => c.nodes.get(n)!);
  return {
    // the table's maps are new objects only when the table changed (as the coordinator's are)
    config: c.config, nodes, podCIDRs: podCIDRsBySource('node', nodes, []), held: c.held, highWater: c.highWater, shardSize: c.shardSize, routing: c.routing,
    ...(c.serviceCIDRs ? { serviceCIDRs: c.serviceCIDRs } : {}),
  };
}

/** Plain data for a deep comparison (Maps as sorted entries). */
function comparable(p: CoordinatorPlan): unknown {
  return { ...p, shards: [...p.shards].sort(([a], [b]) => (a < b ? -1 : 1)) };
}

describe('CoordinatorPlanner: a node event re-plans that node, and the answer is the full plan\'s', () => {
  it('agrees with planning from scratch after every step of a random sequence of joins, leaves and changes', () => {
    const passes = { unchanged: 0, incremental: 0, full: 0 };
    fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
      const c: Cluster = { nodes: new Map(), held: new Map(), highWater: new Map(), config: CONFIGS[0]!, serviceCIDRs: undefined, shardSize: 3, routing: ROUTINGS[0]!, listing: [] };
      const planner = new CoordinatorPlanner();
      let last: CoordinatorPlan | undefined;
      for (const op of ops) {
        apply(c, op, last);
        const inputs = inputsOf(c);
        const remembered = planner.plan(inputs);
        expect(comparable(remembered), JSON.stringify(op)).toEqual(comparable(planCoordinator(inputs)));
        last = remembered;
      }
      passes.unchanged += planner.passes.unchanged;
      passes.incremental += planner.passes.incremental;
      passes.full += planner.passes.full;
    }), { numRuns: 400 });
    // the node-event path was taken (and checked) often, not only the full pass
    expect(passes.incremental).toBeGreaterThan(50);
    expect(passes.unchanged).toBeGreaterThan(500);
    expect(passes.full).toBeGreaterThan(1000);
  });

  it('agrees with planning from scratch in a mostly healthy cluster, where node events are planned node by node', () => {
    const healthy: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ op: fc.constant('join-healthy' as const), name }) },
      { weight: 4, arbitrary: fc.record({ op: fc.constant('leave' as const), name }) },
      { weight: 8, arbitrary: fc.constant({ op: 'publish' as const }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('annotate' as const), name, ip: fc.nat(OVERLAY_IPS.length - 1) }) },
      { weight: 1, arbitrary: opArb },
    );
    const passes = { unchanged: 0, incremental: 0, full: 0 };
    // most plans are published before the next event (as the coordinator does), some are not (a write failed)
    const step = fc.tuple(healthy, fc.nat(4).map((n) => n > 0));
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), fc.constantFrom(1, 3, 1000), (steps, shardSize) => {
      const c: Cluster = { nodes: new Map(), held: new Map(), highWater: new Map(), config: CONFIGS[3]!, serviceCIDRs: ['10.96.0.0/12'], shardSize, routing: ROUTINGS[0]!, listing: [] };
      const planner = new CoordinatorPlanner();
      let last: CoordinatorPlan | undefined;
      for (const [op, published] of steps) {
        apply(c, op, last);
        const inputs = inputsOf(c);
        const remembered = planner.plan(inputs);
        expect(comparable(remembered), JSON.stringify(op)).toEqual(comparable(planCoordinator(inputs)));
        last = remembered;
        if (published) apply(c, { op: 'publish' }, last);
      }
      passes.unchanged += planner.passes.unchanged;
      passes.incremental += planner.passes.incremental;
      passes.full += planner.passes.full;
    }), { numRuns: 300 });
    // every run starts with a full pass (300); most of the rest were planned node by node
    expect(passes.incremental).toBeGreaterThan(300);
  });

  it('plans a join and a leave node by node, sharing every other shard and peer, and afresh when asked', () => {
    const c: Cluster = { nodes: new Map(), held: new Map(), highWater: new Map(), config: CONFIGS[0]!, serviceCIDRs: undefined, shardSize: 2, routing: ROUTINGS[0]!, listing: [] };
    for (const [i, n] of ['a', 'b', 'c'].entries()) apply(c, { op: 'join', name: n, created: i, underlay: i, cidrs: [[0, 1, 8][i]!] }, undefined);
    const planner = new CoordinatorPlanner();
    const first = planner.plan(inputsOf(c));
    apply(c, { op: 'publish' }, first);
    apply(c, { op: 'join-newest', name: 'd', underlay: 3, cidrs: [11] }, first);
    const joined = planner.plan(inputsOf(c));
    expect(planner.passes).toEqual({ unchanged: 0, incremental: 1, full: 1 });
    expect(joined.peers.map((p) => p.node)).toEqual(['a', 'b', 'c', 'd']);
    // a and b live in shard 0: untouched, the very same object
    expect(joined.shards.get('chorus-kube-router-peers-0')).toBe(first.shards.get('chorus-kube-router-peers-0'));
    expect(joined.shards.get('chorus-kube-router-peers-1')).not.toBe(first.shards.get('chorus-kube-router-peers-1'));
    apply(c, { op: 'publish' }, joined);
    apply(c, { op: 'leave', name: 'a' }, joined);
    const left = planner.plan(inputsOf(c));
    expect(planner.passes).toEqual({ unchanged: 0, incremental: 2, full: 1 });
    expect(left.peers.map((p) => p.node)).toEqual(['b', 'c', 'd']);
    expect(comparable(planner.plan(inputsOf(c), { full: true }))).toEqual(comparable(left));
    expect(planner.passes).toEqual({ unchanged: 0, incremental: 2, full: 2 });
  });

  it('hands back the same peer object for a node that did not change, and a new one for a node that did', () => {
    const c: Cluster = { nodes: new Map(), held: new Map(), highWater: new Map(), config: CONFIGS[0]!, serviceCIDRs: undefined, shardSize: 1000, routing: ROUTINGS[0]!, listing: [] };
    apply(c, { op: 'join', name: 'a', created: 0, underlay: 0, cidrs: [0] }, undefined);
    apply(c, { op: 'join', name: 'b', created: 1, underlay: 1, cidrs: [1] }, undefined);
    const planner = new CoordinatorPlanner();
    const first = planner.plan(inputsOf(c));
    apply(c, { op: 'cidrs', name: 'b', cidrs: [8] }, first);
    const second = planner.plan(inputsOf(c));
    expect(second.peers[0]).toBe(first.peers[0]);
    expect(second.peers[1]).not.toBe(first.peers[1]);
    expect(second.peers[1]?.podCIDRs).toEqual(['10.2.0.0/24']);
  });
});
