/**
 * The one check of nodes' addresses and pod CIDRs, used the same way by the coordinator (which
 * leaves a refused node out of the overlay, with an Event and a status reason, and serves
 * everyone else), the gateway (which skips a refused peer) and the agent (which refuses to
 * program its node). Pure.
 *
 * A node is refused when its underlay address lies in the overlay network, or when one of its pod
 * CIDRs (host bits allowed, as Kubernetes allows them in spec.podCIDRs; compared as networks):
 *   - is not a CIDR,
 *   - overlaps the overlay network,
 *   - contains a device VTEP or any node's underlay address,
 *   - overlaps a service CIDR (--service-cidr),
 *   - lies outside every configured pod range (--pod-cidr-ranges, when set),
 *   - overlaps a pod CIDR of a node before it in the order given (callers pass the oldest first:
 *     the node that had the range first keeps it).
 * A refused node's pod CIDRs are not held against later nodes.
 */
import { cidrContains, cidrSize, cidrsOverlap, formatCidr, parseCidr, parseIPv4, type Cidr } from './ipv4.ts';

export interface PodCidrRules {
  readonly overlayNetwork: string;
  readonly deviceVTEPs: readonly string[];
  readonly serviceCIDRs?: readonly string[];
  /** When set, every pod CIDR must lie inside one of these. */
  readonly podRanges?: readonly string[];
}

export interface NodeAddresses {
  readonly node: string;
  readonly underlayIP?: string | undefined;
  readonly podCIDRs: readonly string[];
}

const ipOf = (ip: string): number | undefined => {
  try {
    return parseIPv4(ip);
  } catch {
    return undefined;
  }
};

/**
 * Pod CIDRs and addresses as parsed before, for a caller that checks the same cluster pass after
 * pass (the coordinator's planner): a node event then parses only what changed. Bounded: it starts
 * afresh when it holds far more texts than a pass uses.
 */
export class CidrMemo {
  private cidrs = new Map<string, Cidr | Error>();
  private ips = new Map<string, number | undefined>();

  /** `text` as a network (host bits allowed), or the parse error. */
  cidr(text: string): Cidr | Error {
    let c = this.cidrs.get(text);
    if (c === undefined) {
      try {
        c = parseCidr(text, false);
      } catch (err) {
        c = err instanceof Error ? err : new Error(String(err));
      }
      this.cidrs.set(text, c);
    }
    return c;
  }

  ip(text: string): number | undefined {
    if (this.ips.has(text)) return this.ips.get(text);
    const n = ipOf(text);
    this.ips.set(text, n);
    return n;
  }

  /** Called once per check with the number of texts it used: forgets everything past 4 times that. */
  bound(used: number): void {
    const limit = Math.max(1024, 4 * used);
    if (this.cidrs.size > limit) this.cidrs = new Map();
    if (this.ips.size > limit) this.ips = new Map();
  }
}

interface Context {
  readonly overlay: Cidr;
  readonly vteps: readonly { ip: string; n: number }[];
  /** Every node's underlay address, sorted by number (a binary search finds one inside a CIDR). */
  readonly underlays: readonly { node: string; ip: string; n: number }[];
  readonly services: readonly { text: string; cidr: Cidr }[];
  readonly ranges: readonly Cidr[] | undefined;
}

function contextOf(nodes: readonly NodeAddresses[], rules: PodCidrRules, memo: CidrMemo): Context {
  const addr = (ip: string): { ip: string; n: number }[] => {
    const n = memo.ip(ip);
    return n === undefined ? [] : [{ ip, n }];
  };
  return {
    overlay: parseCidr(rules.overlayNetwork, false),
    vteps: rules.deviceVTEPs.flatMap(addr),
    underlays: nodes.flatMap((x) => (x.underlayIP ? addr(x.underlayIP).map((a) => ({ node: x.node, ...a })) : [])).sort((a, b) => a.n - b.n),
    services: (rules.serviceCIDRs ?? []).map((text) => ({ text, cidr: parseCidr(text, false) })),
    ranges: rules.podRanges?.map((r) => parseCidr(r, false)),
  };
}

