/**
 * Overlay IPAM, pure. The device's overlay address(es) are the first usable hosts of the overlay
 * network; node addresses follow, numbered by index (0 = the first node address) and grouped in
 * shards of PEERS_PER_SHARD (shard n of the peer table holds indexes n*size .. (n+1)*size-1).
 *
 * - Every node keeps the address it holds (the peer table is the record of truth).
 * - A new node takes the next never-used index: each shard records how many of its indexes have
 *   ever been handed out (its high-water mark, written in the same compare-and-swap patch as the
 *   entry), so an address freed by a deleted node is reused last, only when every never-used
 *   index is gone, and a join still writes exactly one shard.
 * - Nothing is given twice: an invalid held address (outside the network, a device address, or
 *   held by two nodes) is reported and re-allocated.
 * - When the network is full, the nodes that fit are served and the others are reported.
 */
import { formatIPv4, parseIPv4, usableHostRange, cidrContains, type Cidr } from '../shared/ipv4.ts';

export interface IpamInput {
  readonly network: Cidr;
  readonly deviceCount: number;
  /** Node names that need an address, in the order they should be served. */
  readonly nodes: readonly string[];
  /** Addresses already held, by node name (from the peer table). */
  readonly held: ReadonlyMap<string, string>;
  /** Per shard, how many of its indexes were ever handed out (absent = 0). */
  readonly highWater?: ReadonlyMap<number, number>;
  readonly shardSize: number;
}

export interface IpamResult {
  readonly deviceIPs: readonly string[];
  readonly allocations: ReadonlyMap<string, string>;
  /** Per shard, the high-water mark after this allocation (only shards that have one). */
  readonly highWater: ReadonlyMap<number, number>;
  /** Number of node addresses the network has, and how many are in use. */
  readonly capacity: number;
  /** Nodes without an address, with why. */
  readonly unallocated: readonly { node: string; reason: string }[];
  /** Held addresses that were dropped, with why (the node gets a fresh one if any is free). */
  readonly rejected: readonly { node: string; ip: string; reason: string }[];
  /** Where this allocation left off: allocateNext goes on from it as allocate would (its own copies). */
  readonly ledger: IpamLedger;
}

/** Where an allocation left off: the node indexes in use and each shard's high-water mark. */
export interface IpamLedger {
  /** The first node address, as a number. */
  readonly base: number;
  readonly capacity: number;
  readonly shardSize: number;
  readonly used: Set<number>;
  readonly highWater: Map<number, number>;
}

/**
 * The address allocate would give one more node, youngest of all, that holds none: the next
 * never-used index, else the lowest freed one (undefined: the network is full). The ledger
 * records it.
 */
export function allocateNext(ledger: IpamLedger): string | undefined {
  const index = indexSource(ledger.capacity, ledger.shardSize, ledger.used, ledger.highWater)();
  if (index === undefined) return undefined;
  ledger.used.add(index);
  return formatIPv4(ledger.base + index);
}

/** Takes back the address of a node that left (its index may be handed out again, last). */
export function release(ledger: IpamLedger, ip: string): void {
  ledger.used.delete(parseIPv4(ip) - ledger.base);
}

export function allocate(input: IpamInput): IpamResult {
  const range = usableHostRange(input.network);
  if (range.count < input.deviceCount) throw new Error(`overlay network has ${range.count} usable addresses, fewer than the ${input.deviceCount} device address(es)`);
  const deviceIPs: string[] = [];
  for (let i = 0; i < input.deviceCount; i++) deviceIPs.push(formatIPv4(range.first + i));
  const base = range.first + input.deviceCount;
  const capacity = range.last - base + 1;
  const size = input.shardSize;
  const used = new Set<number>(); // node indexes in use
  const allocations = new Map<string, string>();
  const rejected: { node: string; ip: string; reason: string }[] = [];
  const highWater = new Map(input.highWater ?? []);
  const bump = (index: number): void => {
    const shard = Math.floor(index / size);
    highWater.set(shard, Math.max(highWater.get(shard) ?? 0, (index % size) + 1));
  };

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
    if (!cidrContains(input.network, v) || v < base || v > range.last) {
      rejected.push({ node, ip, reason: v < base && v >= range.first ? 'reserved for the device' : 'outside the overlay network' });
      continue;
    }
    if (used.has(v - base)) {
      rejected.push({ node, ip, reason: 'held by another node too' });
      continue;
    }
    used.add(v - base);
    bump(v - base);
    allocations.set(node, ip);
  }

  const unallocated: { node: string; reason: string }[] = [];
  const nextIndex = indexSource(capacity, size, used, highWater);
  for (const node of input.nodes) {
    if (allocations.has(node)) continue;
    const index = nextIndex();
    if (index === undefined) {
      unallocated.push({ node, reason: `overlay network exhausted: all ${capacity} node addresses are in use` });
      continue;
    }
    used.add(index);
    allocations.set(node, formatIPv4(base + index));
  }
  return { deviceIPs, allocations, highWater, capacity, unallocated, rejected, ledger: { base, capacity, shardSize: size, used, highWater: new Map(highWater) } };
}

/**
 * Hands out node indexes: the next never-used one, shard by shard (raising that shard's
 * high-water mark), and only once all are gone, freed ones, lowest first.
 */
function indexSource(capacity: number, size: number, used: ReadonlySet<number>, highWater: Map<number, number>): () => number | undefined {
  const shards = Math.ceil(capacity / size);
  let shard = 0;
  let reuseCursor = 0;
  const neverUsed = (): number | undefined => {
    while (shard < shards) {
      const hw = highWater.get(shard) ?? 0;
      if (hw >= Math.min(size, capacity - shard * size)) {
        shard++;
        continue;
      }
      highWater.set(shard, hw + 1);
      const candidate = shard * size + hw;
      if (!used.has(candidate)) return candidate;
    }
    return undefined;
  };
  const freed = (): number | undefined => {
    while (reuseCursor < capacity) {
      const candidate = reuseCursor++;
      if (!used.has(candidate)) return candidate;
    }
    return undefined;
  };
  return () => neverUsed() ?? freed();
}

/** Position of a node address among the node addresses (0-based), used to pick its shard. */
export function hostIndex(network: Cidr, deviceCount: number, ip: string): number {
  return parseIPv4(ip) - (usableHostRange(network).first + deviceCount);
}
