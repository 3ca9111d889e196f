import { describe, expect, it } from 'vitest';
import type { V1Node } from '@kubernetes/client-node';
import { dataPatch, planCoordinator as planWith, type OverlayConfig } from '../../coordinator/plan.ts';
import { podCIDRsBySource } from '../../coordinator/podcidr-sources.ts';
import { decodeHubInfo, decodePeer, encodeHubInfo, PEERS_PER_SHARD } from '../../shared/tables.ts';

function node(name: string, ip: string | undefined, podCIDRs: string[] = [], created = '2026-01-01T00:00:00Z'): V1Node {
  return {
    metadata: { name, creationTimestamp: new Date(created) },
    spec: { podCIDRs },
    status: { addresses: ip ? [{ type: 'InternalIP', address: ip }] : [] },
  };
}

const config = { vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'] };

function planCoordinator(c: OverlayConfig, nodes: V1Node[], held: Map<string, string>): ReturnType<typeof planWith> {
  return planWith({ config: c, nodes, podCIDRs: podCIDRsBySource('node', nodes, []), held, highWater: new Map() });
}

describe('coordinator plan', () => {
  it('publishes hub info with the device overlay IP and one peer per node with its pod CIDRs', () => {
    const plan = planCoordinator(config, [node('n1', '198.18.1.1', ['198.19.0.0/24'])], new Map());
    expect(decodeHubInfo({ schemaVersion: '1', vni: '4096', port: '4789', overlayNetwork: '198.18.16.0/20', deviceVTEPs: '198.18.0.3', deviceOverlayIPs: '198.18.16.1', deviceMACs: '02:c4:c6:12:10:01' })).toEqual(plan.hub);
    expect(plan.peers).toEqual([{ node: 'n1', underlayIP: '198.18.1.1', overlayIP: '198.18.16.2', vtepMAC: '02:c4:c6:12:10:02', podCIDRs: ['198.19.0.0/24'] }]);
    const shard = plan.shards.get('chorus-kube-router-peers-0');
    expect(decodePeer('n1', shard?.data.n1 ?? '')).toEqual(plan.peers[0]);
    expect(shard?.highWater).toBe(1);
  });

  it('skips a node without an InternalIP and says why', () => {
    const plan = planCoordinator(config, [node('n1', undefined)], new Map());
    expect(plan.peers).toEqual([]);
    expect(plan.problems).toEqual([{ node: 'n1', reason: 'no IPv4 InternalIP in status.addresses yet' }]);
  });

  it('on an IPv6 underlay (IPv6 VTEPs) publishes each node\'s IPv6 InternalIP as its underlay address, schema 2, and says so of a node without one', () => {
    const dual = (name: string, v4: string, v6?: string): V1Node => ({ ...node(name, v4, ['198.19.0.0/24']), status: { addresses: [{ type: 'InternalIP', address: v4 }, ...(v6 ? [{ type: 'InternalIP', address: v6 }] : [])] } });
    const plan = planCoordinator({ ...config, deviceVTEPs: ['2001:db8:18::3'] }, [dual('n1', '198.18.1.1', '2001:db8:18::1:1'), dual('n2', '198.18.1.2')], new Map());
    expect(plan.peers.map((p) => `${p.node} ${p.underlayIP}`)).toEqual(['n1 2001:db8:18::1:1']);
    expect(plan.problems).toEqual([{ node: 'n2', reason: 'no IPv6 InternalIP in status.addresses yet (the underlay is IPv6: --device-vtep is)' }]);
    expect(plan.hub.deviceVTEPs).toEqual(['2001:db8:18::3']);
    expect(encodeHubInfo(plan.hub).schemaVersion).toBe('2');
  });

  it('serves older nodes first so a full network keeps the nodes it already served', () => {
    const plan = planCoordinator({ ...config, overlayNetwork: '198.18.16.0/30' }, [node('young', '198.18.1.2', [], '2026-02-01T00:00:00Z'), node('old', '198.18.1.1', [], '2026-01-01T00:00:00Z')], new Map());
    expect(plan.peers.map((p) => p.node)).toEqual(['old']);
    expect(plan.problems.map((p) => p.node)).toEqual(['young']);
  });

  it('shards the peer table so no shard holds more than PEERS_PER_SHARD nodes', () => {
    const nodes = Array.from({ length: PEERS_PER_SHARD + 5 }, (_, i) => node(`n${i}`, `198.18.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`));
    const plan = planCoordinator(config, nodes, new Map());
    expect([...plan.shards.keys()]).toEqual(['chorus-kube-router-peers-0', 'chorus-kube-router-peers-1']);
    expect(Object.keys(plan.shards.get('chorus-kube-router-peers-0')?.data ?? {})).toHaveLength(PEERS_PER_SHARD);
    expect(Object.keys(plan.shards.get('chorus-kube-router-peers-1')?.data ?? {})).toHaveLength(5);
  });

  it('leaves out only the bad nodes (an address in the overlay network, a pod CIDR overlapping it or another node\'s), with their reasons, and serves the others', () => {
    const plan = planCoordinator(config, [
      node('good-1', '198.18.1.1', ['198.19.0.0/24'], '2026-01-01T00:00:00Z'),
      node('in-overlay', '198.18.16.7', ['198.19.1.0/24'], '2026-01-02T00:00:00Z'),
      node('everything', '198.18.1.3', ['0.0.0.0/0'], '2026-01-03T00:00:00Z'),
      node('overlap', '198.18.1.4', ['198.19.0.128/25'], '2026-01-04T00:00:00Z'),
      node('good-2', '198.18.1.5', ['198.19.5.0/24'], '2026-01-05T00:00:00Z'),
    ], new Map());
    expect(plan.peers.map((p) => p.node)).toEqual(['good-1', 'good-2']);
    expect(plan.problems).toEqual([
      { node: 'in-overlay', reason: 'left out of the overlay: its address 198.18.16.7 lies in the overlay network 198.18.16.0/20' },
      { node: 'everything', reason: 'left out of the overlay: pod CIDR 0.0.0.0/0 overlaps the overlay network 198.18.16.0/20' },
      { node: 'overlap', reason: "left out of the overlay: pod CIDR 198.19.0.128/25 overlaps node good-1's pod CIDR 198.19.0.0/24" },
    ]);
    expect(Object.keys(plan.shards.get('chorus-kube-router-peers-0')?.data ?? {}).sort()).toEqual(['good-1', 'good-2']);
  });

  it('publishes pod CIDRs as networks in canonical text (a Node may set host bits; schema-1 readers parse them strictly)', () => {
    const plan = planCoordinator(config, [node('n1', '198.18.1.1', ['198.19.0.5/24'])], new Map());
    expect(plan.peers[0]?.podCIDRs).toEqual(['198.19.0.0/24']);
    expect(decodePeer('n1', plan.shards.get('chorus-kube-router-peers-0')?.data.n1 ?? '')).not.toBeInstanceOf(Error);
  });

  describe('dual-stack overlay (--overlay-network-ipv6)', () => {
    const dual = { ...config, overlayNetworkIPv6: 'fd00:c0::/64' };

    it('gives the device and every node the IPv6 address at its IPv4 address\'s offset, and publishes schema 2', () => {
      const plan = planCoordinator(dual, [node('n1', '198.18.1.1', ['198.19.0.0/24', 'fd00:10::/64']), node('n2', '198.18.1.2', ['198.19.1.0/24', 'FD00:0011:0::1/64'], '2026-01-02T00:00:00Z')], new Map());
      expect(plan.hub).toMatchObject({ overlayNetworkIPv6: 'fd00:c0::/64', deviceOverlayIPv6s: ['fd00:c0::1'] });
      expect(plan.peers).toEqual([
        { node: 'n1', underlayIP: '198.18.1.1', overlayIP: '198.18.16.2', vtepMAC: '02:c4:c6:12:10:02', podCIDRs: ['198.19.0.0/24'], overlayIPv6: 'fd00:c0::2', podCIDRsIPv6: ['fd00:10::/64'] },
        { node: 'n2', underlayIP: '198.18.1.2', overlayIP: '198.18.16.3', vtepMAC: '02:c4:c6:12:10:03', podCIDRs: ['198.19.1.0/24'], overlayIPv6: 'fd00:c0::3', podCIDRsIPv6: ['fd00:11::/64'] },
      ]);
      for (const p of plan.peers) expect(decodePeer(p.node, plan.shards.get('chorus-kube-router-peers-0')?.data[p.node] ?? '')).toEqual(p);
    });

    it('a node whose address is held keeps its IPv6 twin; an address deep in the network maps to the same offset', () => {
      const plan = planCoordinator(dual, [node('n1', '198.18.1.1', ['198.19.0.0/24'])], new Map([['n1', '198.18.31.254']]));
      expect(plan.peers[0]).toMatchObject({ overlayIP: '198.18.31.254', overlayIPv6: 'fd00:c0::ffe', podCIDRsIPv6: [] });
    });

    it('without it, IPv6 pod CIDRs stay out of the table (schema 1, exactly as before)', () => {
      const plan = planCoordinator(config, [node('n1', '198.18.1.1', ['198.19.0.0/24', 'fd00:10::/64'])], new Map());
      expect(plan.peers).toEqual([{ node: 'n1', underlayIP: '198.18.1.1', overlayIP: '198.18.16.2', vtepMAC: '02:c4:c6:12:10:02', podCIDRs: ['198.19.0.0/24'] }]);
      expect(plan.hub.overlayNetworkIPv6).toBeUndefined();
      // said, so the coordinator can tell the operator why those pods are unreachable
      expect(plan.ipv6NotRouted).toEqual(['n1']);
      expect(planCoordinator(dual, [node('n1', '198.18.1.1', ['198.19.0.0/24', 'fd00:10::/64'])], new Map()).ipv6NotRouted).toEqual([]);
    });

    it('leaves out a node whose IPv6 pod CIDR overlaps the IPv6 overlay network or an older node\'s, and serves the others', () => {
      const plan = planCoordinator(dual, [
        node('good', '198.18.1.1', ['198.19.0.0/24', 'fd00:10::/64'], '2026-01-01T00:00:00Z'),
        node('over-overlay', '198.18.1.2', ['198.19.1.0/24', 'fd00:c0::/56'], '2026-01-02T00:00:00Z'),
        node('overlap', '198.18.1.3', ['198.19.2.0/24', 'fd00:10::/48'], '2026-01-03T00:00:00Z'),
      ], new Map());
      expect(plan.peers.map((p) => p.node)).toEqual(['good']);
      expect(plan.problems).toEqual([
        { node: 'over-overlay', reason: 'left out of the overlay: pod CIDR fd00:c0::/56 overlaps the overlay network fd00:c0::/64' },
        { node: 'overlap', reason: "left out of the overlay: pod CIDR fd00:10::/48 overlaps node good's pod CIDR fd00:10::/64" },
      ]);
    });
  });

  it('computes a merge patch that sets changed keys and removes gone ones', () => {
    expect(dataPatch({ a: '1', b: '2' }, { a: '1', b: '3', c: '4' })).toEqual({ b: '3', c: '4' });
    expect(dataPatch({ a: '1', gone: 'x' }, { a: '1' })).toEqual({ gone: null });
    expect(dataPatch({ a: '1' }, { a: '1' })).toBeUndefined();
  });
});
