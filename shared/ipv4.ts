/**
 * IPv4 address math on plain numbers. The overlay is IPv4 (VXLAN over an IPv4 underlay, as the
 * devices we program support); keeping the math in one module means every planner agrees on it.
 */

export interface Cidr {
  /** Network address as an unsigned 32-bit number. */
  readonly network: number;
  readonly prefix: number;
}

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Dotted quad -> number. Planning a 5,000-node cluster parses tens of thousands of addresses per
 * pass, so well-formed input takes a scan without allocation; anything else goes through the
 * regular expression, which gives the error (both accept exactly the same strings: unit test).
 */
export function parseIPv4(text: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48);
      if (++digits > 3) return parseIPv4Strictly(text);
    } else if (c === 46 && digits > 0 && dots < 3 && octet <= 255) {
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      return parseIPv4Strictly(text);
    }
  }
  if (dots !== 3 || digits === 0 || octet > 255) return parseIPv4Strictly(text);
  return value * 256 + octet;
}

/** The reference parser: the regular expression, with the error messages. */
export function parseIPv4Strictly(text: string): number {
  const m = IPV4_RE.exec(text.trim());
  if (!m) throw new Error(`not an IPv4 address: "${text}"`);
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) throw new Error(`not an IPv4 address: "${text}" (octet ${octet} > 255)`);
    value = value * 256 + octet;
  }
  return value;
}

export function isIPv4(text: string): boolean {
  try {
    parseIPv4(text);
    return true;
  } catch {
    return false;
  }
}

export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/** Prefix length of a dotted netmask ("255.255.240.0" -> 20). */
export function prefixOfNetmask(netmask: string): number {
  let v = parseIPv4(netmask);
  let n = 0;
  while (v & 0x80000000) {
    n++;
    v = (v << 1) >>> 0;
  }
  return n;
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses "a.b.c.d/n". With `strict`, host bits must be zero (as for a network or pod CIDR). */
export function parseCidr(text: string, strict = true): Cidr {
  const [addr, len, extra] = text.trim().split('/');
  if (addr === undefined || len === undefined || extra !== undefined || !/^\d{1,2}$/.test(len)) {
    throw new Error(`not an IPv4 CIDR: "${text}" (expected a.b.c.d/n)`);
  }
  const prefix = Number(len);
  if (prefix > 32) throw new Error(`not an IPv4 CIDR: "${text}" (prefix ${prefix} > 32)`);
  const ip = parseIPv4(addr);
  const network = (ip & maskOf(prefix)) >>> 0;
  if (strict && network !== ip) {
    throw new Error(`CIDR "${text}" has host bits set; did you mean ${formatIPv4(network)}/${prefix}?`);
  }
  return { network, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIPv4(cidr.network)}/${cidr.prefix}`;
}

export function cidrSize(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

export function cidrContains(cidr: Cidr, ip: number): boolean {
  return ((ip & maskOf(cidr.prefix)) >>> 0) === cidr.network;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  const mask = maskOf(prefix);
  return ((a.network & mask) >>> 0) === ((b.network & mask) >>> 0);
}

/**
 * Usable host addresses of a network, in order: for prefixes up to /30 the network and broadcast
 * addresses are excluded; /31 and /32 use every address (RFC 3021).
 */
export function usableHostRange(cidr: Cidr): { first: number; last: number; count: number } {
  const size = cidrSize(cidr);
  if (cidr.prefix >= 31) return { first: cidr.network, last: cidr.network + size - 1, count: size };
  return { first: cidr.network + 1, last: cidr.network + size - 2, count: size - 2 };
}
