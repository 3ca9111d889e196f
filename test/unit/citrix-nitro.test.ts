// The Citrix side, pinned to what NITRO documents: the driver's pure object mapping against golden
// GET answers and add bodies (test/fixtures/nitro, shaped as shared/reference/citrix-nitro.md
// describes), and the NITRO emulator's store and filter rules, each with its source.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { diffDevice, type DeviceEntry } from '../../coordinator/drivers/driver.ts';
import { splitMakeBeforeBreak, bodyOf, deletePath, desiredEntries, isSecondary, observePaths, observedEntries, ownershipConflict, type CitrixLayout, type NitroObject, type ObservedLists } from '../../coordinator/drivers/citrix/objects.ts';
import type { CoordinatorPlan } from '../../coordinator/plan.ts';
import { NitroError, NitroStore } from '../emulators/nitro/store.ts';
import { filterMatches } from '../emulators/nitro/server.ts';

const fixture = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../fixtures/nitro/${name}`, import.meta.url), 'utf8')) as T;
const layout: CitrixLayout = { vni: 4096, overlayNetwork: '198.18.16.0/20', neighbours: 'arp', routing: 'route', clusterId: 'cluster-a' };
const plan: CoordinatorPlan = {
  hub: { vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.16.1'] },
  peers: [{ node: 'a', underlayIP: '198.18.1.1', overlayIP: '198.18.16.2', vtepMAC: '02:c4:c6:12:10:02', podCIDRs: ['198.19.0.0/24'] }],
  shards: new Map(), problems: [], incomplete: [], capacity: 10, ipv6NotRouted: [],
};

function errorOf(fn: () => unknown): NitroError {
  try {
    fn();
  } catch (err) {
    if (err instanceof NitroError) return err;
    throw err;
  }
  throw new Error('expected a NITRO error');
}

describe('Citrix objects (pure)', () => {
  it('reads golden GET answers as exactly the desired entries: the ADC\'s own NSIP, DIRECT and default routes and learned entries are not ours', () => {
    const answers = fixture<Record<string, Record<string, NitroObject[]>>>('get-answers.json');
    const list = (r: string): NitroObject[] => answers[r]?.[r] ?? [];
    const lists: ObservedLists = { vxlans: list('vxlan'), bindings: list('vxlan_srcip_binding'), nsips: list('nsip'), arps: list('arp'), bridges: list('bridgetable'), routes: list('route'), profiles: [], pbrs: [], claims: list('policystringmap_pattern_binding') };
    const observed = observedEntries(lists, layout);
    expect(observed.map((e) => `${e.kind} ${e.key}`).sort()).toEqual([
      'arp 198.18.16.2', 'nsip 198.18.16.1', 'policystringmap_pattern_binding network-198.18.16.0/20', 'policystringmap_pattern_binding vxlan-4096',
      'route 198.19.0.0/255.255.255.0/198.18.16.2', 'vxlan 4096', 'vxlan_srcip_binding 4096/198.18.0.3',
    ]);
    expect(ownershipConflict(lists.claims, layout)).toBeUndefined();
    expect(diffDevice(desiredEntries(plan, layout), observed)).toEqual([]);
  });

  it('writes the add bodies and DELETE forms the NITRO reference documents', () => {
    const golden = fixture<Record<string, { body: NitroObject; delete: string } | string>>('add-bodies.json');
    const entries = desiredEntries(plan, { ...layout, neighbours: 'both' });
    for (const [kind, want] of Object.entries(golden)) {
      if (typeof want === 'string') continue;
      const e = entries.find((x) => x.kind === kind);
      if (!e) throw new Error(`no ${kind} entry`);
      expect({ kind, body: bodyOf(e), delete: deletePath(e) }).toEqual({ kind, body: want.body, delete: want.delete });
    }
  });

  it('asks with documented forms and literal filters, a /regex/ only where a pattern is meant', () => {
    expect(observePaths({ ...layout, routing: 'pbr', netprofile: 'np' })).toEqual({
      vxlans: 'vxlan/4096', bindings: 'vxlan_srcip_binding/4096', nsips: 'nsip', arps: 'arp?filter=vxlan:4096', bridges: 'bridgetable?filter=vxlan:4096',
      routes: 'route', profiles: 'netprofile/np', claims: 'policystringmap_pattern_binding/chorus_kube_router_owners', pbrs: `nspbr?filter=name:${encodeURIComponent('/^chorus-4096-/')}`,
    });
  });

  it('refuses a VNI or an overlapping overlay network another cluster claimed, naming the owner and the fix; claims of other VNIs and networks are no conflict', () => {
    const claim = (key: string, value: string): NitroObject => ({ name: 'chorus_kube_router_owners', key, value });
    expect(ownershipConflict([claim('vxlan-200', 'cluster-b'), claim('network-10.200.0.0/24', 'cluster-b')], layout)).toBeUndefined();
    const vni = ownershipConflict([claim('vxlan-4096', 'cluster-b')], layout);
    expect(vni).toMatch(/^VXLAN 4096 on the ADC belongs to cluster "cluster-b".*this cluster is "cluster-a".*unbind policy stringmap chorus_kube_router_owners vxlan-4096/);
    // a network that overlaps ours (not only an equal one) is a conflict
    expect(ownershipConflict([claim('network-198.18.0.0/16', 'cluster-b')], layout)).toMatch(/overlay network 198.18.16.0\/20 overlaps 198.18.0.0\/16, which cluster "cluster-b" uses/);
    // our own claims, and a claim in another map, are not
    expect(ownershipConflict([claim('vxlan-4096', 'cluster-a'), { name: 'other_map', key: 'vxlan-4096', value: 'x' }], layout)).toBeUndefined();
    // claims are desired first and are observed only when ours
    const d = desiredEntries(plan, layout);
    expect(d.slice(0, 2).map((e) => `${e.kind} ${e.key} ${e.fields.cluster ?? ''}`)).toEqual(['policystringmap_pattern_binding vxlan-4096 cluster-a', 'policystringmap_pattern_binding network-198.18.16.0/20 cluster-a']);
  });

  it('routes a directly routed node via its underlay IP with a claim per route and no arp or bridgetable; the claimed route is ours, an unclaimed one is not', () => {
    const direct: CoordinatorPlan = { ...plan, peers: [{ ...plan.peers[0]!, path: 'direct' }] };
    const d = desiredEntries(direct, { ...layout, neighbours: 'both' }).filter((e) => e.node === 'a');
    expect(d.map((e) => `${e.kind} ${e.key}`)).toEqual(['policystringmap_pattern_binding route-198.19.0.0/255.255.255.0/198.18.1.1', 'route 198.19.0.0/255.255.255.0/198.18.1.1']);
    expect(bodyOf(d[0]!)).toEqual({ name: 'chorus_kube_router_owners', key: 'route-198.19.0.0/255.255.255.0/198.18.1.1', value: 'cluster-a', comment: 'chorus-kube-router: cluster cluster-a owns this route (a directly routed node\'s pod CIDR)' });
    expect(deletePath(d[0]!)).toBe('policystringmap_pattern_binding/chorus_kube_router_owners?args=key:route-198.19.0.0%2F255.255.255.0%2F198.18.1.1');
    const claim = (key: string, value: string): NitroObject => ({ name: 'chorus_kube_router_owners', key, value });
    const lists = (claims: NitroObject[]): ObservedLists => ({
      vxlans: [], bindings: [], nsips: [], arps: [], bridges: [], profiles: [], pbrs: [], claims,
      routes: [{ network: '198.19.0.0', netmask: '255.255.255.0', gateway: '198.18.1.1', routetype: 'STATIC' }, { network: '10.0.0.0', netmask: '255.0.0.0', gateway: '198.18.1.1', routetype: 'STATIC' }],
    });
    const ours = observedEntries(lists([claim('route-198.19.0.0/255.255.255.0/198.18.1.1', 'cluster-a')]), layout);
    expect(ours.map((e) => `${e.kind} ${e.key}`)).toEqual(['policystringmap_pattern_binding route-198.19.0.0/255.255.255.0/198.18.1.1', 'route 198.19.0.0/255.255.255.0/198.18.1.1']);
    // the operator's own route to the same gateway, and a route another cluster claimed, are not ours
    expect(observedEntries(lists([claim('route-198.19.0.0/255.255.255.0/198.18.1.1', 'cluster-b')]), layout)).toEqual([]);
    // a node switched back to VXLAN: its direct route and claim go, its arp and overlay route come
    const changes = diffDevice(desiredEntries(plan, layout).filter((e) => e.node === 'a'), ours);
    expect(changes.map((c) => `${c.op} ${c.entry.kind} ${c.entry.key}`).sort()).toEqual([
      'add arp 198.18.16.2', 'add route 198.19.0.0/255.255.255.0/198.18.16.2',
      'delete policystringmap_pattern_binding route-198.19.0.0/255.255.255.0/198.18.1.1', 'delete route 198.19.0.0/255.255.255.0/198.18.1.1',
    ]);
    // make-before-break: the old route and then its claim go only after the new route is in
    const { now, later } = splitMakeBeforeBreak(changes);
    expect(now.map((c) => `${c.op} ${c.entry.kind}`).sort()).toEqual(['add arp', 'add route']);
    // and the other way (tunneled -> direct): the arp toward the old overlay next hop goes last too
    const toDirect = splitMakeBeforeBreak(diffDevice(ours, desiredEntries(plan, layout).filter((e) => e.node === 'a')));
    expect(toDirect.now.map((c) => `${c.op} ${c.entry.kind}`)).toEqual(['add policystringmap_pattern_binding', 'add route']);
    expect(toDirect.later.map((c) => `${c.op} ${c.entry.kind}`)).toEqual(['delete route', 'delete arp']);
    expect(later.map((c) => `${c.op} ${c.entry.kind} ${c.entry.key}`)).toEqual([
      'delete route 198.19.0.0/255.255.255.0/198.18.1.1', 'delete policystringmap_pattern_binding route-198.19.0.0/255.255.255.0/198.18.1.1',
    ]);
    // a node that leaves: nothing is added in its place, so its deletes keep their usual order
    expect(splitMakeBeforeBreak(diffDevice([], ours)).later).toEqual([]);
    // PBR mode: the policy's next hop is the underlay IP (ours by its name, no claim needed)
    const pbr = desiredEntries(direct, { ...layout, routing: 'pbr' }).filter((e) => e.node === 'a');
    expect(pbr.map((e) => `${e.kind} ${e.fields.nexthopval ?? ''}`)).toEqual(['nspbr 198.18.1.1']);
  });

  it('a changed MAC is a change of fields (the driver replaces an arp: NITRO has no update for it)', () => {
    const d = desiredEntries(plan, layout).find((e) => e.kind === 'arp') as DeviceEntry;
    const changes = diffDevice([d], [{ ...d, fields: { ...d.fields, mac: '02:de:ad:be:ef:00' } }]);
    expect(changes.map((c) => c.op)).toEqual(['update']);
  });

  it('knows a secondary by its own node, id 0 (GET hanode: a secondary lists its peer as Primary)', () => {
    expect(isSecondary([{ id: '0', state: 'Secondary' }, { id: '1', state: 'Primary' }])).toBe(true);
    expect(isSecondary([{ id: '0', state: 'Primary' }, { id: '1', state: 'Secondary' }])).toBe(false);
    expect(isSecondary([{ id: '0', state: 'Primary' }])).toBe(false);
  });
});

describe('Citrix objects in a dual-stack overlay (pure)', () => {
  const dual: CitrixLayout = { ...layout, overlayNetworkIPv6: 'fd00:c0::/64' };
  const dualPlan: CoordinatorPlan = {
    ...plan,
    hub: { ...plan.hub, overlayNetworkIPv6: 'fd00:c0::/64', deviceOverlayIPv6s: ['fd00:c0::1'] },
    peers: [{ ...plan.peers[0]!, overlayIPv6: 'fd00:c0::2', podCIDRsIPv6: ['fd00:19:0::/64'] }],
  };
  const entry = (entries: DeviceEntry[], kind: string): DeviceEntry => {
    const e = entries.find((x) => x.kind === kind);
    if (!e) throw new Error(`no ${kind} entry`);
    return e;
  };

  it('adds an IPv6 SNIP, an nd6 entry per node and a route6 per IPv6 pod CIDR, with the bodies and DELETE forms of the official Terraform provider', () => {
    const d = desiredEntries(dualPlan, dual);
    expect(d.filter((e) => ['nsip6', 'nd6', 'route6'].includes(e.kind) || e.key.startsWith('network-')).map((e) => `${e.kind} ${e.key}`)).toEqual([
      'policystringmap_pattern_binding network-198.18.16.0/20', 'policystringmap_pattern_binding network-fd00:c0::/64',
      'nsip6 fd00:c0::1/64', 'nd6 fd00:c0::2', 'route6 fd00:19::/64/fd00:c0::2',
    ]);
    // nsip6: ipv6address is address/prefix; deleted with ?args=ipv6address: (resource_citrixadc_nsip6.go)
    expect({ body: bodyOf(entry(d, 'nsip6')), delete: deletePath(entry(d, 'nsip6')) }).toEqual({ body: { ipv6address: 'fd00:c0::1/64', type: 'SNIP' }, delete: 'nsip6?args=ipv6address:fd00%3Ac0%3A%3A1%2F64' });
    // nd6: neighbor, mac, vxlan, vtep like arp; deleted by name with the vxlan (resource_citrixadc_nd6.go)
    expect({ body: bodyOf(entry(d, 'nd6')), delete: deletePath(entry(d, 'nd6')) }).toEqual({ body: { neighbor: 'fd00:c0::2', mac: '02:c4:c6:12:10:02', vxlan: 4096, vtep: '198.18.1.1' }, delete: 'nd6/fd00%253Ac0%253A%253A2?args=vxlan:4096' });
    // route6: network is a prefix; deleted with ?args=network:..,gateway:.. (the provider's route6 test deletes with ?args=network:)
    expect({ body: bodyOf(entry(d, 'route6')), delete: deletePath(entry(d, 'route6')) }).toEqual({ body: { network: 'fd00:19::/64', gateway: 'fd00:c0::2' }, delete: 'route6?args=network:fd00%3A19%3A%3A%2F64,gateway:fd00%3Ac0%3A%3A2' });
    expect(observePaths(dual)).toMatchObject({ nsip6s: 'nsip6', nd6s: 'nd6?filter=vxlan:4096', route6s: 'route6' });
    // without the IPv6 overlay nothing of IPv6 is asked for or added
    expect(observePaths(layout)).toMatchObject({ nsip6s: undefined, nd6s: undefined, route6s: undefined });
    expect(desiredEntries(dualPlan, layout).filter((e) => e.kind.endsWith('6'))).toEqual([]);
  });

  it('reads the ADC\'s answers however it spells an address, and leaves its link-local NSIP6, connected route6, other clusters\' and other vxlans\' entries alone', () => {
    const lists: ObservedLists = {
      vxlans: [], bindings: [], nsips: [], arps: [], bridges: [], routes: [], profiles: [], pbrs: [], claims: [],
      nsip6s: [
        { ipv6address: 'FD00:C0:0::0001/64', iptype: ['SNIP'], scope: 'global' },
        { ipv6address: 'fe80::2ad:ff:fe00:1/64', iptype: ['NSIP'], scope: 'link-local' },
        { ipv6address: 'fd00:c0::99/64', iptype: ['VIP'] },
        { ipv6address: 'fd00:aa::1/64', iptype: ['SNIP'] },
      ],
      nd6s: [
        { neighbor: 'fd00:00c0::2', mac: '02:C4:C6:12:10:02', vxlan: '4096', vtep: '198.18.1.1', state: 'REACHABLE' },
        { neighbor: 'fd00:c0::7', mac: '02:00:00:00:00:07', vxlan: '200', vtep: '10.0.0.7' },
      ],
      route6s: [
        { network: 'FD00:19::/64', gateway: 'fd00:c0:0:0::2' },
        { network: 'fd00:c0::/64', gateway: '::', routetype: 'CONNECTED' },
        { network: 'fd00:ab::/64', gateway: 'fd00:aa::2' },
      ],
    };
    const observed = observedEntries(lists, dual);
    expect(observed.map((e) => `${e.kind} ${e.key}`)).toEqual(['nsip6 fd00:c0::1/64', 'nd6 fd00:c0::2', 'route6 fd00:19::/64/fd00:c0::2']);
    const desired = desiredEntries(dualPlan, dual).filter((e) => e.kind.endsWith('6'));
    expect(diffDevice(desired, observed)).toEqual([]);
  });

  it('claims the IPv6 overlay network too, and refuses one that overlaps another cluster\'s', () => {
    const claim = (key: string, value: string): NitroObject => ({ name: 'chorus_kube_router_owners', key, value });
    expect(ownershipConflict([claim('network-fd00:c1::/64', 'cluster-b')], dual)).toBeUndefined();
    expect(ownershipConflict([claim('network-fd00::/16', 'cluster-b')], dual)).toMatch(/^overlay network fd00:c0::\/64 overlaps fd00::\/16, which cluster "cluster-b" uses/);
  });

  it('adds no nd6 with --citrix-neighbours bridgetable, and no IPv6 entry for a directly routed node (its next hop is IPv4)', () => {
    expect(desiredEntries(dualPlan, { ...dual, neighbours: 'bridgetable' }).filter((e) => e.node === 'a').map((e) => e.kind)).toEqual(['bridgetable', 'route', 'route6']);
    const direct: CoordinatorPlan = { ...dualPlan, peers: [{ ...dualPlan.peers[0]!, path: 'direct' }] };
    expect(desiredEntries(direct, dual).filter((e) => e.node === 'a' && e.kind.endsWith('6'))).toEqual([]);
  });

  it('replaces a route6 whose next hop changes after adding the new one (make before break), like a route', () => {
    const old = desiredEntries(dualPlan, dual).filter((e) => e.node === 'a');
    const moved: CoordinatorPlan = { ...dualPlan, peers: [{ ...dualPlan.peers[0]!, overlayIP: '198.18.16.9', overlayIPv6: 'fd00:c0::9', vtepMAC: '02:c4:c6:12:10:09' }] };
    const { now, later } = splitMakeBeforeBreak(diffDevice(desiredEntries(moved, dual).filter((e) => e.node === 'a'), old));
    expect(now.filter((c) => c.op === 'add').map((c) => c.entry.kind)).toEqual(['arp', 'route', 'nd6', 'route6']);
    expect(later.map((c) => `${c.op} ${c.entry.kind}`)).toEqual(['delete route', 'delete route6', 'delete arp', 'delete nd6']);
  });
});

describe('NITRO emulator rules', () => {
  it('compares a filter value as text (Citrix\'s NITRO examples: filter=servicetype:ssl, curstate:DOWN) and /.../ as a regular expression', () => {
    expect(filterMatches({ vxlan: '4096' }, { vxlan: '4096' })).toBe(true);
    expect(filterMatches({ servicetype: 'ssl' }, { servicetype: 'SSL' })).toBe(true);
    expect(filterMatches({ vxlan: '^4096$' }, { vxlan: '4096' })).toBe(false);
    expect(filterMatches({ name: '/^chorus-4096-/' }, { name: 'chorus-4096-198-19-0-0-24' })).toBe(true);
    expect(filterMatches({ name: '/^chorus-4096-/' }, { name: 'chorus-40960-x' })).toBe(false);
  });

  function adc(): NitroStore {
    const s = new NitroStore();
    s.setSystem({ nsip: { ipaddress: '198.18.0.4', netmask: '255.255.240.0' }, defaultGateway: '198.18.0.1' });
    s.add('nsip', { ipaddress: '198.18.0.3', netmask: '255.255.240.0', type: 'SNIP' });
    s.add('vxlan', { id: 4096, port: 4789 });
    s.add('vxlan_srcip_binding', { id: 4096, srcip: '198.18.0.3' });
    return s;
  }

  it('lists the ADC\'s own NSIP, default route and a DIRECT route per owned subnet beside what was configured', () => {
    const s = adc();
    s.add('nsip', { ipaddress: '198.18.16.1', netmask: '255.255.240.0', type: 'SNIP' });
    expect(s.list('nsip').map((n) => `${String(n.ipaddress)} ${String(n.type)}`).sort()).toEqual(['198.18.0.3 SNIP', '198.18.0.4 NSIP', '198.18.16.1 SNIP']);
    expect(s.list('route').map((r) => `${String(r.network)}/${String(r.netmask)} ${String(r.gateway)} ${r.direct === true ? 'DIRECT' : 'STATIC'}`).sort()).toEqual([
      '0.0.0.0/0.0.0.0 198.18.0.1 STATIC', '198.18.0.0/255.255.240.0 198.18.0.3 DIRECT', '198.18.16.0/255.255.240.0 198.18.16.1 DIRECT',
    ]);
    expect(s.configured('route')).toEqual([]);
  });

  it('has no update for arp; refuses removing a bound vxlan or SNIP and a route whose gateway is not directly reachable', () => {
    const s = adc();
    s.add('arp', { ipaddress: '198.18.16.2', mac: '02:c4:c6:12:10:02', vxlan: 4096, vtep: '198.18.1.1' });
    expect(errorOf(() => s.update('arp', { ipaddress: '198.18.16.2', mac: '02:00:00:00:00:01' }))).toMatchObject({ errorcode: 257 });
    expect(errorOf(() => s.delete('vxlan', { id: 4096 }))).toMatchObject({ errorcode: 257, httpStatus: 599 });
    expect(errorOf(() => s.delete('nsip', { ipaddress: '198.18.0.3' }))).toMatchObject({ errorcode: 257, httpStatus: 599 });
    expect(errorOf(() => s.add('route', { network: '198.19.0.0', netmask: '255.255.255.0', gateway: '10.9.9.9' })).message).toMatch(/not directly reachable/);
    s.add('route', { network: '198.19.0.0', netmask: '255.255.255.0', gateway: '198.18.0.9' });
    // in the order the driver deletes: what refers to the vxlan first
    s.delete('arp', { ipaddress: '198.18.16.2' });
    s.delete('vxlan_srcip_binding', { id: 4096, srcip: '198.18.0.3' });
    s.delete('vxlan', { id: 4096 });
    expect(s.configured('vxlan')).toEqual([]);
  });

  it('IPv6: nsip6 listed with its type as iptype and beside the ADC\'s link-local NSIP6; nd6 has no update and is deleted with its vxlan; a route6 gateway must be on an IPv6 SNIP\'s subnet; any spelling of an address is the same object', () => {
    const s = adc();
    s.add('nsip6', { ipv6address: 'fd00:c0::1/64', type: 'SNIP' });
    expect(s.list('nsip6').map((n) => s.render('nsip6', n))).toEqual([
      { ipv6address: 'fd00:c0::1/64', iptype: ['SNIP'], scope: 'global' }, { ipv6address: 'fe80::2ad:ff:fe00:1/64', iptype: ['NSIP'], scope: 'link-local' },
    ]);
    expect(errorOf(() => s.add('nsip6', { ipv6address: 'FD00:C0:0::1/64' }))).toMatchObject({ errorcode: 273 });
    expect(errorOf(() => s.add('nsip6', { ipv6address: '198.18.16.1/20' }))).toMatchObject({ errorcode: 1097 });
    s.add('nd6', { neighbor: 'fd00:c0::2', mac: '02:c4:c6:12:10:02', vxlan: 4096, vtep: '198.18.1.1' });
    expect(errorOf(() => s.update('nd6', { neighbor: 'fd00:c0::2', mac: '02:00:00:00:00:01' }))).toMatchObject({ errorcode: 257 });
    expect(errorOf(() => s.add('nd6', { neighbor: 'fd00:c0::3', mac: '02:c4:c6:12:10:03', vxlan: 999 }))).toMatchObject({ errorcode: 2614 });
    expect(errorOf(() => s.add('route6', { network: 'fd00:19::/64', gateway: 'fd00:99::1' })).message).toMatch(/not directly reachable/);
    expect(errorOf(() => s.add('route6', { network: 'fd00:19::1/64', gateway: 'fd00:c0::2' }))).toMatchObject({ errorcode: 1097 });
    s.add('route6', { network: 'fd00:19::/64', gateway: 'fd00:c0::2' });
    expect(s.list('route6').map((r) => `${String(r.network)} ${String(r.gateway)}`)).toEqual(['fd00:19::/64 fd00:c0::2', 'fd00:c0::/64 ::']);
    s.delete('route6', { network: 'FD00:0019::/64', gateway: 'fd00:c0:0::2' });
    expect(errorOf(() => s.delete('vxlan_srcip_binding', { id: 4096, srcip: '198.18.0.3' }) ?? s.delete('vxlan', { id: 4096 }))).toBeDefined();
    s.delete('nd6', { neighbor: 'fd00:c0::2' });
    expect(s.configured('nd6')).toEqual([]);
  });

  it('lists learned entries (arp as DYNAMIC) but never configures them', () => {
    const s = adc();
    s.learn('arp', { ipaddress: '198.18.16.200', mac: '02:aa:bb:cc:dd:ee', vxlan: 4096, vtep: '198.18.1.200' });
    expect(s.list('arp')).toEqual([{ ipaddress: '198.18.16.200', mac: '02:aa:bb:cc:dd:ee', vxlan: 4096, vtep: '198.18.1.200', type: 'DYNAMIC' }]);
    expect(s.configured('arp')).toEqual([]);
  });
});
