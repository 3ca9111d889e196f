import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { diffOverlay, expectedAfter } from '../../agent/overlay/diff.ts';
import { batchesOf, opCommand } from '../../agent/overlay/apply.ts';
import { planGatewayOverlay, planNodeOverlay } from '../../agent/overlay/plan.ts';
import { EMPTY_OBSERVED, type DesiredOverlay, type ObservedOverlay, type Op } from '../../agent/overlay/state.ts';
import type { HubInfo, Peer } from '../../shared/tables.ts';

const hub: HubInfo = { vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.16.1'], deviceMACs: ['02:c4:c6:12:10:01'] };
const facts = { underlayIP: '198.18.1.1', underlayMtu: 1500 };

function observedFrom(d: DesiredOverlay): ObservedOverlay {
  return {
    vxlan: { ...d.vxlan, index: 7, kind: 'vxlan', learning: false, up: true },
    addresses: [...d.addresses], fdb: [...d.fdb], routes: [...d.routes],
    neighbours: d.neighbours.map((n) => ({ ...n, permanent: true })),
  };
}

describe('node planner', () => {
  it('plans the VXLAN device, address, flood entry and static neighbour toward the device', () => {
    const d = planNodeOverlay(hub, facts, '198.18.16.2');
    expect(d.vxlan).toEqual({ name: 'chorus-4096', vni: 4096, port: 4789, local: '198.18.1.1', mtu: 1450, mac: '02:c4:c6:12:10:02' });
    expect(d.addresses).toEqual(['198.18.16.2/20']);
    expect(d.fdb).toEqual([{ mac: '00:00:00:00:00:00', dst: '198.18.0.3' }, { mac: '02:c4:c6:12:10:01', dst: '198.18.0.3' }]);
    expect(d.neighbours).toEqual([{ ip: '198.18.16.1', mac: '02:c4:c6:12:10:01' }]);
  });
  it('leaves the device MAC to ARP when the hub info does not publish it (Citrix, F5)', () => {
    const { deviceMACs: _m, ...learned } = hub;
    const d = planNodeOverlay(learned, facts, '198.18.16.2');
    expect(d.fdb).toEqual([{ mac: '00:00:00:00:00:00', dst: '198.18.0.3' }]);
    expect(d.neighbours).toEqual([]);
  });
  it('uses the hub MTU when the operator set one', () => {
    expect(planNodeOverlay({ ...hub, mtu: 1400 }, facts, '198.18.16.2').vxlan.mtu).toBe(1400);
  });
  it('adds one flood entry per device VTEP', () => {
    const d = planNodeOverlay({ ...hub, deviceVTEPs: ['198.18.0.3', '198.18.0.4'], deviceOverlayIPs: ['198.18.16.1', '198.18.16.2'], deviceMACs: ['02:c4:c6:12:10:01', '02:c4:c6:12:10:02'] }, facts, '198.18.16.3');
    expect(d.fdb.filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst)).toEqual(['198.18.0.3', '198.18.0.4']);
  });
  it('refuses an overlay IP outside the overlay network', () => {
    expect(() => planNodeOverlay(hub, facts, '198.18.32.2')).toThrow(/outside the overlay network/);
  });
});

