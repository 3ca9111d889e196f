/**
 * The agent's nftables table, rendered from plain inputs (pure). The agent owns this one table
 * and touches nothing else:
 *
 * - input: VXLAN has no authentication, so VXLAN of our VNI (the VNI field of the VXLAN header,
 *   RFC 7348: 24 bits at offset 32 after the 8-byte UDP header) is dropped unless it arrives on the
 *   underlay interface from a known VTEP: a device VTEP on a node, a node VTEP on the gateway. A
 *   pod on the node that forges a VTEP's address comes in on its own interface, not the underlay.
 *   VXLAN of any other VNI on the same port (a CNI's: Calico uses 4789) passes untouched. Family
 *   inet, so IPv6 is seen too: there is no IPv6 underlay yet, so our VNI over IPv6 is dropped.
 *   (Only drops; it never accepts anything another table would drop.)
 * - postrouting (nat, before the usual srcnat priority): an identity SNAT for traffic between
 *   this node's pods and the device overlay addresses. NAT chains at one hook run in priority
 *   order until one sets up a NAT binding, and SNAT to a range that already holds the source
 *   keeps the source unchanged, so this binding keeps the CNI's or the node's masquerade rules
 *   (later chains) from rewriting pod or device addresses, whichever tool installed them.
 *
 * A node the device routes to directly (no VXLAN) gets a table with only the postrouting chain:
 * the same identity SNAT, matched on the device's underlay addresses instead of the VXLAN device
 * (renderDirectRuleset), so the device still sees pod addresses and pods see the device's.
 */
import { familyBits, formatIp, ipCidrSize, parseIp, parseIpCidr } from '../../shared/ip.ts';

export const FIREWALL_TABLE = 'chorus-kube-router';
export const FIREWALL_FAMILY = 'inet';
/** The family of the table of earlier versions, removed in the same transaction that writes ours. */
export const LEGACY_FIREWALL_FAMILY = 'ip';

export interface FirewallSpec {
  /** The instance's table name (default chorus-kube-router). */
  readonly table?: string;
  readonly vxlanDevice: string;
  readonly port: number;
  /** Our VNI: only VXLAN carrying it is checked; other VNIs on the same port are someone else's. */
  readonly vni: number;
  /** The interface holding the underlay address: our VXLAN is accepted only there (undefined: not known, not checked). */
  readonly underlayDevice: string | undefined;
  /** The only underlay addresses VXLAN is accepted from (device VTEPs on a node, node VTEPs on the gateway). */
  readonly allowedVTEPs: readonly string[];
  /**
   * The underlay's family (default: that of allowedVTEPs, else 4): our VXLAN is accepted over it
   * only, from the VTEP set of its address type, and dropped over the other family.
   */
  readonly underlayFamily?: 4 | 6;
  /** Node only: the device's overlay addresses, which keep their source toward pods. */
  readonly deviceOverlayIPs: readonly string[];
  /** Node only: this node's pod CIDRs, which keep their source toward the device. */
  readonly podCIDRs: readonly string[];
  /** Node only, dual-stack overlay: the device's IPv6 overlay addresses (as deviceOverlayIPs). */
  readonly deviceOverlayIPv6s?: readonly string[];
  /** Node only, dual-stack overlay: this node's IPv6 pod CIDRs (as podCIDRs). */
  readonly podCIDRsIPv6?: readonly string[];
  /**
   * Node only, while it switches from the tunnel to direct routing: the direct path's return
   * rules too, so both paths work until the device has switched (make-before-break).
   */
  readonly directReturn?: DirectFirewallSpec;
}

/** A directly routed node's table: only the return path (no VXLAN to guard). */
export interface DirectFirewallSpec {
  readonly table?: string;
  /** The device's underlay addresses (its VTEPs: the self IP / SNIP it routes to the nodes from). */
  readonly deviceAddresses: readonly string[];
  /** This node's pod CIDRs. */
  readonly podCIDRs: readonly string[];
}

