// shared/pod-cidrs.ts: which nodes are left out of the overlay, and why; the same check for the
// coordinator, the gateway and the agent. Examples for each rule, then properties over many
// random clusters (fast-check).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { refusedNodes, type NodeAddresses } from '../../shared/pod-cidrs.ts';
import { cidrContains, cidrsOverlap, parseCidr, parseIPv4 } from '../../shared/ipv4.ts';
import { ipCidrContains, ipCidrsOverlap, parseIp, parseIpCidr } from '../../shared/ip.ts';

const rules = { overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'], serviceCIDRs: ['198.18.64.0/20'] };
const n = (node: string, underlayIP: string, ...podCIDRs: string[]): NodeAddresses => ({ node, underlayIP, podCIDRs });

describe('pod CIDR and address checks', () => {
  it.each([
    ['an address in the overlay network', n('x', '198.18.16.9', '198.19.9.0/24'), 'its address 198.18.16.9 lies in the overlay network 198.18.16.0/20'],
    ['a pod CIDR that is not one', n('x', '198.18.1.9', '198.19.9.0/33'), /^pod CIDR "198.19.9.0\/33" is not an IPv4 CIDR/],
    ['a pod CIDR overlapping the overlay network', n('x', '198.18.1.9', '198.18.0.0/16'), 'pod CIDR 198.18.0.0/16 overlaps the overlay network 198.18.16.0/20'],
    ['a pod CIDR holding the device VTEP', n('x', '198.18.1.9', '198.18.0.0/24'), 'pod CIDR 198.18.0.0/24 contains the device VTEP 198.18.0.3'],
    ['a pod CIDR holding its own address', n('x', '198.18.1.9', '198.18.1.8/29'), "pod CIDR 198.18.1.8/29 contains this node's own underlay address 198.18.1.9"],
    ['a pod CIDR overlapping the service CIDR', n('x', '198.18.1.9', '198.18.64.0/24'), 'pod CIDR 198.18.64.0/24 overlaps the service CIDR 198.18.64.0/20'],
    ['a pod CIDR with host bits, compared as its network', n('x', '198.18.1.9', '198.18.16.5/24'), 'pod CIDR 198.18.16.5/24 (198.18.16.0/24) overlaps the overlay network 198.18.16.0/20'],
  ])('refuses %s', (_what, node, reason) => {
    const refused = refusedNodes([n('ok', '198.18.1.1', '198.19.0.0/24'), node], rules);
    expect([...refused.keys()]).toEqual(['x']);
    if (typeof reason === 'string') expect(refused.get('x')).toBe(reason);
    else expect(refused.get('x')).toMatch(reason);
  });

  it('refuses a pod CIDR holding another node\'s address, or overlapping an older node\'s pod CIDR (the older keeps it); a refused node holds nothing against others', () => {
    const refused = refusedNodes([
      n('a', '198.18.1.1', '198.19.0.0/24'),
      n('b', '198.18.1.2', '198.18.1.0/28'),
      n('c', '198.18.1.3', '198.19.0.0/23'),
      n('d', '198.18.1.4', '0.0.0.0/0'),
      n('e', '198.18.1.5', '198.19.1.0/24'),
    ], rules);
    expect(Object.fromEntries(refused)).toEqual({
      b: "pod CIDR 198.18.1.0/28 contains node a's underlay address 198.18.1.1",
      c: "pod CIDR 198.19.0.0/23 overlaps node a's pod CIDR 198.19.0.0/24",
      d: 'pod CIDR 0.0.0.0/0 overlaps the overlay network 198.18.16.0/20',
    });
  });

  it('a node\'s own nested pod CIDRs are fine, and another node\'s CIDR inside the wider one is still refused (found by the dual-stack property)', () => {
    for (const own of [['198.19.0.0/16', '198.19.0.0/20'], ['198.19.0.0/20', '198.19.0.0/16']]) {
      expect(Object.fromEntries(refusedNodes([n('a', '198.18.1.1', ...own), n('b', '198.18.1.2', '198.19.32.0/20')], rules))).toEqual({
        b: "pod CIDR 198.19.32.0/20 overlaps node a's pod CIDR 198.19.0.0/16",
      });
    }
  });

  it('with pod ranges set, refuses a pod CIDR outside them', () => {
    const r = { ...rules, podRanges: ['198.19.0.0/17'] };
    expect(Object.fromEntries(refusedNodes([n('in', '198.18.1.1', '198.19.3.0/24'), n('out', '198.18.1.2', '198.20.0.0/24'), n('wider', '198.18.1.3', '198.19.0.0/16')], r))).toEqual({
      out: 'pod CIDR 198.20.0.0/24 lies outside the configured pod ranges (198.19.0.0/17)',
      wider: 'pod CIDR 198.19.0.0/16 lies outside the configured pod ranges (198.19.0.0/17)',
    });
  });

  describe('dual-stack: each family against its own rules', () => {
    const dual = { ...rules, overlayNetworkIPv6: 'fd00:c0::/112', deviceVTEPs: ['198.18.0.3', '2001:db8::3'], serviceCIDRs: ['198.18.64.0/20', 'fd00:5e::/112'] };
    it.each([
      ['an IPv6 pod CIDR overlapping the IPv6 overlay network', n('x', '198.18.1.9', '198.19.9.0/24', 'fd00::/16'), 'pod CIDR fd00::/16 overlaps the overlay network fd00:c0::/112'],
      ['an IPv6 pod CIDR holding an IPv6 device VTEP', n('x', '198.18.1.9', '2001:db8::/64'), 'pod CIDR 2001:db8::/64 contains the device VTEP 2001:db8::3'],
      ['an IPv6 pod CIDR holding an IPv6 node address', n('x', '2001:db8:1::9', '2001:db8:1::/64'), "pod CIDR 2001:db8:1::/64 contains this node's own underlay address 2001:db8:1::9"],
      ['an IPv6 pod CIDR overlapping an IPv6 service CIDR', n('x', '198.18.1.9', 'fd00:5e::/120'), 'pod CIDR fd00:5e::/120 overlaps the service CIDR fd00:5e::/112'],
      ['an IPv6 pod CIDR that is not one', n('x', '198.18.1.9', 'fd00:1::/129'), /^pod CIDR "fd00:1::\/129" is not an IPv6 CIDR/],
      ['an IPv6 pod CIDR in non-canonical text, compared as its network', n('x', '198.18.1.9', 'FD00:00C0::1/100'), 'pod CIDR FD00:00C0::1/100 (fd00:c0::/100) overlaps the overlay network fd00:c0::/112'],
      ['an IPv6 node address in the IPv6 overlay network', n('x', 'fd00:c0::9', 'fd00:1::/64'), 'its address fd00:c0::9 lies in the overlay network fd00:c0::/112'],
    ])('refuses %s', (_what, node, reason) => {
      const refused = refusedNodes([n('ok', '198.18.1.1', '198.19.0.0/24', 'fd00:10::/64'), node], dual);
      expect([...refused.keys()]).toEqual(['x']);
      if (typeof reason === 'string') expect(refused.get('x')).toBe(reason);
      else expect(refused.get('x')).toMatch(reason);
    });

    it('an IPv6 pod CIDR overlapping an older node\'s IPv6 pod CIDR is refused; the same prefix bits in the other family are no overlap', () => {
      const refused = refusedNodes([
        n('a', '198.18.1.1', '198.19.0.0/24', 'fd00:10::/64'),
        n('b', '198.18.1.2', '198.19.1.0/24', 'fd00:10::/56'),
        // ::c613:200/120 holds the same 32 low bits as 198.19.2.0/24: still no clash across families
        n('c', '198.18.1.3', '198.19.2.0/24', '::c613:200/120'),
      ], dual);
      expect(Object.fromEntries(refused)).toEqual({ b: "pod CIDR fd00:10::/56 overlaps node a's pod CIDR fd00:10::/64" });
    });

    it('pod ranges apply per family: IPv4 ranges alone leave IPv6 pod CIDRs free, and the other way round', () => {
      expect(refusedNodes([n('a', '198.18.1.1', '198.19.0.0/24', 'fd00:10::/64')], { ...dual, podRanges: ['198.19.0.0/16'] }).size).toBe(0);
      expect(Object.fromEntries(refusedNodes([n('a', '198.18.1.1', '198.19.0.0/24', 'fd00:10::/64'), n('b', '198.18.1.2', '198.19.1.0/24', 'fd00:20::/64')], { ...dual, podRanges: ['198.19.0.0/16', 'fd00:10::/60'] }))).toEqual({
        b: 'pod CIDR fd00:20::/64 lies outside the configured pod ranges (fd00:10::/60)',
      });
    });

    it('without an IPv6 overlay network, IPv6 pod CIDRs are not looked at (not routed, so not refused or held)', () => {
      expect(refusedNodes([n('a', '198.18.1.1', '198.19.0.0/24', 'fd00:10::/64'), n('b', '198.18.1.2', '198.19.1.0/24', 'fd00:10::/64', 'fd00:zz::/64')], rules).size).toBe(0);
    });
  });

  const cidr = fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 8, max: 30 })).map(([ip, prefix]) => `${[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.')}/${prefix}`);
  const address = fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((ip) => [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.'));
  const cluster = fc.uniqueArray(fc.record({ node: fc.string({ minLength: 1, maxLength: 6 }), underlayIP: address, podCIDRs: fc.array(cidr, { maxLength: 2 }) }), { selector: (x) => x.node, maxLength: 12 });

  it('property: the nodes kept never overlap each other, the overlay network, a VTEP, a node address or a service CIDR', () => {
    fc.assert(fc.property(cluster, (nodes) => {
      const refused = refusedNodes(nodes, rules);
      const kept = nodes.filter((x) => !refused.has(x.node));
      const overlay = parseCidr(rules.overlayNetwork);
      const addresses = [...rules.deviceVTEPs, ...nodes.map((x) => x.underlayIP)].map(parseIPv4);
      const cidrs = kept.flatMap((x) => x.podCIDRs.map((c) => ({ node: x.node, c: parseCidr(c, false) })));
      for (const x of kept) expect(cidrContains(overlay, parseIPv4(x.underlayIP))).toBe(false);
      for (const { c } of cidrs) {
        expect(cidrsOverlap(c, overlay)).toBe(false);
        expect(cidrsOverlap(c, parseCidr(rules.serviceCIDRs[0]!))).toBe(false);
        expect(addresses.some((a) => cidrContains(c, a))).toBe(false);
      }
      for (let i = 0; i < cidrs.length; i++) for (let j = i + 1; j < cidrs.length; j++) {
        if (cidrs[i]!.node !== cidrs[j]!.node) expect(cidrsOverlap(cidrs[i]!.c, cidrs[j]!.c)).toBe(false);
      }
    }), { numRuns: 300 });
  });

  // IPv6 CIDRs and addresses from a small corner of the space (fd00:c0::/104 around the overlay network), so that they collide often
  const v6 = (v: number): string => `fd00:c0::${(v >>> 16).toString(16)}:${(v & 0xffff).toString(16)}`;
  const cidr6 = fc.tuple(fc.integer({ min: 0, max: 2 ** 24 - 1 }), fc.integer({ min: 100, max: 124 })).map(([v, prefix]) => `${v6(v)}/${prefix}`);
  const cluster6 = fc.uniqueArray(fc.record({ node: fc.string({ minLength: 1, maxLength: 6 }), underlayIP: fc.oneof(address, fc.integer({ min: 0, max: 2 ** 24 - 1 }).map(v6)), podCIDRs: fc.array(fc.oneof(cidr, cidr6), { maxLength: 3 }) }), { selector: (x) => x.node, maxLength: 12 });

  it('property (dual-stack): the nodes kept never overlap each other, an overlay network, a VTEP or a node address, in either family', () => {
    const dual = { ...rules, overlayNetworkIPv6: 'fd00:c0::/112', deviceVTEPs: ['198.18.0.3', 'fd00:c0::1:3'] };
    fc.assert(fc.property(cluster6, (nodes) => {
      const refused = refusedNodes(nodes, dual);
      const kept = nodes.filter((x) => !refused.has(x.node));
      const overlays = [dual.overlayNetwork, dual.overlayNetworkIPv6].map((c) => parseIpCidr(c));
      const addresses = [...dual.deviceVTEPs, ...nodes.map((x) => x.underlayIP)].map(parseIp);
      const cidrs = kept.flatMap((x) => x.podCIDRs.map((c) => ({ node: x.node, c: parseIpCidr(c, false) })));
      for (const x of kept) expect(overlays.some((o) => ipCidrContains(o, parseIp(x.underlayIP)))).toBe(false);
      for (const { c } of cidrs) {
        expect(overlays.some((o) => ipCidrsOverlap(c, o))).toBe(false);
        expect(addresses.some((a) => ipCidrContains(c, a))).toBe(false);
      }
      for (let i = 0; i < cidrs.length; i++) for (let j = i + 1; j < cidrs.length; j++) {
        if (cidrs[i]!.node !== cidrs[j]!.node) expect(ipCidrsOverlap(cidrs[i]!.c, cidrs[j]!.c)).toBe(false);
      }
    }), { numRuns: 300 });
  });

  it('property: a node added last that conflicts only with itself changes nobody else\'s verdict', () => {
    fc.assert(fc.property(cluster, (nodes) => {
      const before = refusedNodes(nodes, rules);
      const after = refusedNodes([...nodes, n('zz-newest', '198.18.0.250', '0.0.0.0/0')], rules);
      expect(after.get('zz-newest')).toBeDefined();
      after.delete('zz-newest');
      // its address (198.18.0.250) may fall inside an older node's pod CIDR, which refuses that node: only then may verdicts differ
      const holder = nodes.filter((x) => x.podCIDRs.some((c) => { try { return cidrContains(parseCidr(c, false), parseIPv4('198.18.0.250')); } catch { return false; } })).map((x) => x.node);
      for (const [k, v] of before) expect(after.get(k)).toBe(v);
      for (const k of after.keys()) if (!before.has(k)) expect(holder).toContain(k);
    }), { numRuns: 300 });
  });
});
