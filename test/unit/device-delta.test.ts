// The device loop diffs a plan planned node by node from its changed peers alone (DeviceReconciler,
// deltaOfPeers): that is right only if the plan's desired entries are the entries of the plan it was
// planned from, less those of the peers that left, plus those of the peers that joined, as the
// very same objects. Over random joins and leaves, for both drivers' entries, they must be.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { V1Node } from '@kubernetes/client-node';
import { CoordinatorPlanner, MAX_CHANGE_CHAIN, planChanges, type CoordinatorPlan } from '../../coordinator/plan.ts';
import { podCIDRsBySource } from '../../coordinator/podcidr-sources.ts';
import { PeerEntries, entryId, type DeviceEntry } from '../../coordinator/drivers/driver.ts';
import * as citrix from '../../coordinator/drivers/citrix/objects.ts';
import * as f5 from '../../coordinator/drivers/f5/objects.ts';
import { shardIndexOf } from '../../shared/tables.ts';

const CITRIX: citrix.CitrixLayout = { vni: 4096, overlayNetwork: '198.18.16.0/24', overlayNetworkIPv6: 'fd00:c0::/120', neighbours: 'arp', routing: 'route', clusterId: 'c1' };
const F5: f5.F5Layout = { partition: 'Common', namePrefix: 'chorus', routing: 'gateway', allowService: 'default', trafficGroup: 'traffic-group-1', clusterId: 'c1' };

const drivers: { name: string; desired: (plan: CoordinatorPlan, cache: PeerEntries) => readonly DeviceEntry[]; peer: (plan: CoordinatorPlan, cache: PeerEntries, p: CoordinatorPlan['peers'][number]) => readonly DeviceEntry[] }[] = [
  { name: 'citrix', desired: (plan, cache) => citrix.desiredEntries(plan, CITRIX, cache), peer: (plan, cache, p) => citrix.desiredPeerEntries(plan, CITRIX, cache, p) },
  { name: 'f5', desired: (plan, cache) => f5.desiredEntries(plan, F5, cache), peer: (_plan, cache, p) => f5.desiredPeerEntries(F5, cache, p) },
];

const node = (i: number): V1Node => ({
  metadata: { name: `n${i}`, creationTimestamp: new Date(Date.UTC(2026, 0, 1) + i * 60_000) },
  spec: { podCIDRs: [`10.60.${i}.0/24`, `fd00:60:${i}::/64`] },
  status: { addresses: [{ type: 'InternalIP', address: `198.18.4.${i + 1}` }] },
});

describe('a plan planned node by node: its device entries are the base\'s, less the leavers\', plus the joiners\'', () => {
  for (const d of drivers) {
    it(`${d.name}: over random joins and leaves, as the very same objects`, () => {
      // true: a new node joins (the next number); false: the oldest leaves
      fc.assert(fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 40 }), (steps) => {
        const planner = new CoordinatorPlanner();
        const cache = new PeerEntries();
        const config = { vni: 4096, port: 4789, overlayNetwork: CITRIX.overlayNetwork, deviceVTEPs: ['198.18.0.3'], overlayNetworkIPv6: 'fd00:c0::/120' };
        let nodes: V1Node[] = [node(0), node(1)];
        let next = 2;
        let held = new Map<string, string>();
        let highWater = new Map<number, number>();
        for (const join of steps) {
          const plan = planner.plan({ config, nodes, podCIDRs: podCIDRsBySource('node', nodes, []), held, highWater, shardSize: 3 });
          const base = planChanges(plan)?.base;
          const before = base ? new Set(d.desired(base, cache)) : undefined;
          const now = d.desired(plan, cache);
          const c = planChanges(plan);
          if (c && before) {
            for (const p of c.left) for (const e of d.peer(c.base, cache, p)) expect(before.delete(e)).toBe(true);
            for (const p of c.joined) for (const e of d.peer(plan, cache, p)) before.add(e);
            // the same entries; a node's as the very same objects (the device-wide ones are rebuilt
            // each time, and the reconciler keeps the ones it has, compared by id)
            expect(new Set([...before].map(entryId))).toEqual(new Set(now.map(entryId)));
            expect(now.filter((e) => e.node !== undefined).every((e) => before.has(e))).toBe(true);
          }
          // published, then the next event
          held = new Map(plan.peers.map((p) => [p.node, p.overlayIP]));
          highWater = new Map([...plan.shards].map(([s, x]) => [shardIndexOf(s) ?? 0, x.highWater]));
          nodes = join ? [...nodes, node(next++)] : nodes.slice(1);
        }
        return true;
      }), { numRuns: 100 });
      // and the node-by-node path was taken: a join after a full pass
      const planner = new CoordinatorPlanner();
      const config = { vni: 4096, port: 4789, overlayNetwork: CITRIX.overlayNetwork, deviceVTEPs: ['198.18.0.3'] };
      const first = planner.plan({ config, nodes: [node(0)], podCIDRs: podCIDRsBySource('node', [node(0)], []), held: new Map(), highWater: new Map() });
      const held = new Map(first.peers.map((p) => [p.node, p.overlayIP]));
      const highWater = new Map([...first.shards].map(([s, x]) => [shardIndexOf(s) ?? 0, x.highWater]));
      const second = planner.plan({ config, nodes: [node(0), node(1)], podCIDRs: podCIDRsBySource('node', [node(0), node(1)], []), held, highWater });
      expect(planChanges(second)).toMatchObject({ base: first, left: [], joined: [second.peers[1]] });
    });
  }

  it(`a chain of plans planned node by node is cut after ${MAX_CHANGE_CHAIN} (a burst of joins keeps that many plans alive, not all)`, () => {
    const planner = new CoordinatorPlanner();
    const config = { vni: 4096, port: 4789, overlayNetwork: CITRIX.overlayNetwork, deviceVTEPs: ['198.18.0.3'] };
    let nodes = [node(0)];
    let held = new Map<string, string>();
    let highWater = new Map<number, number>();
    const depths: (number | undefined)[] = [];
    for (let i = 1; i <= MAX_CHANGE_CHAIN + 3; i++) {
      const plan = planner.plan({ config, nodes, podCIDRs: podCIDRsBySource('node', nodes, []), held, highWater });
      depths.push(planChanges(plan)?.depth);
      held = new Map(plan.peers.map((p) => [p.node, p.overlayIP]));
      highWater = new Map([...plan.shards].map(([s, x]) => [shardIndexOf(s) ?? 0, x.highWater]));
      nodes = [...nodes, node(i)];
    }
    // the first plan is full; then 1..MAX, one without (cut), and counting again
    expect(depths).toEqual([undefined, ...Array.from({ length: MAX_CHANGE_CHAIN }, (_, i) => i + 1), undefined, 1]);
  });
});