/** A contiguous run of addresses of one family, first to last. */
export interface AddressRun {
  readonly family: 4 | 6;
  readonly first: bigint;
  readonly last: bigint;
}

/**
 * Addresses and networks (of one family) as the contiguous runs they cover, in address order:
 * overlapping and adjacent ones merged, as nft merges the elements of an interval set.
 */
export function addressRuns(items: readonly string[]): AddressRun[] {
  const spans = items.map((item): AddressRun => {
    if (!item.includes('/')) {
      const a = parseIp(item);
      return { family: a.family, first: a.value, last: a.value };
    }
    const c = parseIpCidr(item);
    return { family: c.family, first: c.network, last: c.network + ipCidrSize(c) - 1n };
  }).sort((x, y) => (x.first < y.first ? -1 : x.first > y.first ? 1 : 0));
  const runs: AddressRun[] = [];
  for (const span of spans) {
    const prev = runs.at(-1);
    if (prev && span.first <= prev.last + 1n) {
      if (span.last > prev.last) runs[runs.length - 1] = { ...prev, last: span.last };
    } else runs.push(span);
  }
  return runs;
}

/**
 * A run as `nft list` prints it back (nftables 1.0): one address as itself, one aligned block
 * of 2^n addresses as a prefix, anything else as first-last. Every address, network and range
 * in the table is written this way, so that a table the agent finds after a restart compares
 * equal to the one it would write (sameTable) and is kept as it is. Where another nft version
 * prints otherwise, the comparison fails and the agent replaces the table, as it did before
 * (one transaction: nothing lost but the time).
 */
export function runText(r: AddressRun): string {
  const text = (value: bigint): string => formatIp({ family: r.family, value });
  if (r.first === r.last) return text(r.first);
  const size = r.last - r.first + 1n;
  const aligned = (size & (size - 1n)) === 0n && r.first % size === 0n;
  return aligned ? `${text(r.first)}/${familyBits(r.family) - (size.toString(2).length - 1)}` : `${text(r.first)}-${text(r.last)}`;
}

/** A network (or address) as nft lists it: a /32 or /128 as the bare address. */
const cidrText = (cidr: string): string => runText(addressRuns([cidr])[0]!);

/** A match on addresses and networks: one run bare, several as an anonymous set, as nft lists them. */
function matchText(items: readonly string[]): string {
  const runs = addressRuns(items).map(runText);
  return runs.length === 1 ? runs[0]! : `{ ${runs.join(', ')} }`;
}

/** The identity SNAT of one family between this node's pods and the device's overlay addresses. */
function identityRules(dev: string, family: 'ip' | 'ip6', podCIDRs: readonly string[], deviceIPs: readonly string[]): string[] {
  return [
    ...podCIDRs.map(cidrText).map((c) => `\t\toifname ${dev} ${family} saddr ${c} snat ${family} to ${c} comment "pods to the device keep their address"`),
    ...addressRuns(deviceIPs).map(runText).map((r) => `\t\t${family} saddr ${r} oifname != ${dev} snat ${family} to ${r} comment "the device keeps its address toward pods"`),
  ];
}

/** Matches VXLAN of one VNI: the 24-bit VNI field, bits 32-55 of the VXLAN header after the UDP header. */
export const vniMatch = (vni: number): string => `@th,96,24 0x${vni.toString(16)}`;

/** The underlay family a spec guards: given, or that of its VTEPs, or IPv4. */
const underlayFamilyOfSpec = (spec: FirewallSpec): 4 | 6 => spec.underlayFamily ?? (spec.allowedVTEPs.some((v) => v.includes(':')) ? 6 : 4);