describe('gateway planner', () => {
  const peers: Peer[] = [
    { node: 'b', underlayIP: '198.18.1.2', overlayIP: '198.18.16.3', vtepMAC: '02:c4:c6:12:10:03', podCIDRs: ['198.19.1.0/24'] },
    { node: 'a', underlayIP: '198.18.1.1', overlayIP: '198.18.16.2', vtepMAC: '02:c4:c6:12:10:02', podCIDRs: ['198.19.0.0/24'] },
  ];
  it('plans per node an FDB entry, a neighbour and a route to each pod CIDR', () => {
    const { desired, skipped } = planGatewayOverlay(hub, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, peers);
    expect(skipped).toEqual([]);
    expect(desired.addresses).toEqual(['198.18.16.1/20']);
    expect(desired.fdb).toEqual([{ mac: '02:c4:c6:12:10:02', dst: '198.18.1.1' }, { mac: '02:c4:c6:12:10:03', dst: '198.18.1.2' }]);
    expect(desired.routes).toEqual([{ dst: '198.19.0.0/24', via: '198.18.16.2' }, { dst: '198.19.1.0/24', via: '198.18.16.3' }]);
  });
  it('skips a peer whose pod CIDR or overlay IP is already taken, naming the owner', () => {
    const clash = [...peers, { node: 'c', underlayIP: '198.18.1.3', overlayIP: '198.18.16.3', vtepMAC: '02:c4:c6:12:10:04', podCIDRs: [] },
      { node: 'd', underlayIP: '198.18.1.4', overlayIP: '198.18.16.5', vtepMAC: '02:c4:c6:12:10:05', podCIDRs: ['198.19.0.0/24'] }];
    const { skipped } = planGatewayOverlay(hub, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, clash);
    expect(skipped).toEqual([{ node: 'c', reason: 'overlay IP 198.18.16.3 is already used by b' }, { node: 'd', reason: "pod CIDR 198.19.0.0/24 overlaps node a's pod CIDR 198.19.0.0/24" }]);
  });
  it('skips a peer the coordinator would have left out (the same check): a pod CIDR of 0.0.0.0/0 routes nothing away from the others', () => {
    const bad = [...peers, { node: 'e', underlayIP: '198.18.1.5', overlayIP: '198.18.16.6', vtepMAC: '02:c4:c6:12:10:06', podCIDRs: ['0.0.0.0/0'] }];
    const plan = planGatewayOverlay(hub, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, bad);
    expect(plan.skipped).toEqual([{ node: 'e', reason: 'pod CIDR 0.0.0.0/0 overlaps the overlay network 198.18.16.0/20' }]);
    expect(plan.desired.routes).toEqual(planGatewayOverlay(hub, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, peers).desired.routes);
  });
  it('routes a directly routed peer via its underlay IP on the underlay interface, with no FDB entry or neighbour; one not on a shared subnet is skipped with the reason', () => {
    const underlay = { device: 'eth0', cidrs: ['198.18.0.3/23'] };
    const direct: Peer[] = [{ ...peers[0]!, path: 'direct' }, peers[1]!, { node: 'far', underlayIP: '198.18.8.1', overlayIP: '198.18.16.7', vtepMAC: '02:c4:c6:12:10:07', podCIDRs: ['198.19.7.0/24'], path: 'direct' }];
    const { desired, skipped } = planGatewayOverlay(hub, { underlayIP: '198.18.0.3', underlayMtu: 1500, underlay }, direct);
    expect(desired.directDevice).toBe('eth0');
    expect(desired.fdb).toEqual([{ mac: '02:c4:c6:12:10:02', dst: '198.18.1.1' }]);
    expect(desired.neighbours).toEqual([{ ip: '198.18.16.2', mac: '02:c4:c6:12:10:02' }]);
    expect(desired.routes).toEqual([{ dst: '198.19.0.0/24', via: '198.18.16.2' }, { dst: '198.19.1.0/24', via: '198.18.1.2', dev: 'eth0' }]);
    expect(skipped).toEqual([{ node: 'far', reason: expect.stringMatching(/^routed directly \(path "direct"\), but its address 198.18.8.1 is on none of this gateway's subnets on eth0 \(198.18.0.3\/23\)/) }]);
  });
  it('refuses to run on a VTEP the hub does not list', () => {
    expect(() => planGatewayOverlay(hub, { underlayIP: '198.18.0.9', underlayMtu: 1500 }, [])).toThrow(/not among the hub's deviceVTEPs/);
  });
});

describe('dual-stack overlay (hub schema 2)', () => {
  const dual: HubInfo = { ...hub, overlayNetworkIPv6: 'fd00:c0::/64', deviceOverlayIPv6s: ['fd00:c0::1'] };
  const peers: Peer[] = [
    { node: 'a', underlayIP: '198.18.1.1', overlayIP: '198.18.16.2', vtepMAC: '02:c4:c6:12:10:02', podCIDRs: ['198.19.0.0/24'], overlayIPv6: 'fd00:c0::2', podCIDRsIPv6: ['FD00:10:0::/64'] },
    { node: 'b', underlayIP: '198.18.1.2', overlayIP: '198.18.16.3', vtepMAC: '02:c4:c6:12:10:03', podCIDRs: ['198.19.1.0/24'], overlayIPv6: 'fd00:c0::3', podCIDRsIPv6: [] },
  ];

  it('a node gets both overlay addresses on its one device, and a static neighbour per family toward the device (same MAC)', () => {
    const d = planNodeOverlay(dual, facts, '198.18.16.2', 'FD00:C0::2');
    expect(d.addresses).toEqual(['198.18.16.2/20', 'fd00:c0::2/64']);
    expect(d.neighbours).toEqual([{ ip: '198.18.16.1', mac: '02:c4:c6:12:10:01' }, { ip: 'fd00:c0::1', mac: '02:c4:c6:12:10:01' }]);
    expect(() => planNodeOverlay(dual, facts, '198.18.16.2', 'fd00:c1::2')).toThrow(/IPv6 overlay IP fd00:c1::2 is outside the IPv6 overlay network fd00:c0::\/64/);
  });

  it('the gateway routes each IPv6 pod CIDR via the node\'s IPv6 overlay address, with a static neighbour for it, in canonical text', () => {
    const { desired, skipped } = planGatewayOverlay(dual, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, peers);
    expect(skipped).toEqual([]);
    expect(desired.addresses).toEqual(['198.18.16.1/20', 'fd00:c0::1/64']);
    expect(desired.neighbours).toEqual([
      { ip: '198.18.16.2', mac: '02:c4:c6:12:10:02' }, { ip: 'fd00:c0::2', mac: '02:c4:c6:12:10:02' },
      { ip: '198.18.16.3', mac: '02:c4:c6:12:10:03' }, { ip: 'fd00:c0::3', mac: '02:c4:c6:12:10:03' },
    ]);
    expect(desired.routes).toEqual([{ dst: '198.19.0.0/24', via: '198.18.16.2' }, { dst: 'fd00:10::/64', via: 'fd00:c0::2' }, { dst: '198.19.1.0/24', via: '198.18.16.3' }]);
    // and the kernel takes them as batch lines
    expect(opCommand({ kind: 'route-replace', dev: 'chorus-4096', entry: { dst: 'fd00:10::/64', via: 'fd00:c0::2' } }).line).toBe('route replace fd00:10::/64 via fd00:c0::2 dev chorus-4096 proto 196 onlink');
  });

  it('the gateway skips a peer without an IPv6 overlay address in a dual-stack overlay, and says a direct node\'s IPv6 pods are not routed', () => {
    const { overlayIPv6: _o, podCIDRsIPv6: _p, ...v4only } = peers[1]!;
    const direct: Peer = { ...peers[0]!, path: 'direct' };
    const { desired, skipped } = planGatewayOverlay(dual, { underlayIP: '198.18.0.3', underlayMtu: 1500, underlay: { device: 'eth0', cidrs: ['198.18.0.3/23'] } }, [direct, v4only]);
    expect(skipped).toEqual([
      { node: 'a', reason: expect.stringMatching(/^its IPv6 pod CIDRs \(fd00:10::\/64\) are not routed: the node is routed directly, via its IPv4 underlay address/) },
      { node: 'b', reason: expect.stringMatching(/^its peer entry has no overlayIPv6/) },
    ]);
    expect(desired.routes).toEqual([{ dst: '198.19.0.0/24', via: '198.18.1.1', dev: 'eth0' }]);
  });

  it('the gateway leaves out a peer whose IPv6 pod CIDR overlaps the IPv6 overlay network (the coordinator\'s check)', () => {
    const bad: Peer = { ...peers[1]!, podCIDRsIPv6: ['fd00:c0::/56'] };
    expect(planGatewayOverlay(dual, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, [peers[0]!, bad]).skipped).toEqual([{ node: 'b', reason: 'pod CIDR fd00:c0::/56 overlaps the overlay network fd00:c0::/64' }]);
  });

  it('a diff against a kernel holding both families changes nothing; removing the IPv6 overlay removes its address, neighbours and routes', () => {
    const { desired } = planGatewayOverlay(dual, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, peers);
    expect(diffOverlay(desired, observedFrom(desired))).toEqual([]);
    const v4 = planGatewayOverlay(hub, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, peers).desired;
    expect(diffOverlay(v4, observedFrom(desired)).map((op) => opCommand(op).line)).toEqual([
      'route del fd00:10::/64 dev chorus-4096 proto 196', 'neigh del fd00:c0::2 dev chorus-4096', 'neigh del fd00:c0::3 dev chorus-4096', 'addr del fd00:c0::1/64 dev chorus-4096',
    ]);
  });
});

describe('overlay diff', () => {
  const desired = planGatewayOverlay(hub, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, [
    { node: 'a', underlayIP: '198.18.1.1', overlayIP: '198.18.16.2', vtepMAC: '02:c4:c6:12:10:02', podCIDRs: ['198.19.0.0/24'] },
  ]).desired;

  it('creates everything on an empty kernel, routes last', () => {
    const ops = diffOverlay(desired, EMPTY_OBSERVED);
    expect(ops.map((o) => o.kind)).toEqual(['link-create', 'link-set', 'addr-add', 'fdb-add', 'neigh-replace', 'route-replace']);
  });

  it('changes nothing when the kernel already matches (restart adopts existing state)', () => {
    expect(diffOverlay(desired, observedFrom(desired))).toEqual([]);
  });

  it('recreates an incompatible device and says why', () => {
    const obs = observedFrom(desired);
    const ops = diffOverlay(desired, { ...obs, vxlan: { ...obs.vxlan!, vni: 7 } });
    expect(ops[0]).toEqual({ kind: 'link-delete', name: 'chorus-4096', reason: 'vni: 7 vs 4096' });
    expect(ops[1]?.kind).toBe('link-create');
  });

  it('changes the local address of a renumbered node in place: the device never goes away', () => {
    const obs = observedFrom(desired);
    const ops = diffOverlay(desired, { ...obs, vxlan: { ...obs.vxlan!, local: '198.18.65.1' } });
    expect(ops).toEqual([{ kind: 'link-set', name: 'chorus-4096', local: desired.vxlan.local }]);
    expect(opCommand(ops[0]!)).toEqual({ tool: 'ip', line: `link set chorus-4096 type vxlan local ${desired.vxlan.local}` });
  });

  it('fixes MTU, MAC and admin state in place', () => {
    const obs = observedFrom(desired);
    expect(diffOverlay(desired, { ...obs, vxlan: { ...obs.vxlan!, mtu: 1500, up: false } })).toEqual([{ kind: 'link-set', name: 'chorus-4096', mtu: 1450, up: true }]);
  });

  it('removes stale entries before adding, and replaces a neighbour learned by ARP with a static one', () => {
    const obs = observedFrom(desired);
    const ops = diffOverlay(desired, {
      ...obs,
      fdb: [...obs.fdb, { mac: '02:c4:c6:12:10:09', dst: '198.18.1.9' }],
      routes: [...obs.routes, { dst: '198.19.9.0/24', via: '198.18.16.9' }],
      neighbours: [{ ip: '198.18.16.2', mac: '02:c4:c6:12:10:02', permanent: false }, { ip: '198.18.16.9', mac: '02:c4:c6:12:10:09', permanent: true }],
    });
    expect(ops.map((o) => o.kind)).toEqual(['route-del', 'neigh-del', 'fdb-del', 'neigh-replace']);
  });

  it('moves a route between the VXLAN device and the underlay interface with one replace, and deletes a direct route on its own device', () => {
    const onEth = { dst: '198.19.0.0/24', via: '198.18.1.1', dev: 'eth0' };
    const toDirect = { ...desired, routes: [onEth, ...desired.routes.filter((r) => r.dst !== '198.19.0.0/24')], directDevice: 'eth0' };
    const ops = diffOverlay(toDirect, observedFrom(desired));
    expect(ops).toEqual([{ kind: 'route-replace', dev: 'eth0', entry: onEth }]);
    expect(batchesOf(ops)).toEqual([{ tool: 'ip', lines: ['route replace 198.19.0.0/24 via 198.18.1.1 dev eth0 proto 196'] }]);
    // and back: the same destination on the VXLAN device again
    expect(diffOverlay(desired, observedFrom(toDirect)).map((o) => opCommand(o).line)).toEqual(['route replace 198.19.0.0/24 via 198.18.16.2 dev chorus-4096 proto 196 onlink']);
    // a node gone: its direct route is deleted where it is
    const gone = { ...toDirect, routes: toDirect.routes.filter((r) => r.dst !== '198.19.0.0/24') };
    expect(batchesOf(diffOverlay(gone, observedFrom(toDirect)))).toEqual([{ tool: 'ip', lines: ['route del 198.19.0.0/24 dev eth0 proto 196'] }]);
  });

  it('turns ops into iproute2 batch lines, grouped by tool in order', () => {
    const lines = batchesOf(diffOverlay(desired, EMPTY_OBSERVED));
    expect(lines).toEqual([
      { tool: 'ip', lines: ['link add chorus-4096 address 02:c4:c6:12:10:01 mtu 1450 type vxlan id 4096 local 198.18.0.3 dstport 4789 nolearning', 'link set chorus-4096 up', 'addr replace 198.18.16.1/20 dev chorus-4096'] },
      { tool: 'bridge', lines: ['fdb replace 02:c4:c6:12:10:02 dev chorus-4096 dst 198.18.1.1 self permanent'] },
      { tool: 'ip', lines: ['neigh replace 198.18.16.2 lladdr 02:c4:c6:12:10:02 dev chorus-4096 nud permanent', 'route replace 198.19.0.0/24 via 198.18.16.2 dev chorus-4096 proto 196 onlink'] },
    ]);
    expect(opCommand({ kind: 'fdb-add', dev: 'x', entry: { mac: '00:00:00:00:00:00', dst: '198.18.0.3' } }).line).toBe('fdb append 00:00:00:00:00:00 dev x dst 198.18.0.3 self permanent');
  });
});

/** The kernel as a model: what each op does to the observed state (a device delete takes its entries along). */
function applyToModel(o: ObservedOverlay, ops: readonly Op[]): ObservedOverlay {
  let m = { ...o, addresses: [...o.addresses], fdb: [...o.fdb], neighbours: [...o.neighbours], routes: [...o.routes] };
  for (const op of ops) {
    switch (op.kind) {
      case 'link-delete': m = { ...EMPTY_OBSERVED, addresses: [], fdb: [], neighbours: [], routes: [] }; break;
      case 'addr-add': m.addresses.push(op.cidr); break;
      case 'addr-del': m.addresses = m.addresses.filter((a) => a !== op.cidr); break;
      case 'fdb-add': m.fdb.push(op.entry); break;
      case 'fdb-del': m.fdb = m.fdb.filter((e) => e.mac !== op.entry.mac || e.dst !== op.entry.dst); break;
      case 'neigh-replace': m.neighbours = [...m.neighbours.filter((n) => n.ip !== op.entry.ip), { ...op.entry, permanent: true }]; break;
      case 'neigh-del': m.neighbours = m.neighbours.filter((n) => n.ip !== op.entry.ip); break;
      case 'route-replace': m.routes = [...m.routes.filter((r) => r.dst !== op.entry.dst), op.entry]; break;
      case 'route-del': m.routes = m.routes.filter((r) => r.dst !== op.entry.dst); break;
      default: break;
    }
  }
  return m;
}

const asSets = (o: ObservedOverlay): unknown => ({
  addresses: [...o.addresses].sort(),
  fdb: o.fdb.map((e) => JSON.stringify(e)).sort(),
  neighbours: o.neighbours.map((n) => JSON.stringify({ ip: n.ip, mac: n.mac, permanent: n.permanent })).sort(),
  routes: o.routes.map((r) => JSON.stringify({ dst: r.dst, via: r.via, dev: r.dev })).sort(),
});

describe('what the kernel holds after a pass', () => {
  const peer = (i: number): Peer => ({ node: `n${i}`, underlayIP: `198.18.1.${i}`, overlayIP: `198.18.16.${i + 1}`, vtepMAC: `02:c4:c6:12:10:${(i + 1).toString(16).padStart(2, '0')}`, podCIDRs: [`198.19.${i}.0/24`] });
  it('is what every op of the diff makes of the observed state (so the pass need not read 15,000 entries back)', () => {
    fc.assert(fc.property(
      fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { maxLength: 20 }), fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { maxLength: 20 }),
      fc.uniqueArray(fc.integer({ min: 100, max: 200 }), { maxLength: 5 }), fc.boolean(),
      (want, had, learned, otherDevice) => {
        const desired = planGatewayOverlay(hub, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, want.map(peer)).desired;
        const before = observedFrom(planGatewayOverlay(hub, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, had.map(peer)).desired);
        const observed: ObservedOverlay = {
          ...before,
          vxlan: otherDevice && before.vxlan ? { ...before.vxlan, vni: 4097 } : before.vxlan,
          // the kernel's own ARP entries, one of them for an address the plan may claim
          // (one entry per address, as in the kernel)
          neighbours: [...before.neighbours, ...[...learned.map((i) => ({ ip: `198.18.16.${i}`, mac: '02:00:00:00:00:01', permanent: false })), { ip: '198.18.16.2', mac: '02:00:00:00:00:02', permanent: false }].filter((n) => !before.neighbours.some((b) => b.ip === n.ip))],
        };
        const ops = diffOverlay(desired, observed);
        const recreated = ops.some((o) => o.kind === 'link-delete');
        expect(asSets(expectedAfter(desired, recreated ? EMPTY_OBSERVED : observed))).toEqual(asSets(applyToModel(observed, ops)));
      }), { numRuns: 200 });
  });
});
