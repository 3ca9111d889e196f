/**
 * Addresses and networks of both IP families, for dual-stack overlays (issue 16). One set of
 * functions serves both: values are bigints, and every address and network carries its family.
 * IPv4 text goes through ipv4.ts's parser (the planners' hot path); IPv6 text is read here in
 * every form RFC 4291 allows (hex groups, one "::", a trailing dotted IPv4 part) and written in
 * RFC 5952's canonical form: lower case, no leading zeros, the longest run of two or more zero
 * groups as "::" (the first on a tie). IPv4-mapped addresses are written in hex (::ffff:c000:201),
 * as the WHATWG URL serializer writes them, not in RFC 5952's optional mixed notation.
 */
import { formatIPv4, isIPv4, parseIPv4 } from './ipv4.ts';

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

export interface IpCidr {
  readonly family: IpFamily;
  /** The network address (host bits zero). */
  readonly network: bigint;
  readonly prefix: number;
}

export const familyBits = (family: IpFamily): number => (family === 4 ? 32 : 128);

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** The groups of one side of a "::" (or of a whole address without one); a dotted IPv4 tail counts as two. */
function groupsOf(part: string, text: string, last: boolean): bigint[] {
  if (part === '') return [];
  const fields = part.split(':');
  const out: bigint[] = [];
  fields.forEach((f, i) => {
    if (last && i === fields.length - 1 && f.includes('.')) {
      let v: number;
      try {
        v = parseIPv4(f);
      } catch {
        throw new Error(`not an IPv6 address: "${text}" (its IPv4 part "${f}" is not an IPv4 address)`);
      }
      out.push(BigInt(v >>> 16), BigInt(v & 0xffff));
      return;
    }
    if (!HEX_GROUP.test(f)) throw new Error(`not an IPv6 address: "${text}" (${f === '' ? 'an empty group' : `"${f}" is not 1 to 4 hex digits`})`);
    out.push(BigInt(Number.parseInt(f, 16)));
  });
  return out;
}

/** IPv6 text -> 128-bit value. No zone index (fe80::1%eth0): an overlay address has none. */
export function parseIPv6(text: string): bigint {
  if (text.includes('%')) throw new Error(`not an IPv6 address: "${text}" (a zone index has no place in an overlay address)`);
  const halves = text.split('::');
  if (halves.length > 2) throw new Error(`not an IPv6 address: "${text}" ("::" more than once)`);
  const head = groupsOf(halves[0] ?? '', text, halves.length === 1);
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? '', text, true) : [];
  const given = head.length + tail.length;
  if (halves.length === 1 && given !== 8) throw new Error(`not an IPv6 address: "${text}" (${given} groups, 8 needed without "::")`);
  if (halves.length === 2 && given > 7) throw new Error(`not an IPv6 address: "${text}" ("::" stands for at least one zero group, and ${given} are given)`);
  const groups = [...head, ...Array<bigint>(8 - given).fill(0n), ...tail];
  return groups.reduce((v, g) => (v << 16n) | g, 0n);
}

/** 128-bit value -> RFC 5952 canonical text. */
export function formatIPv6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  // the longest run of zero groups, at least two long; the first one on a tie
  let best = { start: -1, length: 1 };
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (best.start < 0) return hex(groups);
  return `${hex(groups.slice(0, best.start))}::${hex(groups.slice(best.start + best.length))}`;
}

/** Either family's text -> address (a ":" makes it IPv6). */
export function parseIp(text: string): IpAddress {
  const t = text.trim();
  return t.includes(':') ? { family: 6, value: parseIPv6(t) } : { family: 4, value: BigInt(parseIPv4(t)) };
}

export function formatIp(a: IpAddress): string {
  return a.family === 4 ? formatIPv4(Number(a.value)) : formatIPv6(a.value);
}

/** Netmasks and network sizes of every prefix of each family, worked out once: a planner checks thousands of nodes per pass. */
const table = (bits: number, f: (bits: bigint, prefix: bigint) => bigint): readonly bigint[] => Array.from({ length: bits + 1 }, (_, prefix) => f(BigInt(bits), BigInt(prefix)));
const MASKS = { 4: table(32, (b, p) => ((1n << b) - 1n) ^ ((1n << (b - p)) - 1n)), 6: table(128, (b, p) => ((1n << b) - 1n) ^ ((1n << (b - p)) - 1n)) };
const SIZES = { 4: table(32, (b, p) => 1n << (b - p)), 6: table(128, (b, p) => 1n << (b - p)) };

const maskBits = (family: IpFamily, prefix: number): bigint => MASKS[family][prefix] ?? 0n;

