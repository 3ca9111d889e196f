// Addresses of both families (shared/ip.ts), checked against implementations nobody on the project
// wrote: the WHATWG URL parser (Node's) for IPv6 text and its canonical form, net.isIPv6 for what
// is an IPv6 address, net.BlockList for containment; and against ipv4.ts for IPv4.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BlockList, isIPv6 } from 'node:net';
import {
  canonicalIpText, formatIPv6, formatIp, formatIpCidr, hostRange, ipCidrContains, ipCidrSize, ipCidrsOverlap, nthHost, parseIPv6, parseIp, parseIpCidr, type IpCidr,
} from '../../shared/ip.ts';
import { cidrContains, cidrsOverlap, formatIPv4, parseCidr, usableHostRange } from '../../shared/ipv4.ts';

const v6 = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });
/** Addresses with long zero runs, as real ones have (a uniform 128-bit value almost never has one). */
const sparseV6 = fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((gs) => gs.reduce((v, g) => (v << 16n) | BigInt(g), 0n));
const anyV6 = fc.oneof(v6, sparseV6);
const urlCanonical = (text: string): string => new URL(`http://[${text}]/`).hostname.slice(1, -1);

/** Another way to write the same address: groups padded with zeros, upper case here and there, no "::". */
function spelledOut(value: bigint, pad: readonly boolean[], upper: readonly boolean[]): string {
  return Array.from({ length: 8 }, (_, i) => {
    const g = Number((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16);
    const s = pad[i] ? g.padStart(4, '0') : g;
    return upper[i] ? s.toUpperCase() : s;
  }).join(':');
}

describe('IPv6 text', () => {
  it('writes every address in the canonical form (RFC 5952, as the URL serializer writes it) and reads it back', () => {
    fc.assert(fc.property(anyV6, (v) => {
      const text = formatIPv6(v);
      expect(text).toBe(urlCanonical(text));
      expect(parseIPv6(text)).toBe(v);
    }), { numRuns: 2000 });
  });

  it('reads every other spelling of an address as the URL parser does', () => {
    fc.assert(fc.property(anyV6, fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }), fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }), (v, pad, upper) => {
      const text = spelledOut(v, pad, upper);
      expect(parseIPv6(text)).toBe(v);
      expect(formatIPv6(parseIPv6(text))).toBe(urlCanonical(text));
    }), { numRuns: 1000 });
  });

  it('canonicalIpText: any spelling of an address (or a network, with and without a prefix) is the canonical text; other text is kept', () => {
    fc.assert(fc.property(anyV6, fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }), fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 128 }), (v, pad, upper, prefix) => {
      const text = spelledOut(v, pad, upper);
      expect(canonicalIpText(text)).toBe(formatIPv6(v));
      expect(canonicalIpText(`${text}/${prefix}`)).toBe(formatIpCidr(parseIpCidr(`${formatIPv6(v)}/${prefix}`, false)));
    }), { numRuns: 500 });
    expect(canonicalIpText('198.18.16.2')).toBe('198.18.16.2');
    expect(canonicalIpText('02:C4:C6:12:10:02')).toBe('02:C4:C6:12:10:02');
    expect(canonicalIpText('/Common/chorus-4096')).toBe('/Common/chorus-4096');
  });

  it('accepts exactly the strings net.isIPv6 accepts (hex digits and colons)', () => {
    const candidate = fc.array(fc.constantFrom('0', '1', 'a', 'F', 'ffff', '12345', ':', ':', '::'), { minLength: 1, maxLength: 14 }).map((parts) => parts.join(''));
    fc.assert(fc.property(candidate, (text) => {
      let ours: boolean;
      try {
        parseIPv6(text);
        ours = true;
      } catch {
        ours = false;
      }
      expect(ours, text).toBe(isIPv6(text));
    }), { numRuns: 5000 });
  });

  it('reads a dotted IPv4 tail, and says what is wrong with bad text', () => {
    expect(formatIPv6(parseIPv6('::ffff:192.0.2.1'))).toBe('::ffff:c000:201');
    expect(formatIPv6(parseIPv6('64:ff9b::198.51.100.7'))).toBe(urlCanonical('64:ff9b::198.51.100.7'));
    expect(formatIPv6(parseIPv6('2001:db8:0:0:1:0:0:1'))).toBe('2001:db8::1:0:0:1'); // the first of two equal runs
    expect(formatIPv6(parseIPv6('2001:db8:0:1:1:1:1:1'))).toBe('2001:db8:0:1:1:1:1:1'); // one zero group stays
    expect(() => parseIPv6('fe80::1%eth0')).toThrow('not an IPv6 address: "fe80::1%eth0" (a zone index has no place in an overlay address)');
    expect(() => parseIPv6('1::2::3')).toThrow('("::" more than once)');
    expect(() => parseIPv6('1:2:3:4:5:6:7')).toThrow('(7 groups, 8 needed without "::")');
    expect(() => parseIPv6('1:2:3:4::5:6:7:8')).toThrow('("::" stands for at least one zero group, and 8 are given)');
    expect(() => parseIPv6('12345::')).toThrow('("12345" is not 1 to 4 hex digits)');
    expect(() => parseIPv6('::1.2.3.256')).toThrow('(its IPv4 part "1.2.3.256" is not an IPv4 address)');
    expect(() => parseIPv6(':1::')).toThrow('(an empty group)');
  });
});

