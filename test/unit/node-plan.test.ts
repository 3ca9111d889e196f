import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatIPv4 } from '../../shared/ipv4.ts';
import type { V1Node } from '@kubernetes/client-node';
import { planNode, resolveNodeInputs, hostFactsOf } from '../../agent/node-plan.ts';
import { isDirect, isProblem } from '../../agent/plan-types.ts';
import { addressRuns, comparableTable, renderDirectRuleset, renderRuleset, replaceTableScript, runText, sameTable, vniMatch } from '../../agent/firewall/ruleset.ts';
import { encodeHubInfo } from '../../shared/tables.ts';
import { Metrics } from '../../shared/metrics.ts';
import { DEFAULT_NAMES, instanceNames } from '../../shared/keys.ts';

const hubData = encodeHubInfo({ vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.16.1'] });
const node = (annotations: Record<string, string> = { 'kube-router.chorus.io/overlay-ip': '198.18.16.2' }, ip = '198.18.1.1'): V1Node => ({
  metadata: { name: 'n1', annotations },
  spec: { podCIDRs: ['198.19.0.0/24'] },
  status: { addresses: ip ? [{ type: 'InternalIP', address: ip }] : [] },
});
const facts = { underlayMtu: 1500, networks: [{ dev: 'eth0', cidr: '198.18.1.1/20' }, { dev: 'cni0', cidr: '198.19.0.1/24' }] };

describe('node inputs', () => {
  it('resolves hub info, allocation, underlay IP and pod CIDRs', () => {
    expect(resolveNodeInputs('n1', node(), hubData, 'hub')).toMatchObject({ overlayIP: '198.18.16.2', underlayIP: '198.18.1.1', podCIDRs: ['198.19.0.0/24'] });
    expect(resolveNodeInputs('n1', node(), hubData, 'hub', '198.18.9.9')).toMatchObject({ underlayIP: '198.18.9.9' });
  });
  it.each([
    ['no Node', undefined, hubData, 'waiting', /not found/],
    ['no hub info', node(), undefined, 'waiting', /waiting for hub info/],
    ['no allocation yet', node({}), hubData, 'waiting', /allocate this node/],
    ['a VNI out of range', node(), { ...hubData, vni: '16777216' }, 'invalid', /"vni" must be in 1..16777215/],
    ['bad hub JSON-ish values', node(), { ...hubData, overlayNetwork: 'x' }, 'invalid', /not an IPv4 CIDR/],
    ['a garbled allocation', node({ 'kube-router.chorus.io/overlay-ip': '198.18.16' }), hubData, 'invalid', /is not an IPv4 address/],
    ['no InternalIP', node(undefined, ''), hubData, 'invalid', /no IPv4 InternalIP/],
  ])('reports %s', (_what, n, hub, kind, reason) => {
    const r = resolveNodeInputs('n1', n, hub, 'hub');
    expect(isProblem(r)).toBe(true);
    expect(r).toMatchObject({ kind, reason: expect.stringMatching(reason) });
  });
});

describe('node inputs and plan on an IPv6 underlay', () => {
  const v6Hub = encodeHubInfo({ vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['2001:db8:18::3'], deviceOverlayIPs: ['198.18.16.1'] });
  const both: V1Node = { ...node(), status: { addresses: [{ type: 'InternalIP', address: '198.18.1.1' }, { type: 'InternalIP', address: '2001:DB8:18:0::1:1' }] } };

  it('takes the node\'s InternalIP of the VTEPs\' family (canonical), and plans VXLAN over IPv6: local IPv6, MTU 70 below the underlay\'s, FDB toward the IPv6 VTEP, an ip6 VTEP check', () => {
    const r = resolveNodeInputs('n1', both, v6Hub, 'hub');
    expect(r).toMatchObject({ underlayIP: '2001:db8:18::1:1' });
    if (isProblem(r)) throw new Error(r.reason);
    const plan = planNode(r, { ...facts, underlayDevice: 'eth0' });
    if (isProblem(plan) || !('overlay' in plan)) throw new Error('no overlay plan');
    expect(plan.overlay.vxlan).toMatchObject({ local: '2001:db8:18::1:1', mtu: 1430 });
    expect(plan.overlay.fdb).toEqual([{ mac: '00:00:00:00:00:00', dst: '2001:db8:18::3' }]);
    expect(plan.firewall).toMatchObject({ allowedVTEPs: ['2001:db8:18::3'], underlayFamily: 6 });
  });

  it('says which family is missing, and refuses an --underlay-ip of the other family (a mixed underlay)', () => {
    expect(resolveNodeInputs('n1', node(), v6Hub, 'hub')).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/no IPv6 InternalIP and no --underlay-ip was given \(the underlay is IPv6: the device VTEPs are\)/) });
    expect(resolveNodeInputs('n1', both, v6Hub, 'hub', '198.18.9.9')).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/--underlay-ip 198.18.9.9 is not IPv6, and the device VTEPs \(2001:db8:18::3\) are: a mixed underlay is not supported/) });
  });
});