/** "address/prefix" of either family. With `strict`, host bits must be zero (a network, a pod CIDR). */
export function parseIpCidr(text: string, strict = true): IpCidr {
  const slash = text.lastIndexOf('/');
  const len = slash < 0 ? '' : text.slice(slash + 1).trim();
  if (slash < 0 || !/^\d{1,3}$/.test(len)) throw new Error(`not a CIDR: "${text}" (expected address/prefix)`);
  const addr = parseIp(text.slice(0, slash));
  const prefix = Number(len);
  if (prefix > familyBits(addr.family)) throw new Error(`not a CIDR: "${text}" (prefix ${prefix} > ${familyBits(addr.family)} for IPv${addr.family})`);
  const network = addr.value & maskBits(addr.family, prefix);
  if (strict && network !== addr.value) throw new Error(`CIDR "${text}" has host bits set; did you mean ${formatIp({ family: addr.family, value: network })}/${prefix}?`);
  return { family: addr.family, network, prefix };
}

export function formatIpCidr(c: IpCidr): string {
  return `${formatIp({ family: c.family, value: c.network })}/${c.prefix}`;
}

export function ipCidrSize(c: IpCidr): bigint {
  return SIZES[c.family][c.prefix] ?? 0n;
}

/** Whether the address lies in the network (never across families). */
export function ipCidrContains(c: IpCidr, a: IpAddress): boolean {
  return c.family === a.family && (a.value & maskBits(c.family, c.prefix)) === c.network;
}

/** Whether two networks share an address (never across families). */
export function ipCidrsOverlap(a: IpCidr, b: IpCidr): boolean {
  if (a.family !== b.family) return false;
  const mask = maskBits(a.family, Math.min(a.prefix, b.prefix));
  return (a.network & mask) === (b.network & mask);
}

/**
 * The addresses a network gives to hosts, in order. IPv4 as ipv4.ts: without the network and
 * broadcast addresses up to /30, every address of a /31 or /32 (RFC 3021). IPv6 has no broadcast:
 * without the network address (the subnet-router anycast, RFC 4291 2.6.1) up to /126, every
 * address of a /127 (RFC 6164) or /128.
 */
export function hostRange(c: IpCidr): { first: bigint; last: bigint; count: bigint } {
  const size = ipCidrSize(c);
  const end = c.network + size - 1n;
  if (c.family === 4) return c.prefix >= 31 ? { first: c.network, last: end, count: size } : { first: c.network + 1n, last: end - 1n, count: size - 2n };
  return c.prefix >= 127 ? { first: c.network, last: end, count: size } : { first: c.network + 1n, last: end, count: size - 1n };
}

/** The `index`-th host address of the network (0-based, in hostRange's order). */
export function nthHost(c: IpCidr, index: bigint): IpAddress {
  const r = hostRange(c);
  if (index < 0n || index >= r.count) throw new Error(`host ${index} is outside ${formatIpCidr(c)} (${r.count} host addresses)`);
  return { family: c.family, value: r.first + index };
}

/**
 * The family a pod CIDR's text is meant to be (its address part a dotted quad: 4; holding a ":":
 * 6), without judging the rest; undefined for text that is neither. The checks of
 * shared/pod-cidrs.ts then refuse a malformed CIDR of a family the overlay carries.
 */
export function cidrTextFamily(text: string): IpFamily | undefined {
  const addr = text.split('/')[0] ?? '';
  if (addr.includes(':')) return 6;
  return isIPv4(addr) ? 4 : undefined;
}

/** A list of CIDR texts split by family (cidrTextFamily); text of neither family is dropped. */
export function cidrsByFamily(list: readonly string[]): { readonly v4: string[]; readonly v6: string[] } {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const c of list) {
    const f = cidrTextFamily(c);
    if (f === 4) v4.push(c);
    else if (f === 6) v6.push(c);
  }
  return { v4, v6 };
}

/**
 * The address at the same offset in another network: how a dual-stack overlay gives every node
 * and the device an IPv6 overlay address without a second allocation (the IPv6 address follows
 * the IPv4 one: stable while it is, reused when it is, never shared). `to` must be at least as
 * large as `from` (checked where the networks are configured).
 */
export function twinAddress(from: string, to: string, ip: string): string {
  const f = parseIpCidr(from);
  const t = parseIpCidr(to);
  const a = parseIp(ip);
  if (!ipCidrContains(f, a)) throw new Error(`${ip} is outside ${from}`);
  const offset = a.value - f.network;
  if (offset >= ipCidrSize(t)) throw new Error(`${to} is smaller than ${from}: ${ip} has no twin in it`);
  return formatIp({ family: t.family, value: t.network + offset });
}

/**
 * An address or a network as RFC 5952 (and dotted quads) write it, so that a device's own
 * spelling (upper case, leading zeros, a long form) compares equal to ours; a CIDR as its network
 * (host bits cleared). Text that is neither is returned as it is.
 */
export function canonicalIpText(text: string): string {
  try {
    return text.includes('/') ? formatIpCidr(parseIpCidr(text, false)) : formatIp(parseIp(text));
  } catch {
    return text;
  }
}
