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
 *   - lies outside every configured pod range of its family (--pod-cidr-ranges, when it has
 *     ranges of that family),
 *   - overlaps a pod CIDR of a node before it in the order given (callers pass the oldest first:
 *     the node that had the range first keeps it).
 * A refused node's pod CIDRs are not held against later nodes. Each family is checked against
 * the rules of its own family (an IPv6 pod CIDR against the IPv6 overlay network, IPv6 VTEPs and
 * node addresses, IPv6 service CIDRs); IPv6 pod CIDRs only when the overlay has an IPv6 network.
 */
import { formatIpCidr, ipCidrContains, ipCidrSize, ipCidrsOverlap, parseIp, parseIpCidr, type IpAddress, type IpCidr, type IpFamily } from './ip.ts';

export interface PodCidrRules {
  readonly overlayNetwork: string;
  /**
   * The IPv6 overlay network of a dual-stack overlay. Absent: IPv6 pod CIDRs are not routed, so
   * they are neither checked nor held against anyone (the overlay carries IPv4 only).
   */
  readonly overlayNetworkIPv6?: string | undefined;
  readonly deviceVTEPs: readonly string[];
  readonly serviceCIDRs?: readonly string[];
  /** When set, every pod CIDR of a family that has ranges here must lie inside one of them. */
  readonly podRanges?: readonly string[];
}

export interface NodeAddresses {
  readonly node: string;
  readonly underlayIP?: string | undefined;
  /** Both families; an entry whose family the overlay does not carry is ignored. */
  readonly podCIDRs: readonly string[];
}

interface Underlay { readonly node: string; readonly ip: string; readonly a: IpAddress }

const ipOf = (ip: string): IpAddress | undefined => {
  try {
    return parseIp(ip);
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
  private cidrs = new Map<string, IpCidr | Error>();
  private ips = new Map<string, IpAddress | undefined>();

  /** `text` as a network (host bits allowed), or the parse error. */
  cidr(text: string): IpCidr | Error {
    let c = this.cidrs.get(text);
    if (c === undefined) {
      try {
        c = parseIpCidr(text, false);
      } catch (err) {
        c = err instanceof Error ? err : new Error(String(err));
      }
      this.cidrs.set(text, c);
    }
    return c;
  }

  ip(text: string): IpAddress | undefined {
    if (this.ips.has(text)) return this.ips.get(text);
    const n = ipOf(text);
    this.ips.set(text, n);
    return n;
  }

  private sorted = new Map<IpFamily, { key: readonly Underlay[]; sorted: Underlay[] }>();

  /**
   * The underlay addresses sorted by value; the last pass's order is reused when the same nodes
   * have the same addresses (the usual node event changes one node, not the underlay).
   */
  sortedUnderlays(family: IpFamily, list: Underlay[]): Underlay[] {
    const last = this.sorted.get(family);
    if (last && last.key.length === list.length && last.key.every((u, i) => u.node === list[i]?.node && u.ip === list[i]?.ip)) return last.sorted;
    const sorted = [...list].sort((p, q) => (p.a.value < q.a.value ? -1 : p.a.value > q.a.value ? 1 : 0));
    this.sorted.set(family, { key: list, sorted });
    return sorted;
  }

  /** Called once per check with the number of texts it used: forgets everything past 4 times that. */
  bound(used: number): void {
    const limit = Math.max(1024, 4 * used);
    if (this.cidrs.size > limit) this.cidrs = new Map();
    if (this.ips.size > limit) this.ips = new Map();
  }
}

/** The family a CIDR's text claims (a ":" makes it IPv6), for naming what failed to parse. */
const familyOfText = (text: string): IpFamily => (text.includes(':') ? 6 : 4);

/** The rules of one family, parsed. */
interface FamilyContext {
  readonly overlay: IpCidr;
  readonly overlayText: string;
  readonly vteps: readonly { ip: string; a: IpAddress }[];
  /** Every node's underlay address of this family, sorted by value (a binary search finds one inside a CIDR). */
  readonly underlays: readonly { node: string; ip: string; a: IpAddress }[];
  readonly services: readonly { text: string; cidr: IpCidr }[];
  /** Undefined: no range of this family is configured, so none is required. */
  readonly ranges: readonly IpCidr[] | undefined;
  readonly rangesText: string;
  readonly claimed: Claimed;
}

function familyContext(family: IpFamily, overlayText: string, nodes: readonly NodeAddresses[], rules: PodCidrRules, memo: CidrMemo): FamilyContext {
  const ofFamily = (ip: string): { ip: string; a: IpAddress }[] => {
    const a = memo.ip(ip);
    return a?.family === family ? [{ ip, a }] : [];
  };
  const cidrsOf = (list: readonly string[]): { text: string; cidr: IpCidr }[] => list.map((text) => ({ text, cidr: parseIpCidr(text, false) })).filter((x) => x.cidr.family === family);
  const ranges = cidrsOf(rules.podRanges ?? []);
  return {
    overlay: parseIpCidr(overlayText, false),
    overlayText,
    vteps: rules.deviceVTEPs.flatMap(ofFamily),
    underlays: memo.sortedUnderlays(family, nodes.flatMap((x) => (x.underlayIP ? ofFamily(x.underlayIP).map((a) => ({ node: x.node, ...a })) : []))),
    services: cidrsOf(rules.serviceCIDRs ?? []),
    ranges: ranges.length === 0 ? undefined : ranges.map((r) => r.cidr),
    rangesText: ranges.map((r) => r.text).join(', '),
    claimed: new Claimed(),
  };
}

/** The first item whose key is >= n, in items sorted by key (binary search). */
function firstAtOrAfter<T>(items: readonly T[], n: bigint, key: (t: T) => bigint): T | undefined {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (key(items[mid] as T) < n) lo = mid + 1;
    else hi = mid;
  }
  return items[lo];
}

