// The F5 driver's pure half: plan -> BIG-IP entries, GET answers -> the same entries (only ours),
// request bodies, and the failover-status answer.
import { describe, expect, it } from 'vitest';
import { diffDevice, fieldsText } from '../../coordinator/drivers/driver.ts';
import {
  createBody, desiredEntries, failoverStatus, fdbRecords, observedEntries, ownerMarker, updateBody, type F5Layout, type ObservedLists,
} from '../../coordinator/drivers/f5/objects.ts';
import type { CoordinatorPlan } from '../../coordinator/plan.ts';

const layout: F5Layout = { partition: 'k8s', namePrefix: 'chorus-4096', routing: 'gateway', allowService: 'none', trafficGroup: '/Common/traffic-group-1', clusterId: 'cluster-a' };
const plan: CoordinatorPlan = {
  hub: { vni: 4096, port: 8472, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.16.1'] },
  peers: [
    { node: 'a', underlayIP: '198.18.1.1', overlayIP: '198.18.16.2', vtepMAC: '02:C4:C6:12:10:02', podCIDRs: ['198.19.0.0/24', '198.19.9.0/24'] },
    { node: 'b', underlayIP: '198.18.1.2', overlayIP: '198.18.16.3', vtepMAC: '02:c4:c6:12:10:03', podCIDRs: [] },
  ],
  shards: new Map(), problems: [], incomplete: [], capacity: 10, ipv6NotRouted: [],
};
const mark = ownerMarker(layout);

/** What a BIG-IP answers for the objects the plan calls for (strings, route domains, absent fields). */
function deviceAnswer(extra: Partial<ObservedLists> = {}): ObservedLists {
  return {
    profiles: [{ name: 'chorus-4096-vxlan', partition: 'k8s', port: 8472, floodingType: 'none', description: mark }],
    tunnels: [{ name: 'chorus-4096', partition: 'k8s', key: '4096', localAddress: '198.18.0.3%0', profile: '/k8s/chorus-4096-vxlan', description: mark }],
    selfs: [{ name: 'chorus-4096-self', partition: 'k8s', address: '198.18.16.1%0/20', vlan: '/k8s/chorus-4096', allowService: 'none', trafficGroup: '/Common/traffic-group-1', description: mark }],
    fdbTunnel: { name: 'chorus-4096', records: [{ name: '02:C4:C6:12:10:02', endpoint: '198.18.1.1%0' }, { name: '02:c4:c6:12:10:03', endpoint: '198.18.1.2%0' }] },
    arps: [
      { name: 'chorus-4096-198.18.16.2', partition: 'k8s', ipAddress: '198.18.16.2', macAddress: '02:c4:c6:12:10:02', description: mark },
      { name: 'chorus-4096-198.18.16.3', partition: 'k8s', ipAddress: '198.18.16.3', macAddress: '02:C4:C6:12:10:03', description: mark },
    ],
    routes: [
      { name: 'chorus-4096-198.19.0.0_24', partition: 'k8s', network: '198.19.0.0/24', gw: '198.18.16.2', description: mark },
      { name: 'chorus-4096-198.19.9.0_24', partition: 'k8s', network: '198.19.9.0%0/24', gw: '198.18.16.2%0', description: mark },
    ],
    ...extra,
  };
}

describe('F5 objects', () => {
  it('plans profile, tunnel, self IP, and per node an FDB record, an ARP entry and a route per pod CIDR', () => {
    const d = desiredEntries(plan, layout);
    expect(d.map((e) => `${e.kind} ${e.key} ${fieldsText(e)}`)).toEqual([
      'profile chorus-4096-vxlan port=8472 flooding=none',
      'tunnel chorus-4096 key=4096 local=198.18.0.3 profile=/k8s/chorus-4096-vxlan',
      'self chorus-4096-self address=198.18.16.1/20 vlan=/k8s/chorus-4096 allow=none group=/Common/traffic-group-1',
      'fdb 02:c4:c6:12:10:02 endpoint=198.18.1.1',
      'arp chorus-4096-198.18.16.2 ip=198.18.16.2 mac=02:c4:c6:12:10:02',
      'route chorus-4096-198.19.0.0_24 network=198.19.0.0/24 gw=198.18.16.2',
      'route chorus-4096-198.19.9.0_24 network=198.19.9.0/24 gw=198.18.16.2',
      'fdb 02:c4:c6:12:10:03 endpoint=198.18.1.2',
      'arp chorus-4096-198.18.16.3 ip=198.18.16.3 mac=02:c4:c6:12:10:03',
    ]);
    expect(d.filter((e) => e.kind === 'route').every((e) => e.node === 'a')).toBe(true);
  });

  it('routes via the tunnel interface with a multipoint profile and no ARP in interface mode', () => {
    const d = desiredEntries(plan, { ...layout, routing: 'interface' });
    expect(d.filter((e) => e.kind === 'arp')).toEqual([]);
    expect(fieldsText(d.find((e) => e.kind === 'route') ?? { kind: '', key: '', fields: {} })).toBe('network=198.19.0.0/24 interface=/k8s/chorus-4096');
    expect(fieldsText(d.find((e) => e.kind === 'profile') ?? { kind: '', key: '', fields: {} })).toBe('port=8472 flooding=multipoint');
  });

  it('routes a directly routed node via its underlay IP, with no FDB record or ARP entry, in either routing', () => {
    const direct: CoordinatorPlan = { ...plan, peers: [{ ...plan.peers[0]!, path: 'direct' }, plan.peers[1]!] };
    for (const routing of ['gateway', 'interface'] as const) {
      const d = desiredEntries(direct, { ...layout, routing }).filter((e) => e.node === 'a');
      expect(d.map((e) => `${e.kind} ${e.key} ${fieldsText(e)}`)).toEqual([
        'route chorus-4096-198.19.0.0_24 network=198.19.0.0/24 gw=198.18.1.1',
        'route chorus-4096-198.19.9.0_24 network=198.19.9.0/24 gw=198.18.1.1',
      ]);
    }
    // switching node a to direct in one pass: its routes change gateway, its FDB record and ARP entry go
    const changes = diffDevice(desiredEntries(direct, layout), observedEntries(deviceAnswer(), layout));
    expect(changes.map((c) => `${c.op} ${c.entry.kind} ${c.entry.key}`).sort()).toEqual([
      'delete arp chorus-4096-198.18.16.2', 'delete fdb 02:c4:c6:12:10:02',
      'update route chorus-4096-198.19.0.0_24', 'update route chorus-4096-198.19.9.0_24',
    ]);
  });

  it('reads a device answer (strings for numbers, %0 route domains, upper-case MACs) as the same entries: nothing to do', () => {
    expect(diffDevice(desiredEntries(plan, layout), observedEntries(deviceAnswer(), layout))).toEqual([]);
  });

  it('sees only objects with our prefix AND our marker, in our partition', () => {
    const foreign = deviceAnswer({
      routes: [
        { name: 'chorus-4096-198.19.0.0_24', partition: 'k8s', network: '198.19.0.0/24', gw: '198.18.16.2', description: mark },
        { name: 'chorus-4096-extra', partition: 'k8s', network: '192.0.2.0/24', gw: '198.18.0.1', description: 'hand-made' },
        { name: 'chorus-5000-198.19.0.0_24', partition: 'k8s', network: '10.0.0.0/24', gw: '10.1.0.2', description: 'chorus-kube-router chorus-5000: managed, do not edit' },
        { name: 'other', partition: 'k8s', network: '10.9.0.0/24', gw: '10.1.0.2' },
        { name: 'chorus-4096-198.19.5.0_24', partition: 'Common', network: '198.19.5.0/24', gw: '198.18.16.9', description: mark },
      ],
    });
    expect(observedEntries(foreign, layout).filter((e) => e.kind === 'route').map((e) => e.key)).toEqual(['chorus-4096-198.19.0.0_24']);
  });

  it('ignores FDB records when our tunnel is not ours, and reads absent records as none', () => {
    const noTunnel = deviceAnswer({ tunnels: [{ name: 'chorus-4096', partition: 'k8s', key: 4096, description: 'hand-made' }] });
    expect(observedEntries(noTunnel, layout).filter((e) => e.kind === 'fdb')).toEqual([]);
    const empty = deviceAnswer({ fdbTunnel: { name: 'chorus-4096' } });
    expect(observedEntries(empty, layout).filter((e) => e.kind === 'fdb')).toEqual([]);
  });

  it('builds create bodies with partition and marker, and update bodies without the fields iControl refuses to change', () => {
    const d = desiredEntries(plan, layout);
    const arp = d.find((e) => e.kind === 'arp');
    const route = d.find((e) => e.kind === 'route');
    const tunnel = d.find((e) => e.kind === 'tunnel');
    if (!arp || !route || !tunnel) throw new Error('plan incomplete');
    expect(createBody(tunnel, layout)).toEqual({ name: 'chorus-4096', partition: 'k8s', remoteAddress: 'any', mode: 'bidirectional', tos: 'preserve', key: 4096, localAddress: '198.18.0.3', profile: '/k8s/chorus-4096-vxlan', description: mark });
    expect(createBody(arp, layout)).toMatchObject({ ipAddress: '198.18.16.2', macAddress: '02:c4:c6:12:10:02', description: mark });
    expect(updateBody(arp, layout)).toEqual({ macAddress: '02:c4:c6:12:10:02', description: mark });
    expect(updateBody(route, layout)).toEqual({ gw: '198.18.16.2', description: mark });
    expect(fdbRecords(d)).toEqual([{ name: '02:c4:c6:12:10:02', endpoint: '198.18.1.1' }, { name: '02:c4:c6:12:10:03', endpoint: '198.18.1.2' }]);
    const self = d.find((e) => e.kind === 'self');
    if (!self) throw new Error('no self');
    expect(createBody(self, { ...layout, allowService: 'tcp:443,udp:53' })).toMatchObject({ allowService: 'none' });
    expect(createBody({ ...self, fields: { ...self.fields, allow: 'tcp:443,udp:53' } }, layout)).toMatchObject({ allowService: ['tcp:443', 'udp:53'] });
  });

  it('reads the failover state', () => {
    const answer = (s: string): Record<string, unknown> => ({ entries: { 'https://localhost/mgmt/tm/cm/failover-status/0': { nestedStats: { entries: { status: { description: s } } } } } });
    expect(failoverStatus(answer('ACTIVE'))).toBe('ACTIVE');
    expect(failoverStatus(answer('standby'))).toBe('STANDBY');
    expect(failoverStatus({})).toBe('');
  });
});

describe('F5 objects in a dual-stack overlay', () => {
  const dualPlan: CoordinatorPlan = {
    ...plan,
    hub: { ...plan.hub, overlayNetworkIPv6: 'fd00:c0::/64', deviceOverlayIPv6s: ['fd00:c0::1'] },
    peers: [{ ...plan.peers[0]!, podCIDRs: ['198.19.0.0/24'], overlayIPv6: 'fd00:c0::2', podCIDRsIPv6: ['fd00:19:0::/64'] }],
  };

  it('adds an IPv6 self IP on the tunnel, and per node an NDP entry and an IPv6 route, named without ":"', () => {
    const d = desiredEntries(dualPlan, layout);
    expect(d.filter((e) => e.key.includes('self6') || e.kind === 'ndp' || e.key.includes('fd00')).map((e) => `${e.kind} ${e.key} ${fieldsText(e)}`)).toEqual([
      'self chorus-4096-self6 address=fd00:c0::1/64 vlan=/k8s/chorus-4096 allow=none group=/Common/traffic-group-1',
      'ndp chorus-4096-fd00-c0--2 ip=fd00:c0::2 mac=02:c4:c6:12:10:02',
      'route chorus-4096-fd00-19--_64 network=fd00:19::/64 gw=fd00:c0::2',
    ]);
    const ndp = d.find((e) => e.kind === 'ndp')!;
    expect(createBody(ndp, layout)).toEqual({ name: 'chorus-4096-fd00-c0--2', partition: 'k8s', ipAddress: 'fd00:c0::2', macAddress: '02:c4:c6:12:10:02', description: mark });
    expect(updateBody(ndp, layout)).toEqual({ macAddress: '02:c4:c6:12:10:02', description: mark });
    // interface routing: the route goes via the tunnel, no NDP entry; a directly routed node gets nothing of IPv6
    expect(desiredEntries(dualPlan, { ...layout, routing: 'interface' }).filter((e) => e.node === 'a').map((e) => `${e.kind} ${e.fields.interface ?? e.fields.gw ?? ''}`)).toEqual(['fdb ', 'route /k8s/chorus-4096', 'route /k8s/chorus-4096']);
    const direct: CoordinatorPlan = { ...dualPlan, peers: [{ ...dualPlan.peers[0]!, path: 'direct' }] };
    expect(desiredEntries(direct, layout).filter((e) => e.node === 'a').map((e) => e.fields.network)).toEqual(['198.19.0.0/24']);
  });

  it('reads the IPv6 objects however the BIG-IP spells them (route domains, upper case, long forms): nothing to do', () => {
    const answer = deviceAnswer({
      selfs: [...deviceAnswer().selfs, { name: 'chorus-4096-self6', partition: 'k8s', address: 'FD00:C0:0::1%0/64', vlan: '/k8s/chorus-4096', allowService: 'none', trafficGroup: '/Common/traffic-group-1', description: mark }],
      ndps: [{ name: 'chorus-4096-fd00-c0--2', partition: 'k8s', ipAddress: 'fd00:c0:0:0::2%0', macAddress: '02:C4:C6:12:10:02', description: mark }],
      routes: [
        { name: 'chorus-4096-198.19.0.0_24', partition: 'k8s', network: '198.19.0.0/24', gw: '198.18.16.2', description: mark },
        { name: 'chorus-4096-fd00-19--_64', partition: 'k8s', network: 'fd00:0019::%0/64', gw: 'FD00:C0::2%0', description: mark },
      ],
      fdbTunnel: { name: 'chorus-4096', records: [{ name: '02:C4:C6:12:10:02', endpoint: '198.18.1.1%0' }] },
      arps: [deviceAnswer().arps[0]!],
    });
    expect(diffDevice(desiredEntries(dualPlan, layout), observedEntries(answer, layout))).toEqual([]);
  });

  it('on an IPv6 underlay reads the tunnel\'s local address and the FDB endpoints however the BIG-IP spells them (%0, long forms)', () => {
    const v6: CoordinatorPlan = { ...plan, hub: { ...plan.hub, deviceVTEPs: ['2001:db8:18::3'] }, peers: [{ ...plan.peers[0]!, underlayIP: '2001:db8:18::1:1' }, { ...plan.peers[1]!, underlayIP: '2001:db8:18::1:2' }] };
    const answer = deviceAnswer({
      tunnels: [{ ...deviceAnswer().tunnels[0]!, localAddress: '2001:DB8:18:0::3%0' }],
      fdbTunnel: { name: 'chorus-4096', records: [{ name: '02:C4:C6:12:10:02', endpoint: '2001:db8:18:0:0:0:1:1%0' }, { name: '02:c4:c6:12:10:03', endpoint: '2001:db8:18::1:2%0' }] },
    });
    expect(diffDevice(desiredEntries(v6, layout), observedEntries(answer, layout))).toEqual([]);
    expect(fdbRecords(desiredEntries(v6, layout))).toEqual([{ name: '02:c4:c6:12:10:02', endpoint: '2001:db8:18::1:1' }, { name: '02:c4:c6:12:10:03', endpoint: '2001:db8:18::1:2' }]);
  });
});