describe('dual-stack node inputs and plan', () => {
  const dualHub = encodeHubInfo({ vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.16.1'], overlayNetworkIPv6: 'fd00:c0::/64', deviceOverlayIPv6s: ['fd00:c0::1'] });
  const dualNode: V1Node = { ...node(), spec: { podCIDRs: ['198.19.0.0/24', 'fd00:10::/64'] } };

  it('derives the node\'s IPv6 overlay address from its IPv4 one and splits its pod CIDRs by family', () => {
    expect(resolveNodeInputs('n1', dualNode, dualHub, 'hub')).toMatchObject({ overlayIP: '198.18.16.2', podCIDRs: ['198.19.0.0/24'], ipv6: { overlayIP: 'fd00:c0::2', podCIDRs: ['fd00:10::/64'] } });
  });

  it('with a schema-1 hub, IPv6 pod CIDRs are not looked at: no IPv6 address, no IPv6 firewall rules', () => {
    const r = resolveNodeInputs('n1', dualNode, hubData, 'hub');
    expect(r).toMatchObject({ podCIDRs: ['198.19.0.0/24'] });
    expect(r).not.toHaveProperty('ipv6');
  });

  it('plans both addresses and the identity SNAT of both families', () => {
    const r = resolveNodeInputs('n1', dualNode, dualHub, 'hub');
    if (isProblem(r)) throw new Error(r.reason);
    const plan = planNode(r, facts);
    if (isProblem(plan) || isDirect(plan)) throw new Error('expected an overlay plan');
    expect(plan.overlay.addresses).toEqual(['198.18.16.2/20', 'fd00:c0::2/64']);
    const rules = renderRuleset(plan.firewall);
    expect(rules).toContain('oifname "chorus-4096" ip6 saddr fd00:10::/64 snat ip6 to fd00:10::/64');
    expect(rules).toContain('ip6 saddr fd00:c0::1 oifname != "chorus-4096" snat ip6 to fd00:c0::1');
    expect(addressRuns(['fd00:c0::3', 'fd00:c0::1', 'fd00:c0::2', 'fd00:c0::9']).map(runText)).toEqual(['fd00:c0::1-fd00:c0::3', 'fd00:c0::9']);
  });

  it('refuses its node when an IPv6 pod CIDR overlaps the IPv6 overlay network, as the coordinator does', () => {
    const r = resolveNodeInputs('n1', { ...dualNode, spec: { podCIDRs: ['198.19.0.0/24', 'fd00:c0::/48'] } }, dualHub, 'hub');
    if (isProblem(r)) throw new Error(r.reason);
    expect(planNode(r, facts)).toMatchObject({ kind: 'invalid', reason: 'this node is left out of the overlay: pod CIDR fd00:c0::/48 overlaps the overlay network fd00:c0::/64' });
  });
});

describe('instances', () => {
  it('names everything of an instance apart from the default instance and from each other', () => {
    const a = instanceNames('a');
    expect([a.hubConfigMap, a.peersConfigMapPrefix, a.leaderLease, a.deviceStatusConfigMap, a.firewallTable, a.annotationOverlayIP, a.labelTable, a.vxlanDevice(16777215)]).toEqual([
      'chorus-kube-router-a-hub', 'chorus-kube-router-a-peers-', 'chorus-kube-router-a-coordinator', 'chorus-kube-router-a-device', 'chorus-kube-router-a',
      'a.kube-router.chorus.io/overlay-ip', 'a.kube-router.chorus.io/table', 'cha-16777215',
    ]);
    const longest = instanceNames('abcd').vxlanDevice(16777215);
    expect(longest.length).toBeLessThanOrEqual(15);
    // each instance owns only its own devices (any VNI), never the default instance's or another's
    expect(['chorus-4096', 'cha-4096', 'cha-7', 'chab-4096', 'cha-x'].filter(a.ownsDevice)).toEqual(['cha-4096', 'cha-7']);
    expect(['chorus-4096', 'cha-4096'].filter(DEFAULT_NAMES.ownsDevice)).toEqual(['chorus-4096']);
    for (const bad of ['A', '1a', 'abcde', 'a-b', 'a.b']) expect(() => instanceNames(bad)).toThrow(/1 to 4 characters/);
  });

  it('an instance reads its own allocation annotation, plans its own device and table, and sees the default instance\'s device as another VXLAN', () => {
    const a = instanceNames('a');
    const annotated = node({ 'kube-router.chorus.io/overlay-ip': '198.18.16.2', 'a.kube-router.chorus.io/overlay-ip': '198.18.16.9' });
    const inputs = resolveNodeInputs('n1', annotated, hubData, 'hub', undefined, a);
    if (isProblem(inputs)) throw new Error(inputs.reason);
    expect(inputs.overlayIP).toBe('198.18.16.9');
    expect(resolveNodeInputs('n1', node(), hubData, 'hub', undefined, a)).toMatchObject({ kind: 'waiting' });
    const hostWith = (otherVni: number): ReturnType<typeof hostFactsOf> => hostFactsOf([
      { name: 'eth0', mtu: 1500, cidrs: ['198.18.1.1/20'] }, { name: 'chorus-100000', mtu: 1450, cidrs: ['198.18.32.2/20'], vxlan: { vni: otherVni, port: 4789 } },
    ], inputs);
    const plan = planNode(inputs, hostWith(100000));
    if (isProblem(plan) || isDirect(plan)) throw new Error('expected an overlay plan');
    expect([plan.overlay.vxlan.name, plan.firewall.table]).toEqual(['cha-4096', 'chorus-kube-router-a']);
    expect(renderRuleset(plan.firewall)).toMatch(/^table inet chorus-kube-router-a \{/);
    // the same VNI on the same port as the other instance is a clash like any other VXLAN's
    expect(planNode(inputs, hostWith(4096))).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/chorus-100000 .* already uses VNI 4096 .* so cha-4096 is not created/) });
  });
});