/** The first item whose key is >= n, in items sorted by key (binary search). */
function firstAtOrAfter<T>(items: readonly T[], n: number, key: (t: T) => number): T | undefined {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (key(items[mid] as T) < n) lo = mid + 1;
    else hi = mid;
  }
  return items[lo];
}

/** Pod CIDRs already granted, as disjoint address intervals sorted by start: only the one starting last at or before a new CIDR's end can overlap it. */
class Claimed {
  private readonly items: { start: number; end: number; node: string; text: string }[] = [];

  /** How many intervals start at or before n. */
  private countStartingBy(n: number): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.items[mid]?.start ?? 0) <= n) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  overlapping(c: Cidr): { node: string; text: string } | undefined {
    const before = this.items[this.countStartingBy(c.network + cidrSize(c) - 1) - 1];
    return before && before.end >= c.network ? before : undefined;
  }

  add(c: Cidr, node: string, text: string): void {
    this.items.splice(this.countStartingBy(c.network), 0, { start: c.network, end: c.network + cidrSize(c) - 1, node, text });
  }
}

/** Why one (parsed) pod CIDR of `node` is refused, without looking at other nodes' pod CIDRs; undefined when it is fine. */
function cidrProblem(node: string, text: string, cidr: Cidr, ctx: Context, rules: PodCidrRules): string | undefined {
  const shown = (): string => (text === formatCidr(cidr) ? text : `${text} (${formatCidr(cidr)})`);
  if (cidrsOverlap(cidr, ctx.overlay)) return `pod CIDR ${shown()} overlaps the overlay network ${rules.overlayNetwork}`;
  const vtep = ctx.vteps.find((v) => cidrContains(cidr, v.n));
  if (vtep) return `pod CIDR ${shown()} contains the device VTEP ${vtep.ip}`;
  const underlay = firstAtOrAfter(ctx.underlays, cidr.network, (u) => u.n);
  if (underlay !== undefined && cidrContains(cidr, underlay.n)) return `pod CIDR ${shown()} contains ${underlay.node === node ? 'this node\'s own' : `node ${underlay.node}'s`} underlay address ${underlay.ip}`;
  const service = ctx.services.find((s) => cidrsOverlap(cidr, s.cidr));
  if (service) return `pod CIDR ${shown()} overlaps the service CIDR ${service.text}`;
  if (ctx.ranges && !ctx.ranges.some((r) => r.prefix <= cidr.prefix && cidrContains(r, cidr.network))) return `pod CIDR ${shown()} lies outside the configured pod ranges (${(rules.podRanges ?? []).join(', ')})`;
  return undefined;
}

/**
 * The nodes to leave out, each with the reason (one line, for an Event and /status). `nodes` in
 * the order that decides who keeps a contested range: oldest first.
 */
export function refusedNodes(nodes: readonly NodeAddresses[], rules: PodCidrRules, memo: CidrMemo = new CidrMemo()): Map<string, string> {
  const ctx = contextOf(nodes, rules, memo);
  let texts = 0;
  const refused = new Map<string, string>();
  const claimed = new Claimed();
  for (const x of nodes) {
    const own = x.underlayIP === undefined ? undefined : memo.ip(x.underlayIP);
    if (own !== undefined && cidrContains(ctx.overlay, own)) {
      refused.set(x.node, `its address ${x.underlayIP ?? ''} lies in the overlay network ${rules.overlayNetwork}`);
      continue;
    }
    let reason: string | undefined;
    const mine: { node: string; cidr: Cidr; text: string }[] = [];
    for (const text of x.podCIDRs) {
      texts++;
      const cidr = memo.cidr(text);
      if (cidr instanceof Error) {
        reason = `pod CIDR ${JSON.stringify(text)} is not an IPv4 CIDR (${cidr.message})`;
        break;
      }
      reason = cidrProblem(x.node, text, cidr, ctx, rules);
      if (reason) break;
      const other = claimed.overlapping(cidr);
      if (other) {
        reason = `pod CIDR ${text} overlaps node ${other.node}'s pod CIDR ${other.text}`;
        break;
      }
      mine.push({ node: x.node, cidr, text });
    }
    if (reason) refused.set(x.node, reason);
    else for (const m of mine) claimed.add(m.cidr, m.node, m.text);
  }
  memo.bound(texts + nodes.length);
  return refused;
}