const v4cidr = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }));
const v6cidr = fc.tuple(anyV6, fc.integer({ min: 0, max: 128 }));
const cidrOf = (family: 4 | 6, value: bigint, prefix: number): IpCidr => parseIpCidr(`${formatIp({ family, value })}/${prefix}`, false);

describe('networks of both families', () => {
  it('contain what net.BlockList says they contain, IPv6 and IPv4', () => {
    fc.assert(fc.property(v6cidr, anyV6, ([n, prefix], a) => {
      const c = cidrOf(6, n, prefix);
      const list = new BlockList();
      list.addSubnet(formatIp({ family: 6, value: c.network }), prefix, 'ipv6');
      const inside = { family: 6 as const, value: c.network | (a & (ipCidrSize(c) - 1n)) };
      expect(ipCidrContains(c, inside)).toBe(true);
      expect(list.check(formatIp(inside), 'ipv6')).toBe(true);
      expect(ipCidrContains(c, { family: 6, value: a })).toBe(list.check(formatIp({ family: 6, value: a }), 'ipv6'));
    }), { numRuns: 1000 });
    fc.assert(fc.property(v4cidr, fc.integer({ min: 0, max: 0xffffffff }), ([n, prefix], a) => {
      const c = cidrOf(4, BigInt(n), prefix);
      const list = new BlockList();
      list.addSubnet(formatIp({ family: 4, value: c.network }), prefix, 'ipv4');
      expect(ipCidrContains(c, { family: 4, value: BigInt(a) })).toBe(list.check(formatIPv4(a), 'ipv4'));
      // and as ipv4.ts says
      expect(ipCidrContains(c, { family: 4, value: BigInt(a) })).toBe(cidrContains(parseCidr(formatIpCidr(c)), a));
    }), { numRuns: 1000 });
  });

  it('overlap exactly when one holds the other\'s network address; never across families', () => {
    fc.assert(fc.property(v6cidr, v6cidr, ([n1, p1], [n2, p2]) => {
      const a = cidrOf(6, n1, p1);
      const b = cidrOf(6, n2, p2);
      const holds = ipCidrContains(a, { family: 6, value: b.network }) || ipCidrContains(b, { family: 6, value: a.network });
      expect(ipCidrsOverlap(a, b)).toBe(holds);
      expect(ipCidrsOverlap(b, a)).toBe(holds);
    }), { numRuns: 1000 });
    fc.assert(fc.property(v4cidr, v4cidr, ([n1, p1], [n2, p2]) => {
      const a = cidrOf(4, BigInt(n1), p1);
      const b = cidrOf(4, BigInt(n2), p2);
      expect(ipCidrsOverlap(a, b)).toBe(cidrsOverlap(parseCidr(formatIpCidr(a)), parseCidr(formatIpCidr(b))));
    }), { numRuns: 1000 });
    expect(ipCidrsOverlap(parseIpCidr('0.0.0.0/0'), parseIpCidr('::/0'))).toBe(false);
    expect(ipCidrContains(parseIpCidr('::/0'), parseIp('198.18.0.1'))).toBe(false);
  });

  it('round-trip their text, refuse host bits when strict, and name the network meant', () => {
    fc.assert(fc.property(v6cidr, ([n, prefix]) => {
      const c = cidrOf(6, n, prefix);
      expect(parseIpCidr(formatIpCidr(c))).toEqual(c);
    }), { numRuns: 500 });
    expect(() => parseIpCidr('2001:db8::1/64')).toThrow('CIDR "2001:db8::1/64" has host bits set; did you mean 2001:db8::/64?');
    expect(() => parseIpCidr('2001:db8::/129')).toThrow('(prefix 129 > 128 for IPv6)');
    expect(() => parseIpCidr('198.18.0.0/33')).toThrow('(prefix 33 > 32 for IPv4)');
    expect(() => parseIpCidr('2001:db8::')).toThrow('(expected address/prefix)');
  });

  it('give hosts in order: IPv4 as ipv4.ts, IPv6 without the subnet-router anycast address (all of a /127 or /128)', () => {
    fc.assert(fc.property(v4cidr, ([n, prefix]) => {
      const c = cidrOf(4, BigInt(n), prefix);
      const r = hostRange(c);
      const old = usableHostRange(parseCidr(formatIpCidr(c)));
      expect([r.first, r.last, r.count]).toEqual([BigInt(old.first), BigInt(old.last), BigInt(old.count)]);
    }), { numRuns: 500 });
    expect(formatIp(nthHost(parseIpCidr('2001:db8:1::/64'), 0n))).toBe('2001:db8:1::1');
    expect(hostRange(parseIpCidr('2001:db8:1::/64')).count).toBe((1n << 64n) - 1n);
    expect(hostRange(parseIpCidr('2001:db8::/127'))).toEqual({ first: parseIPv6('2001:db8::'), last: parseIPv6('2001:db8::1'), count: 2n });
    fc.assert(fc.property(v6cidr, fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), ([n, prefix], i) => {
      const c = cidrOf(6, n, prefix);
      const index = i % hostRange(c).count;
      const h = nthHost(c, index);
      expect(ipCidrContains(c, h)).toBe(true);
      expect(prefix < 127 ? h.value !== c.network : true).toBe(true);
    }), { numRuns: 500 });
    expect(() => nthHost(parseIpCidr('198.18.0.0/30'), 2n)).toThrow('host 2 is outside 198.18.0.0/30 (2 host addresses)');
  });
});