describe('node plan', () => {
  const inputs = resolveNodeInputs('n1', node(), hubData, 'hub');
  if (isProblem(inputs)) throw new Error(inputs.reason);
  it('plans no overlay at all for a node the coordinator marked as routed directly, and refuses a path it does not know', () => {
    const direct = resolveNodeInputs('n1', node({ 'kube-router.chorus.io/overlay-ip': '198.18.16.2', 'kube-router.chorus.io/path': 'direct' }), hubData, 'hub');
    if (isProblem(direct)) throw new Error(direct.reason);
    const host = hostFactsOf([{ name: 'eth0', mtu: 1500, cidrs: ['198.18.1.1/20'] }], direct);
    expect(planNode(direct, host)).toEqual({ direct: { deviceVTEPs: ['198.18.0.3'], underlayIP: '198.18.1.1', podCIDRs: ['198.19.0.0/24'] }, firewall: { table: 'chorus-kube-router', deviceAddresses: ['198.18.0.3'], podCIDRs: ['198.19.0.0/24'] } });
    expect(resolveNodeInputs('n1', node({ 'kube-router.chorus.io/overlay-ip': '198.18.16.2', 'kube-router.chorus.io/path': 'bgp' }), hubData, 'hub')).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/kube-router.chorus.io\/path="bgp" is not "direct"/) });
    // another instance's path annotation is not this instance's
    expect(resolveNodeInputs('n1', node({ 'kube-router.chorus.io/overlay-ip': '198.18.16.2', 'a.kube-router.chorus.io/path': 'direct' }), hubData, 'hub')).toMatchObject({ path: 'vxlan' });
  });
  it('plans the overlay device and the firewall toward the device', () => {
    const plan = planNode(inputs, hostFactsOf([{ name: 'eth0', mtu: 1500, cidrs: ['198.18.1.1/20'] }, { name: 'cni0', mtu: 1500, cidrs: ['198.19.0.1/24'] }], inputs));
    if (isProblem(plan) || isDirect(plan)) throw new Error('expected an overlay plan');
    expect(plan.overlay.vxlan).toMatchObject({ name: 'chorus-4096', mtu: 1450, local: '198.18.1.1' });
    expect(plan.firewall).toEqual({ table: 'chorus-kube-router', vxlanDevice: 'chorus-4096', port: 4789, vni: 4096, underlayDevice: 'eth0', allowedVTEPs: ['198.18.0.3'], underlayFamily: 4, deviceOverlayIPs: ['198.18.16.1'], podCIDRs: ['198.19.0.0/24'] });
  });
  it('refuses, touching nothing, when a VXLAN device not ours has our VNI on our port; another VNI on the port is fine', () => {
    const host = (vni: number, port: number): ReturnType<typeof hostFactsOf> => hostFactsOf([
      { name: 'eth0', mtu: 1500, cidrs: ['198.18.1.1/20'] }, { name: 'vxlan.calico', mtu: 1450, cidrs: [], vxlan: { vni, port } }, { name: 'chorus-4096', mtu: 1450, cidrs: [], vxlan: { vni: 4096, port: 4789 } },
    ], inputs);
    expect(planNode(inputs, host(4096, 4789))).toEqual({ kind: 'invalid', reason: expect.stringMatching(/^VXLAN device vxlan\.calico \(not chorus-kube-router's; a CNI's\?\) already uses VNI 4096 on UDP port 4789.*chorus-4096 is not created: give chorus-kube-router another VNI \(the coordinator's --vni \/ CHORUS_VNI, e\.g\. 4097\)/) });
    expect(isProblem(planNode(inputs, host(1, 4789)))).toBe(false);
    expect(isProblem(planNode(inputs, host(4096, 8472)))).toBe(false);
  });
  it('refuses an overlay network that overlaps one of the host networks, naming both', () => {
    const r = planNode(inputs, { ...facts, networks: [...facts.networks, { dev: 'eth1', cidr: '198.18.17.5/24' }] });
    expect(r).toEqual({ kind: 'invalid', reason: 'overlay network 198.18.16.0/20 overlaps 198.18.17.5/24 on this host\'s eth1; pick an overlay network no host uses' });
  });
  it('refuses an overlay that overlaps the pod CIDR and an underlay IP no interface has', () => {
    expect(planNode({ ...inputs, podCIDRs: ['198.18.16.0/24'] }, facts)).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('pod CIDR 198.18.16.0/24') });
    expect(planNode(inputs, { ...facts, underlayMtu: undefined })).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('no interface on this host has the underlay IP') });
  });
});