export function renderRuleset(spec: FirewallSpec): string {
  const dev = JSON.stringify(spec.vxlanDevice);
  const ours = `udp dport ${spec.port} ${vniMatch(spec.vni)}`;
  const v6 = underlayFamilyOfSpec(spec) === 6;
  const postrouting = [
    ...identityRules(dev, 'ip', spec.podCIDRs, spec.deviceOverlayIPs),
    ...identityRules(dev, 'ip6', spec.podCIDRsIPv6 ?? [], spec.deviceOverlayIPv6s ?? []),
    ...(spec.directReturn ? directReturnRules(spec.directReturn) : []),
  ];
  return [
    `table ${FIREWALL_FAMILY} ${spec.table ?? FIREWALL_TABLE} {`,
    '\tset allowed-vteps {',
    `\t\ttype ${v6 ? 'ipv6_addr' : 'ipv4_addr'}`,
    ...(spec.allowedVTEPs.length > 0 ? [`\t\telements = { ${spec.allowedVTEPs.join(', ')} }`] : []),
    '\t}',
    '\tchain input {',
    '\t\ttype filter hook input priority filter - 10; policy accept;',
    v6
      ? `\t\tmeta nfproto ipv4 ${ours} counter drop comment "IPv6 underlay: our VXLAN only over IPv6"`
      : `\t\tmeta nfproto ipv6 ${ours} counter drop comment "no IPv6 underlay: our VXLAN only over IPv4"`,
    ...(spec.underlayDevice ? [`\t\t${ours} iifname != ${JSON.stringify(spec.underlayDevice)} counter drop comment "our VXLAN only on the underlay interface"`] : []),
    `\t\t${ours} ${v6 ? 'ip6' : 'ip'} saddr != @allowed-vteps counter drop comment "our VXLAN only from known VTEPs"`,
    '\t}',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat - 10; policy accept;',
    ...postrouting,
    '\t}',
    '}',
  ].join('\n');
}

/** The return path of a directly routed node: pods and the device's underlay addresses keep their addresses between each other. */
function directReturnRules(spec: DirectFirewallSpec): string[] {
  const device = addressRuns(spec.deviceAddresses).map(runText);
  return device.length === 0 || spec.podCIDRs.length === 0 ? [] : [
    ...spec.podCIDRs.map(cidrText).map((c) => `\t\tip saddr ${c} ip daddr ${matchText(spec.deviceAddresses)} snat ip to ${c} comment "pods to the device keep their address"`),
    ...device.map((r) => `\t\tip saddr ${r} ip daddr ${matchText(spec.podCIDRs)} snat ip to ${r} comment "the device keeps its address toward pods"`),
  ];
}

export function renderDirectRuleset(spec: DirectFirewallSpec): string {
  const rules = directReturnRules(spec);
  return [
    `table ${FIREWALL_FAMILY} ${spec.table ?? FIREWALL_TABLE} {`,
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat - 10; policy accept;',
    ...rules,
    '\t}',
    '}',
  ].join('\n');
}

/**
 * One atomic nft transaction that replaces the table (create-if-missing, delete, add), removing an
 * earlier version's table of the old family in the same transaction: no packet sees neither.
 */
export function replaceTableScript(ruleset: string, table: string = FIREWALL_TABLE): string {
  return [
    `table ${FIREWALL_FAMILY} ${table} {}`, `delete table ${FIREWALL_FAMILY} ${table}`,
    `table ${LEGACY_FIREWALL_FAMILY} ${table} {}`, `delete table ${LEGACY_FIREWALL_FAMILY} ${table}`,
    ruleset, '',
  ].join('\n');
}

/**
 * A table's text with what `nft list` changes in a table it was given taken out: indentation,
 * blank lines, set elements wrapped over lines and in the kernel's order. Two tables with the
 * same comparable text are the same rules.
 */
export function comparableTable(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.startsWith('elements = {')) {
      while (!line.endsWith('}') && i + 1 < lines.length) line += ` ${lines[++i]!}`;
      const elements = line.slice('elements = {'.length, -1).split(',').map((e) => e.trim()).filter((e) => e !== '').sort();
      line = `elements = { ${elements.join(', ')} }`;
    }
    out.push(line);
  }
  return out.join('\n');
}

/** Whether a table as `nft -s list` prints it holds exactly the rules of a rendered ruleset. */
export function sameTable(ruleset: string, listing: string): boolean {
  return comparableTable(ruleset) === comparableTable(listing);
}
