/**
 * Overlay IPAM, pure. The device's overlay address(es) are the first usable hosts of the overlay
 * network; every node keeps the address it already holds (as published in the peer table, the
 * record of truth), and a new node takes the lowest free one. Nothing is lost or given twice:
 * a held address that is invalid (outside the network, a device address, or held by two nodes)
 * is reported and re-allocated, and when the network is full the nodes that do not fit are
 * reported with the reason rather than failing everyone.
 */
import { formatIPv4, parseIPv4, usableHostRange, cidrContains, type Cidr } from '../shared/ipv4.ts';

export interface IpamInput {
  readonly network: Cidr;
  readonly deviceCount: number;
  /** Node names that need an address, in the order they should be served. */
  readonly nodes: readonly string[];
  /** Addresses already held, by node name (from the peer table). */
  readonly held: ReadonlyMap<string, string>;
}

export interface IpamResult {
  readonly deviceIPs: readonly string[];
  readonly allocations: ReadonlyMap<string, string>;
  /** Nodes without an address, with why. */
  readonly unallocated: readonly { node: string; reason: string }[];
  /** Held addresses that were dropped, with why (the node gets a fresh one if any is free). */
  readonly rejected: readonly { node: string; ip: string; reason: string }[];
}

export function allocate(input: IpamInput): IpamResult {
  const range = usableHostRange(input.network);
  if (range.count < input.deviceCount) throw new Error(`overlay network has ${range.count} usable addresses, fewer than the ${input.deviceCount} device address(es)`);
  const deviceIPs: string[] = [];
  for (let i = 0; i < input.deviceCount; i++) deviceIPs.push(formatIPv4(range.first + i));
  const firstNode = range.first + input.deviceCount;
  const used = new Set<number>();
  const allocations = new Map<string, string>();
  const rejected: { node: string; ip: string; reason: string }[] = [];

  // keep what is held, first come (in node order) first served on duplicates
  for (const node of input.nodes) {
    const ip = input.held.get(node);
    if (ip === undefined) continue;
    let v: number;
    try {
      v = parseIPv4(ip);
    } catch {
      rejected.push({ node, ip, reason: 'not an IPv4 address' });
      continue;
    }
    if (!cidrContains(input.network, v) || v < firstNode || v > range.last) {
      rejected.push({ node, ip, reason: v < firstNode && v >= range.first ? 'reserved for the device' : 'outside the overlay network' });
      continue;
    }
    if (used.has(v)) {
      rejected.push({ node, ip, reason: 'held by another node too' });
      continue;
    }
    used.add(v);
    allocations.set(node, ip);
  }

  const unallocated: { node: string; reason: string }[] = [];
  let cursor = firstNode;
  for (const node of input.nodes) {
    if (allocations.has(node)) continue;
    while (cursor <= range.last && used.has(cursor)) cursor++;
    if (cursor > range.last) {
      unallocated.push({ node, reason: `overlay network exhausted: all ${range.last - firstNode + 1} node addresses are in use` });
      continue;
    }
    used.add(cursor);
    allocations.set(node, formatIPv4(cursor));
  }
  return { deviceIPs, allocations, unallocated, rejected };
}

/** Position of a node address among the node addresses (0-based), used to pick its shard. */
export function hostIndex(network: Cidr, deviceCount: number, ip: string): number {
  return parseIPv4(ip) - (usableHostRange(network).first + deviceCount);
}
