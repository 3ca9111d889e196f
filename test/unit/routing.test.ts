// Direct routing (--routing vxlan|direct|auto): which path the coordinator gives each node, how the
// peer table carries it, and the settings it refuses.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { V1Node } from '@kubernetes/client-node';
import { CoordinatorPlanner, planCoordinator } from '../../coordinator/plan.ts';
import { podCIDRsBySource } from '../../coordinator/podcidr-sources.ts';
import { PathChooser, VXLAN_ONLY, policyKey, vtepSubnets, withDeviceSubnets, type RoutingPolicy } from '../../coordinator/routing.ts';
import { deviceAddresses } from '../../coordinator/drivers/citrix/objects.ts';
import { selfAddresses } from '../../coordinator/drivers/f5/objects.ts';
import { ANNOTATION_PATH } from '../../shared/keys.ts';
import { COORDINATOR_SPECS, coordinatorConfig } from '../../coordinator/config.ts';
import { readSettings } from '../../shared/cli-args.ts';
import { cidrContains, parseCidr, parseIPv4 } from '../../shared/ipv4.ts';
import { decodePeer, encodePeer, pathOf, type Peer } from '../../shared/tables.ts';

const config = { vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'] };

function node(name: string, ip: string, podCIDRs: string[], recordedPath?: 'direct'): V1Node {
  return {
    metadata: { name, creationTimestamp: new Date('2026-01-01T00:00:00Z'), ...(recordedPath ? { annotations: { [ANNOTATION_PATH]: recordedPath } } : {}) },
    spec: { podCIDRs }, status: { addresses: [{ type: 'InternalIP', address: ip }] },
  };
}

describe('path per node', () => {
  it('vxlan and direct give every node the same path; auto gives direct to the nodes in a direct subnet', () => {
    expect(new PathChooser(VXLAN_ONLY).pathFor('198.18.0.9')).toBe('vxlan');
    expect(new PathChooser({ mode: 'direct', directSubnets: [] }).pathFor('10.9.9.9')).toBe('direct');
    const auto = new PathChooser({ mode: 'auto', directSubnets: ['198.18.0.0/24', '198.18.4.0/22'] });
    expect(['198.18.0.9', '198.18.0.255', '198.18.1.0', '198.18.5.7', '198.18.8.1'].map((ip) => auto.pathFor(ip))).toEqual(['direct', 'direct', 'vxlan', 'direct', 'vxlan']);
  });

  it('the planned peer table carries the path the policy gives each node, and the overlay address stays allocated either way', () => {
    const octet = fc.integer({ min: 0, max: 7 });
    fc.assert(fc.property(
      fc.constantFrom<RoutingPolicy>(VXLAN_ONLY, { mode: 'direct', directSubnets: [] }, { mode: 'auto', directSubnets: ['198.18.1.0/24'] }, { mode: 'auto', directSubnets: ['198.18.0.0/23', '198.18.6.0/24'] }),
      fc.uniqueArray(fc.tuple(octet, fc.integer({ min: 1, max: 254 })), { maxLength: 12, selector: ([a, b]) => `${a}.${b}` }),
      (routing, hosts) => {
        const nodes = hosts.map(([a, b], i) => node(`n${i}`, `198.18.${a}.${b}`, [`10.${i}.0.0/24`]));
        const plan = planCoordinator({ config, nodes, podCIDRs: podCIDRsBySource('node', nodes, []), held: new Map(), highWater: new Map(), routing });
        expect(plan.peers).toHaveLength(nodes.length);
        const subnets = routing.directSubnets.map((s) => parseCidr(s));
        for (const p of plan.peers) {
          const want = routing.mode === 'auto' ? (subnets.some((s) => cidrContains(s, parseIPv4(p.underlayIP))) ? 'direct' : 'vxlan') : routing.mode;
          expect(pathOf(p), p.underlayIP).toBe(want);
          expect(p.overlayIP).toMatch(/^198\.18\.(1[6-9]|2\d|3[01])\./);
          // the shard entry says the same
          const shard = [...plan.shards.values()].find((s) => s.data[p.node] !== undefined);
          expect(decodePeer(p.node, shard!.data[p.node]!)).toEqual(p);
        }
      },
    ), { numRuns: 200 });
  });

  it('a node whose InternalIP moves into a direct subnet switches path in the next plan, keeping its overlay address', () => {
    const routing: RoutingPolicy = { mode: 'auto', directSubnets: ['198.18.1.0/24'] };
    const before = planCoordinator({ config, nodes: [node('a', '198.18.2.5', ['10.0.0.0/24'])], podCIDRs: new Map([['a', ['10.0.0.0/24']]]), held: new Map(), highWater: new Map(), routing });
    const held = new Map(before.peers.map((p) => [p.node, p.overlayIP]));
    const moved = planCoordinator({ config, nodes: [node('a', '198.18.1.5', ['10.0.0.0/24'])], podCIDRs: new Map([['a', ['10.0.0.0/24']]]), held, highWater: new Map(), routing });
    expect([pathOf(before.peers[0]!), pathOf(moved.peers[0]!)]).toEqual(['vxlan', 'direct']);
    expect(moved.peers[0]!.overlayIP).toBe(before.peers[0]!.overlayIP);
  });
});

describe('auto with the subnets read from the device', () => {
  const pending: RoutingPolicy = { mode: 'auto', directSubnets: [], fromDevice: true, pending: true };

  it('until the device has answered, each node keeps the path its Node records and a node never routed is tunneled', () => {
    const nodes = [node('was-direct', '198.18.0.7', ['10.0.0.0/24'], 'direct'), node('was-tunneled', '198.18.0.8', ['10.0.1.0/24']), node('new', '198.18.9.9', ['10.0.2.0/24'])];
    const plan = planCoordinator({ config, nodes, podCIDRs: podCIDRsBySource('node', nodes, []), held: new Map(), highWater: new Map(), routing: pending });
    expect(Object.fromEntries(plan.peers.map((p) => [p.node, pathOf(p)]))).toEqual({ 'was-direct': 'direct', 'was-tunneled': 'vxlan', new: 'vxlan' });
  });

  it('a planner kept across passes follows a Node whose recorded path changes while pending', () => {
    const planner = new CoordinatorPlanner();
    const inputs = (n: V1Node): Parameters<CoordinatorPlanner['plan']>[0] => ({ config, nodes: [n], podCIDRs: podCIDRsBySource('node', [n], []), held: new Map(), highWater: new Map(), routing: pending });
    expect(pathOf(planner.plan(inputs(node('a', '198.18.0.7', ['10.0.0.0/24']))).peers[0]!)).toBe('vxlan');
    expect(pathOf(planner.plan(inputs(node('a', '198.18.0.7', ['10.0.0.0/24'], 'direct'))).peers[0]!)).toBe('direct');
  });

  it('once read, the subnets decide, whatever the Nodes recorded; the same set read again is the same policy', () => {
    const read = withDeviceSubnets(pending, ['198.18.0.0/24', '198.18.0.0/24']);
    expect(read).toEqual({ mode: 'auto', directSubnets: ['198.18.0.0/24'], fromDevice: true });
    expect(policyKey(read)).not.toBe(policyKey(pending));
    expect(policyKey(withDeviceSubnets(read, ['198.18.0.0/24']))).toBe(policyKey(read));
    const nodes = [node('recorded-direct-elsewhere', '198.18.9.7', ['10.0.0.0/24'], 'direct'), node('on-the-subnet', '198.18.0.8', ['10.0.1.0/24'])];
    const plan = planCoordinator({ config, nodes, podCIDRs: podCIDRsBySource('node', nodes, []), held: new Map(), highWater: new Map(), routing: read });
    expect(Object.fromEntries(plan.peers.map((p) => [p.node, pathOf(p)]))).toEqual({ 'recorded-direct-elsewhere': 'vxlan', 'on-the-subnet': 'direct' });
  });

  it('takes each VTEP\'s subnet from the device address holding it (the ADC\'s SNIP or NSIP and its netmask, the BIG-IP\'s self IP), and names what is missing', () => {
    const nsips = [
      { ipaddress: '198.18.0.4', netmask: '255.255.240.0', type: 'NSIP' }, { ipaddress: '198.18.0.3', netmask: '255.255.255.0', type: 'SNIP' },
      { ipaddress: '198.18.16.1', netmask: '255.255.240.0', type: 'SNIP' }, { ipaddress: '203.0.113.10', netmask: '255.255.255.255', type: 'VIP' },
    ];
    expect(vtepSubnets(['198.18.0.3'], deviceAddresses(nsips), 'SNIP or NSIP')).toEqual(['198.18.0.0/24']);
    expect(vtepSubnets(['198.18.0.4'], deviceAddresses(nsips), 'SNIP or NSIP')).toEqual(['198.18.0.0/20']);
    // a VIP is a service address, not the ADC's address on a subnet
    expect(() => vtepSubnets(['203.0.113.10'], deviceAddresses(nsips), 'SNIP or NSIP')).toThrow('cannot tell which subnet the device VTEP 203.0.113.10 is on: the device has no SNIP or NSIP 203.0.113.10 (it has: 198.18.0.4/20, 198.18.0.3/24, 198.18.16.1/20); configure the VTEP address on the device, or give --direct-subnets');
    const selfs = [{ address: '10.1.20.5%0/24' }, { address: '198.18.0.3/20' }, { address: '198.18.16.1/20' }, { address: 'garbage' }];
    expect(vtepSubnets(['198.18.0.3', '10.1.20.5'], selfAddresses(selfs), 'self IP')).toEqual(['198.18.0.0/20', '10.1.20.0/24']);
    expect(() => vtepSubnets(['198.18.0.9'], selfAddresses([]), 'self IP')).toThrow(/no self IP 198\.18\.0\.9 \(it has: none\)/);
  });
});

describe('the path in the peer table', () => {
  const peer: Peer = { node: 'n1', underlayIP: '198.18.1.1', overlayIP: '198.18.16.2', vtepMAC: '02:c4:c6:12:10:02', podCIDRs: ['10.0.0.0/24'] };
  it('writes a VXLAN entry exactly as before direct routing existed, and "path":"direct" for a direct one', () => {
    expect(encodePeer(peer)).toBe('{"underlayIP":"198.18.1.1","overlayIP":"198.18.16.2","vtepMAC":"02:c4:c6:12:10:02","podCIDRs":["10.0.0.0/24"]}');
    expect(JSON.parse(encodePeer({ ...peer, path: 'direct' }))).toMatchObject({ path: 'direct' });
    expect(decodePeer('n1', encodePeer({ ...peer, path: 'direct' }))).toEqual({ ...peer, path: 'direct' });
    // an explicit "vxlan" from another writer reads as the default
    expect(decodePeer('n1', JSON.stringify({ ...JSON.parse(encodePeer(peer)), path: 'vxlan' }))).toEqual(peer);
  });
  it('refuses a path it does not know, for that entry only', () => {
    const bad = decodePeer('n1', JSON.stringify({ ...JSON.parse(encodePeer(peer)), path: 'bgp' }));
    expect(bad).toBeInstanceOf(Error);
    expect((bad as Error).message).toBe('peer n1: path "bgp" is not one of vxlan, direct');
  });
});

describe('routing settings', () => {
  const base = ['--overlay-network', '198.18.16.0/20', '--device-vtep', '198.18.0.3'];
  const configFrom = (argv: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof coordinatorConfig> => coordinatorConfig(readSettings(argv, COORDINATOR_SPECS, env, {}).settings, env);
  it('defaults to vxlan; takes direct, and auto with its subnets, from flags or the environment', () => {
    expect(configFrom(base).routing).toEqual({ mode: 'vxlan', directSubnets: [] });
    expect(configFrom([...base, '--routing', 'direct']).routing).toEqual({ mode: 'direct', directSubnets: [] });
    expect(configFrom(base, { CHORUS_ROUTING: 'auto', CHORUS_DIRECT_SUBNETS: '198.18.0.0/24, 198.18.8.0/22' }).routing).toEqual({ mode: 'auto', directSubnets: ['198.18.0.0/24', '198.18.8.0/22'] });
  });
  it('auto without subnets on a Citrix ADC or BIG-IP reads them from the device', () => {
    const env = { CHORUS_DEVICE_USERNAME: 'u', CHORUS_DEVICE_PASSWORD: 'p' };
    for (const type of ['citrix', 'f5']) {
      expect(configFrom([...base, '--routing', 'auto', '--device-type', type, '--device-address', 'adc.example'], env).routing).toEqual({ mode: 'auto', directSubnets: [], fromDevice: true, pending: true });
    }
  });
  it.each([
    [['--routing', 'bgp'], /expected one of vxlan, direct, auto/],
    [['--routing', 'auto'], /--routing auto with --device-type linux needs --direct-subnets/],
    [['--direct-subnets', '198.18.0.0/24'], /--direct-subnets is read only with --routing auto \(it is vxlan\)/],
    [['--routing', 'auto', '--direct-subnets', '198.18.16.0/24'], /--direct-subnets 198.18.16.0\/24 overlaps --overlay-network 198.18.16.0\/20/],
    [['--routing', 'auto', '--direct-subnets', '198.18.0.0/33'], /direct-subnets/],
  ])('refuses %j', (args, message) => {
    expect(() => configFrom([...base, ...args])).toThrow(message);
  });
});