describe('firewall ruleset', () => {
  it('renders the VXLAN checks (our VNI only: underlay interface, known VTEPs, no IPv6) and the identity SNAT rules', () => {
    const text = renderRuleset({ vxlanDevice: 'chorus-4096', port: 4789, vni: 4096, underlayDevice: 'eth0', allowedVTEPs: ['198.18.0.3', '198.18.0.4'], deviceOverlayIPs: ['198.18.16.1'], podCIDRs: ['198.19.0.0/24'] });
    expect(text).toBe([
      'table inet chorus-kube-router {',
      '\tset allowed-vteps {', '\t\ttype ipv4_addr', '\t\telements = { 198.18.0.3, 198.18.0.4 }', '\t}',
      '\tchain input {', '\t\ttype filter hook input priority filter - 10; policy accept;',
      '\t\tmeta nfproto ipv6 udp dport 4789 @th,96,24 0x1000 counter drop comment "no IPv6 underlay: our VXLAN only over IPv4"',
      '\t\tudp dport 4789 @th,96,24 0x1000 iifname != "eth0" counter drop comment "our VXLAN only on the underlay interface"',
      '\t\tudp dport 4789 @th,96,24 0x1000 ip saddr != @allowed-vteps counter drop comment "our VXLAN only from known VTEPs"', '\t}',
      '\tchain postrouting {', '\t\ttype nat hook postrouting priority srcnat - 10; policy accept;',
      '\t\toifname "chorus-4096" ip saddr 198.19.0.0/24 snat ip to 198.19.0.0/24 comment "pods to the device keep their address"',
      '\t\tip saddr 198.18.16.1 oifname != "chorus-4096" snat ip to 198.18.16.1 comment "the device keeps its address toward pods"',
      '\t}', '}',
    ].join('\n'));
    // the table of earlier versions (family ip) goes in the same transaction
    expect(replaceTableScript('X')).toBe('table inet chorus-kube-router {}\ndelete table inet chorus-kube-router\ntable ip chorus-kube-router {}\ndelete table ip chorus-kube-router\nX\n');
  });
  it('on an IPv6 underlay: an ipv6_addr VTEP set matched with ip6 saddr, and our VXLAN dropped over IPv4 instead of IPv6', () => {
    const text = renderRuleset({ vxlanDevice: 'chorus-4096', port: 4789, vni: 4096, underlayDevice: 'eth0', allowedVTEPs: ['2001:db8:18::3'], deviceOverlayIPs: ['198.18.16.1'], podCIDRs: ['198.19.0.0/24'] });
    expect(text).toContain('\t\ttype ipv6_addr\n\t\telements = { 2001:db8:18::3 }');
    expect(text).toContain('\t\tmeta nfproto ipv4 udp dport 4789 @th,96,24 0x1000 counter drop comment "IPv6 underlay: our VXLAN only over IPv6"');
    expect(text).toContain('\t\tudp dport 4789 @th,96,24 0x1000 ip6 saddr != @allowed-vteps counter drop comment "our VXLAN only from known VTEPs"');
    expect(text).not.toContain('ip saddr != @allowed-vteps');
    // a gateway that has no peer yet says its family itself
    expect(renderRuleset({ vxlanDevice: 'v', port: 1, vni: 1, underlayDevice: undefined, allowedVTEPs: [], underlayFamily: 6, deviceOverlayIPs: [], podCIDRs: [] })).toContain('type ipv6_addr');
  });
  it('matches the VNI field of the VXLAN header (RFC 7348: 24 bits after 8 bytes of UDP and 4 of flags)', () => {
    expect(vniMatch(1)).toBe('@th,96,24 0x1');
    expect(vniMatch(16777215)).toBe('@th,96,24 0xffffff');
  });
  it('renders an empty set when no VTEP is known yet (drops all VXLAN)', () => {
    expect(renderRuleset({ vxlanDevice: 'v', port: 1, vni: 1, underlayDevice: undefined, allowedVTEPs: [], deviceOverlayIPs: [], podCIDRs: [] })).not.toContain('elements');
  });
  it('groups addresses and networks into merged runs, written as nft lists them back (an address, an aligned block as a prefix, else a-b)', () => {
    const runs = addressRuns(['198.18.16.3', '198.18.16.1', '198.18.16.2', '198.18.16.9', '198.18.16.4', '198.18.16.5', '198.18.16.6', '198.18.16.7']);
    expect(runs.map(runText)).toEqual(['198.18.16.1-198.18.16.7', '198.18.16.9']);
    const blocks = addressRuns(['198.18.16.4', '198.18.16.5', '198.18.16.6', '198.18.16.7', '198.18.16.10', '198.18.16.11', '198.18.16.13', '198.18.16.14']);
    expect(blocks.map(runText)).toEqual(['198.18.16.4/30', '198.18.16.10/31', '198.18.16.13-198.18.16.14']);
    expect(addressRuns(['fd00::4', 'fd00::5', 'fd00::6', 'fd00::7']).map(runText)).toEqual(['fd00::4/126']);
    // networks merge with what they touch, as the elements of an nft interval set do
    expect(addressRuns(['198.19.1.0/24', '198.19.0.0/24', '198.19.0.7', '198.19.3.0/24']).map(runText)).toEqual(['198.19.0.0/23', '198.19.3.0/24']);
    expect(renderDirectRuleset({ deviceAddresses: ['198.18.0.4', '198.18.0.5', '198.18.0.0'], podCIDRs: ['198.19.1.0/24', '198.19.0.0/24'] }))
      .toContain('\t\tip saddr 198.18.0.4/31 ip daddr 198.19.0.0/23 snat ip to 198.18.0.4/31 comment');
  });
  it('a run is written as exactly the addresses it covers: a prefix only for an aligned power-of-two block, else first-last', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 600 }), (first, extra) => {
      const last = Math.min(first + extra, 2 ** 32 - 1);
      const size = last - first + 1;
      const text = runText({ family: 4, first: BigInt(first), last: BigInt(last) });
      const block = Number.isInteger(Math.log2(size)) && first % size === 0;
      if (size === 1) expect(text).toBe(formatIPv4(first));
      else if (block) expect(text).toBe(`${formatIPv4(first)}/${32 - Math.log2(size)}`);
      else expect(text).toBe(`${formatIPv4(first)}-${formatIPv4(last)}`);
    }));
  });
  it('compares a table with its listing by rules: indentation, blank lines and set elements (wrapped, in any order) aside', () => {
    const spec = { vxlanDevice: 'chorus-4096', port: 4789, vni: 4096, underlayDevice: 'eth0', allowedVTEPs: ['198.18.0.3', '198.18.0.4', '198.18.0.10'], deviceOverlayIPs: ['198.18.16.1'], podCIDRs: ['198.19.0.0/24'] };
    const text = renderRuleset(spec);
    // what nft 1.0.6 prints for it: blank lines between blocks, the elements wrapped and in its order
    const listing = text
      .replace('\t\telements = { 198.18.0.3, 198.18.0.4, 198.18.0.10 }', '\t\telements = { 198.18.0.10, 198.18.0.3,\n\t\t\t     198.18.0.4 }')
      .replace('\t}\n\tchain input', '\t}\n\n\tchain input').replace('\t}\n\tchain postrouting', '\t}\n\n\tchain postrouting');
    expect(listing).not.toBe(text);
    expect(sameTable(text, listing)).toBe(true);
    expect(comparableTable(listing)).toBe(comparableTable(text));
    // a rule gone, an element gone, a changed address: not the same table
    expect(sameTable(text, listing.replace(/\n.*iifname != "eth0".*/, ''))).toBe(false);
    expect(sameTable(text, listing.replace('198.18.0.10, ', ''))).toBe(false);
    expect(sameTable(text, renderRuleset({ ...spec, deviceOverlayIPs: ['198.18.16.2'] }))).toBe(false);
    expect(sameTable(text, renderRuleset({ ...spec, allowedVTEPs: ['198.18.0.3', '198.18.0.4'] }))).toBe(false);
  });
});

describe('metrics', () => {
  it('renders counters, gauges and histograms in the Prometheus text format, declared label sets at 0 from the start', async () => {
    const m = new Metrics();
    const c = m.counter('x_total', 'Things.', { kind: ['a"b', 'c'] });
    c({ kind: 'a"b' });
    c({ kind: 'a"b' }, 2);
    m.gauge('y', 'Level.')(5);
    m.histogram('z_seconds', 'Time.', [0.1, 1])(0.5);
    const text = await m.render();
    expect(text).toContain('# HELP x_total Things.\n# TYPE x_total counter\nx_total{kind="a\\"b"} 3\nx_total{kind="c"} 0\n');
    expect(text).toContain('# TYPE y gauge\ny 5\n');
    expect(text).toContain('z_seconds_bucket{le="0.1"} 0\nz_seconds_bucket{le="1"} 1\nz_seconds_bucket{le="+Inf"} 1\nz_seconds_sum 0.5\nz_seconds_count 1\n');
    expect(await m.value('x_total', { kind: 'a"b' })).toBe(3);
    expect(await m.value('x_total', { kind: 'c' })).toBe(0);
  });
});
