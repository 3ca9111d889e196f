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
import { formatIpCidr, ipCidrSize, parseIp, parseIpCidr, type IpAddress, type IpCidr, type IpFamily } from './ip.ts';

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

/**
 * An address as the check compares it: a number for IPv4 (exact, and far cheaper than a bigint:
 * a 5,000-node check on bigints took 3-4 times as long), a bigint for IPv6. Keys of one family
 * are only ever compared with keys of the same family, and the check only compares them (no
 * arithmetic), so one code path serves both.
 */
type Key = number | bigint;

/** A network as the first and last address it holds. */
interface Span {
  readonly family: IpFamily;
  readonly start: Key;
  readonly end: Key;
  readonly cidr: IpCidr;
}

interface Point {
  readonly family: IpFamily;
  readonly key: Key;
}

const spanOf = (c: IpCidr): Span => {
  const end = c.network + ipCidrSize(c) - 1n;
  return c.family === 4 ? { family: 4, start: Number(c.network), end: Number(end), cidr: c } : { family: 6, start: c.network, end, cidr: c };
};

const pointOf = (a: IpAddress): Point => ({ family: a.family, key: a.family === 4 ? Number(a.value) : a.value });

const spanHolds = (s: Span, p: Point): boolean => s.family === p.family && s.start <= p.key && p.key <= s.end;

const spansOverlap = (a: Span, b: Span): boolean => a.family === b.family && a.start <= b.end && b.start <= a.end;

const pointOfText = (ip: string): Point | undefined => {
  try {
    return pointOf(parseIp(ip));
  } catch {
    return undefined;
  }
};

interface Underlay { readonly node: string; readonly ip: string; readonly p: Point }

/**
 * Pod CIDRs and addresses as parsed before, for a caller that checks the same cluster pass after
 * pass (the coordinator's planner): a node event then parses only what changed. Bounded: it starts
 * afresh when it holds far more texts than a pass uses.
 */
export class CidrMemo {
  private cidrs = new Map<string, Span | Error>();
  /** null: the text is not an address. */
  private ips = new Map<string, Point | null>();

  /** `text` as a network (host bits allowed), or the parse error. */
  cidr(text: string): Span | Error {
    let c = this.cidrs.get(text);
    if (c === undefined) {
      try {
        c = spanOf(parseIpCidr(text, false));
      } catch (err) {
        c = err instanceof Error ? err : new Error(String(err));
      }
      this.cidrs.set(text, c);
    }
    return c;
  }

  ip(text: string): Point | undefined {
    let p = this.ips.get(text);
    if (p === undefined) {
      p = pointOfText(text) ?? null;
      this.ips.set(text, p);
    }
    return p ?? undefined;
  }

  private sorted = new Map<IpFamily, { key: readonly Underlay[]; sorted: Underlay[] }>();