/** Pod CIDRs already granted (of one family), as disjoint address intervals sorted by start: only the one starting last at or before a new CIDR's end can overlap it. */
class Claimed {
  private readonly items: { start: bigint; end: bigint; node: string; text: string }[] = [];

  /** How many intervals start at or before n. */
  private countStartingBy(n: bigint): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.items[mid]?.start ?? 0n) <= n) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  overlapping(c: IpCidr): { node: string; text: string } | undefined {
    const before = this.items[this.countStartingBy(c.network + ipCidrSize(c) - 1n) - 1];
    return before && before.end >= c.network ? before : undefined;
  }

  /**
   * Claims a CIDR that overlaps no other node's. A node's own CIDRs may nest (two CIDRs are nested
   * or disjoint): one inside a claimed interval adds nothing, and one holding claimed intervals
   * replaces them, so the intervals stay disjoint.
   */
  add(c: IpCidr, node: string, text: string): void {
    const start = c.network;
    const end = c.network + ipCidrSize(c) - 1n;
    const holder = this.items[this.countStartingBy(start) - 1];
    if (holder && holder.end >= end) return;
    const at = this.countStartingBy(start - 1n);
    let inside = 0;
    while ((this.items[at + inside]?.end ?? end + 1n) <= end) inside++;
    this.items.splice(at, inside, { start, end, node, text });
  }
}

/** Why one (parsed) pod CIDR of `node` is refused, without looking at other nodes' pod CIDRs; undefined when it is fine. */
function cidrProblem(node: string, text: string, cidr: IpCidr, ctx: FamilyContext): string | undefined {
  const shown = (): string => (text === formatIpCidr(cidr) ? text : `${text} (${formatIpCidr(cidr)})`);
  if (ipCidrsOverlap(cidr, ctx.overlay)) return `pod CIDR ${shown()} overlaps the overlay network ${ctx.overlayText}`;
  const vtep = ctx.vteps.find((v) => ipCidrContains(cidr, v.a));
  if (vtep) return `pod CIDR ${shown()} contains the device VTEP ${vtep.ip}`;
  const underlay = firstAtOrAfter(ctx.underlays, cidr.network, (u) => u.a.value);
  if (underlay !== undefined && ipCidrContains(cidr, underlay.a)) return `pod CIDR ${shown()} contains ${underlay.node === node ? 'this node\'s own' : `node ${underlay.node}'s`} underlay address ${underlay.ip}`;
  const service = ctx.services.find((s) => ipCidrsOverlap(cidr, s.cidr));
  if (service) return `pod CIDR ${shown()} overlaps the service CIDR ${service.text}`;
  if (ctx.ranges && !ctx.ranges.some((r) => r.prefix <= cidr.prefix && ipCidrContains(r, { family: cidr.family, value: cidr.network }))) return `pod CIDR ${shown()} lies outside the configured pod ranges (${ctx.rangesText})`;
  return undefined;
}

/** Why one node is refused (its pod CIDRs checked in order), or the CIDRs it claims. */
function nodeVerdict(x: NodeAddresses, contexts: ReadonlyMap<IpFamily, FamilyContext>, memo: CidrMemo): string | { ctx: FamilyContext; cidr: IpCidr; text: string }[] {
  const mine: { ctx: FamilyContext; cidr: IpCidr; text: string }[] = [];
  for (const text of x.podCIDRs) {
    const cidr = memo.cidr(text);
    if (cidr instanceof Error) {
      // a CIDR of a family the overlay does not carry is not looked at
      if (!contexts.has(familyOfText(text))) continue;
      return `pod CIDR ${JSON.stringify(text)} is not an IPv${familyOfText(text)} CIDR (${cidr.message})`;
    }
    const ctx = contexts.get(cidr.family);
    if (ctx === undefined) continue;
    const reason = cidrProblem(x.node, text, cidr, ctx);
    if (reason) return reason;
    const other = ctx.claimed.overlapping(cidr);
    if (other) return `pod CIDR ${text} overlaps node ${other.node}'s pod CIDR ${other.text}`;
    mine.push({ ctx, cidr, text });
  }
  return mine;
}

/**
 * The nodes to leave out, each with the reason (one line, for an Event and /status). `nodes` in
 * the order that decides who keeps a contested range: oldest first.
 */
export function refusedNodes(nodes: readonly NodeAddresses[], rules: PodCidrRules, memo: CidrMemo = new CidrMemo()): Map<string, string> {
  const contexts = new Map<IpFamily, FamilyContext>([[4, familyContext(4, rules.overlayNetwork, nodes, rules, memo)]]);
  if (rules.overlayNetworkIPv6 !== undefined) contexts.set(6, familyContext(6, rules.overlayNetworkIPv6, nodes, rules, memo));
  const overlays = [...contexts.values()];
  let texts = 0;
  const refused = new Map<string, string>();
  for (const x of nodes) {
    texts += x.podCIDRs.length;
    const own = x.underlayIP === undefined ? undefined : memo.ip(x.underlayIP);
    const inOverlay = own === undefined ? undefined : overlays.find((c) => ipCidrContains(c.overlay, own));
    if (inOverlay !== undefined) {
      refused.set(x.node, `its address ${x.underlayIP ?? ''} lies in the overlay network ${inOverlay.overlayText}`);
      continue;
    }
    const verdict = nodeVerdict(x, contexts, memo);
    if (typeof verdict === 'string') refused.set(x.node, verdict);
    else for (const m of verdict) m.ctx.claimed.add(m.cidr, x.node, m.text);
  }
  memo.bound(texts + nodes.length);
  return refused;
}
