// parseIPv4's scan (the planner's hot path) accepts exactly what the regular expression accepts,
// with the same value, and fails with the same message: compared on near-addresses and junk.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseIPv4, parseIPv4Strictly } from '../../shared/ipv4.ts';

function outcome(parse: (s: string) => number, s: string): { value: number } | { error: string } {
  try {
    return { value: parse(s) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** Strings made of the characters addresses are made of, so most are near misses. */
const nearAddress = fc.array(fc.constantFrom('0', '1', '2', '5', '9', '.', ' ', '-', 'a', '\t'), { maxLength: 20 }).map((cs) => cs.join(''));
const quad = fc.tuple(fc.nat(999), fc.nat(999), fc.nat(999), fc.nat(999), fc.constantFrom('', '0', '00')).map(([a, b, c, d, pad]) => `${pad}${String(a)}.${String(b)}.${String(c)}.${String(d)}`);

describe('parseIPv4', () => {
  it('agrees with the reference parser on every kind of input', () => {
    fc.assert(fc.property(fc.oneof(nearAddress, quad, fc.string()), (s) => {
      expect(outcome(parseIPv4, s)).toEqual(outcome(parseIPv4Strictly, s));
    }), { numRuns: 5000 });
  });

  it('reads addresses and refuses what is not one, saying why', () => {
    expect(parseIPv4('198.18.0.1')).toBe(0xc6120001);
    expect(parseIPv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIPv4(' 10.0.0.1 ')).toBe(0x0a000001);
    expect(parseIPv4('010.0.0.1')).toBe(0x0a000001);
    expect(() => parseIPv4('10.0.0.256')).toThrow('not an IPv4 address: "10.0.0.256" (octet 256 > 255)');
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '1..2.3', '1.2.3.', '.1.2.3', '1.2.3.0004', '1.2.3.4/24', 'fe80::1']) {
      expect(() => parseIPv4(bad)).toThrow(`not an IPv4 address: "${bad}"`);
    }
  });
});