  /**
   * The underlay addresses sorted by value; the last pass's order is reused when the same nodes
   * have the same addresses (the usual node event changes one node, not the underlay).
   */
  sortedUnderlays(family: IpFamily, list: Underlay[]): Underlay[] {
    const last = this.sorted.get(family);
    if (last && last.key.length === list.length && last.key.every((u, i) => u.node === list[i]?.node && u.ip === list[i]?.ip)) return last.sorted;
    const sorted = [...list].sort((p, q) => (p.p.key < q.p.key ? -1 : p.p.key > q.p.key ? 1 : 0));
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
  readonly overlay: Span;
  readonly overlayText: string;
  readonly vteps: readonly { ip: string; p: Point }[];
  /** Every node's underlay address of this family, sorted by value (a binary search finds one inside a CIDR). */
  readonly underlays: readonly Underlay[];
  readonly services: readonly { text: string; span: Span }[];
  /** Undefined: no range of this family is configured, so none is required. */
  readonly ranges: readonly Span[] | undefined;
  readonly rangesText: string;
  readonly claimed: Claimed;
}

function familyContext(family: IpFamily, overlayText: string, nodes: readonly NodeAddresses[], rules: PodCidrRules, memo: CidrMemo): FamilyContext {
  const ofFamily = (ip: string): { ip: string; p: Point }[] => {
    const p = memo.ip(ip);
    return p?.family === family ? [{ ip, p }] : [];
  };
  const underlays: Underlay[] = [];
  for (const x of nodes) {
    const p = x.underlayIP === undefined ? undefined : memo.ip(x.underlayIP);
    if (p?.family === family && x.underlayIP !== undefined) underlays.push({ node: x.node, ip: x.underlayIP, p });
  }
  const spansOf = (list: readonly string[]): { text: string; span: Span }[] => list.map((text) => ({ text, span: spanOf(parseIpCidr(text, false)) })).filter((x) => x.span.family === family);
  const ranges = spansOf(rules.podRanges ?? []);
  return {
    overlay: spanOf(parseIpCidr(overlayText, false)),
    overlayText,
    vteps: rules.deviceVTEPs.flatMap(ofFamily),
    underlays: memo.sortedUnderlays(family, underlays),
    services: spansOf(rules.serviceCIDRs ?? []),
    ranges: ranges.length === 0 ? undefined : ranges.map((r) => r.span),
    rangesText: ranges.map((r) => r.text).join(', '),
    claimed: new Claimed(),
  };
}

/** The first item whose key is >= n, in items sorted by key (binary search). */
function firstAtOrAfter<T>(items: readonly T[], n: Key, key: (t: T) => Key): T | undefined {
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
  private readonly items: { start: Key; end: Key; node: string; text: string }[] = [];

  /** How many intervals start before n (or at it, with `orAt`). */
  private countStarting(n: Key, orAt: boolean): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const start = (this.items[mid] as { start: Key }).start;
      if (start < n || (orAt && start === n)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  overlapping(s: { readonly start: Key; readonly end: Key }): { node: string; text: string } | undefined {
    const before = this.items[this.countStarting(s.end, true) - 1];
    return before && before.end >= s.start ? before : undefined;
  }

  /**
   * Claims a CIDR that overlaps no other node's. A node's own CIDRs may nest (two CIDRs are nested
   * or disjoint): one inside a claimed interval adds nothing, and one holding claimed intervals
   * replaces them, so the intervals stay disjoint.
   */
  add(s: Span, node: string, text: string): void {
    const { start, end } = s;
    const holder = this.items[this.countStarting(start, true) - 1];
    if (holder && holder.end >= end) return;
    const at = this.countStarting(start, false);
    let inside = 0;
    for (let next = this.items[at]; next !== undefined && next.end <= end; next = this.items[at + inside]) inside++;
    this.items.splice(at, inside, { start, end, node, text });
  }

  /** Forgets every interval `node` claimed (a node that left). */
  release(node: string): void {
    for (let i = this.items.length - 1; i >= 0; i--) if (this.items[i]?.node === node) this.items.splice(i, 1);
  }
}

/** Why one (parsed) pod CIDR of `node` is refused, without looking at other nodes' pod CIDRs; undefined when it is fine. */
function cidrProblem(node: string, text: string, span: Span, ctx: FamilyContext): string | undefined {
  const shown = (): string => (text === formatIpCidr(span.cidr) ? text : `${text} (${formatIpCidr(span.cidr)})`);
  if (spansOverlap(span, ctx.overlay)) return `pod CIDR ${shown()} overlaps the overlay network ${ctx.overlayText}`;
  const vtep = ctx.vteps.find((v) => spanHolds(span, v.p));
  if (vtep) return `pod CIDR ${shown()} contains the device VTEP ${vtep.ip}`;
  const underlay = firstAtOrAfter(ctx.underlays, span.start, (u) => u.p.key);
  if (underlay !== undefined && spanHolds(span, underlay.p)) return `pod CIDR ${shown()} contains ${underlay.node === node ? 'this node\'s own' : `node ${underlay.node}'s`} underlay address ${underlay.ip}`;
  const service = ctx.services.find((s) => spansOverlap(span, s.span));
  if (service) return `pod CIDR ${shown()} overlaps the service CIDR ${service.text}`;
  if (ctx.ranges && !ctx.ranges.some((r) => r.start <= span.start && span.end <= r.end)) return `pod CIDR ${shown()} lies outside the configured pod ranges (${ctx.rangesText})`;
  return undefined;
}

/** Why one node is refused (its pod CIDRs checked in order), or the CIDRs it claims. */
function nodeVerdict(x: NodeAddresses, contexts: ReadonlyMap<IpFamily, FamilyContext>, memo: CidrMemo): string | { ctx: FamilyContext; span: Span; text: string }[] {
  const mine: { ctx: FamilyContext; span: Span; text: string }[] = [];
  for (const text of x.podCIDRs) {
    const span = memo.cidr(text);
    if (span instanceof Error) {
      // a CIDR of a family the overlay does not carry is not looked at
      if (!contexts.has(familyOfText(text))) continue;
      return `pod CIDR ${JSON.stringify(text)} is not an IPv${familyOfText(text)} CIDR (${span.message})`;
    }
    const ctx = contexts.get(span.family);
    if (ctx === undefined) continue;
    const reason = cidrProblem(x.node, text, span, ctx);
    if (reason) return reason;
    const other = ctx.claimed.overlapping(span);
    if (other) return `pod CIDR ${text} overlaps node ${other.node}'s pod CIDR ${other.text}`;
    mine.push({ ctx, span, text });
  }
  return mine;
}

/** The contexts of the families the overlay carries. */
function contextsOf(nodes: readonly NodeAddresses[], rules: PodCidrRules, memo: CidrMemo): Map<IpFamily, FamilyContext> {
  const contexts = new Map<IpFamily, FamilyContext>([[4, familyContext(4, rules.overlayNetwork, nodes, rules, memo)]]);
  if (rules.overlayNetworkIPv6 !== undefined) contexts.set(6, familyContext(6, rules.overlayNetworkIPv6, nodes, rules, memo));
  return contexts;
}

/** Why `x` is refused, checked after every node before it (whose CIDRs are claimed in `contexts`); its own CIDRs are claimed when it is not. */
function checkNext(x: NodeAddresses, contexts: ReadonlyMap<IpFamily, FamilyContext>, memo: CidrMemo): string | undefined {
  const own = x.underlayIP === undefined ? undefined : memo.ip(x.underlayIP);
  let inOverlay: FamilyContext | undefined;
  for (const c of contexts.values()) if (own !== undefined && spanHolds(c.overlay, own)) inOverlay = c;
  if (inOverlay !== undefined) return `its address ${x.underlayIP ?? ''} lies in the overlay network ${inOverlay.overlayText}`;
  const verdict = nodeVerdict(x, contexts, memo);
  if (typeof verdict === 'string') return verdict;
  for (const m of verdict) m.ctx.claimed.add(m.span, x.node, m.text);
  return undefined;
}

/**
 * The nodes to leave out, each with the reason (one line, for an Event and /status). `nodes` in
 * the order that decides who keeps a contested range: oldest first.
 */
export function refusedNodes(nodes: readonly NodeAddresses[], rules: PodCidrRules, memo: CidrMemo = new CidrMemo()): Map<string, string> {
  return checkAll(nodes, rules, memo).refused;
}

function checkAll(nodes: readonly NodeAddresses[], rules: PodCidrRules, memo: CidrMemo): { refused: Map<string, string>; contexts: Map<IpFamily, FamilyContext> } {
  const contexts = contextsOf(nodes, rules, memo);
  let texts = 0;
  const refused = new Map<string, string>();
  for (const x of nodes) {
    texts += x.podCIDRs.length;
    const reason = checkNext(x, contexts, memo);
    if (reason !== undefined) refused.set(x.node, reason);
  }
  memo.bound(texts + nodes.length);
  return { refused, contexts };
}

/**
 * refusedNodes kept from one pass to the next, for the coordinator's node events: a node younger
 * than every node checked is checked on its own, and a node that left is forgotten, with the same
 * answer as checking every node afresh, as long as no node is refused (a refused node may owe its
 * refusal to another one; then, or when a joining node's address lies in an older node's pod CIDR,
 * the caller checks every node again).
 */
export class PodCidrLedger {
  private readonly contexts: Map<IpFamily, FamilyContext>;
  private readonly memo: CidrMemo;

  private constructor(contexts: Map<IpFamily, FamilyContext>, memo: CidrMemo) {
    this.contexts = contexts;
    this.memo = memo;
  }

  /** Checks every node (oldest first), as refusedNodes does, and keeps what it worked out. */
  static check(nodes: readonly NodeAddresses[], rules: PodCidrRules, memo: CidrMemo): { refused: Map<string, string>; ledger: PodCidrLedger } {
    const { refused, contexts } = checkAll(nodes, rules, memo);
    // the ledger changes its own copies of the sorted underlay addresses (the memo's are shared)
    for (const [family, c] of contexts) contexts.set(family, { ...c, underlays: [...c.underlays] });
    return { refused, ledger: new PodCidrLedger(contexts, memo) };
  }

  /**
   * Checks a node younger than every node checked so far: 'ok' (its pod CIDRs are claimed),
   * 'refused', or 'recheck' when its underlay address lies in an older node's pod CIDR (that node
   * would be refused now: only a check of every node says it right). After anything but 'ok' the
   * ledger no longer matches a check of every node: the caller checks afresh.
   */
  append(x: NodeAddresses): 'ok' | 'refused' | 'recheck' {
    const own = x.underlayIP === undefined ? undefined : this.memo.ip(x.underlayIP);
    const ctx = own === undefined ? undefined : this.contexts.get(own.family);
    if (own !== undefined && ctx !== undefined) {
      if (ctx.claimed.overlapping({ start: own.key, end: own.key })) return 'recheck';
      const underlays = ctx.underlays as Underlay[];
      // after any of the same address: a full check sorts the youngest last among equals
      underlays.splice(countBefore(underlays, own.key, true), 0, { node: x.node, ip: x.underlayIP ?? '', p: own });
    }
    return checkNext(x, this.contexts, this.memo) === undefined ? 'ok' : 'refused';
  }

  /** Forgets a node that left (valid while no node is refused). */
  remove(x: NodeAddresses): void {
    const own = x.underlayIP === undefined ? undefined : this.memo.ip(x.underlayIP);
    const ctx = own === undefined ? undefined : this.contexts.get(own.family);
    if (own !== undefined && ctx !== undefined) {
      const underlays = ctx.underlays as Underlay[];
      for (let i = countBefore(underlays, own.key); i < underlays.length && underlays[i]?.p.key === own.key; i++) {
        if (underlays[i]?.node === x.node) {
          underlays.splice(i, 1);
          break;
        }
      }
    }
    for (const c of this.contexts.values()) c.claimed.release(x.node);
  }
}

/** How many of the sorted underlays have a key below `key` (or equal to it, with `orAt`). */
function countBefore(underlays: readonly Underlay[], key: Key, orAt = false): number {
  let lo = 0;
  let hi = underlays.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const k = (underlays[mid] as Underlay).p.key;
    if (k < key || (orAt && k === key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
