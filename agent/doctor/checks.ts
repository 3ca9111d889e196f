/**
 * `doctor`'s judgement, pure: the facts gathered on a node (what the overlay should be, what the
 * kernel holds, the firewall listing, sysctls, a ping to the device, the agent's /readyz) become
 * one pass/fail line per check, each failure with the exact fault and its fix. The kernel part
 * reuses the agent's own diff, so doctor and agent can never disagree on what "right" is.
 */
import { diffOverlay, vxlanIncompatibility } from '../overlay/diff.ts';
import { vxlanOverhead, type ObservedOverlay, type Op } from '../overlay/state.ts';
import type { DirectPlan, EndpointPlan } from '../plan-types.ts';
import { FIREWALL_FAMILY, FIREWALL_TABLE, vniMatch } from '../firewall/ruleset.ts';

export interface CheckResult {
  readonly check: string;
  readonly ok: boolean;
  /** What was found. */
  readonly detail: string;
  /** What to do about it (failures only). */
  readonly fix?: string;
}

export interface DoctorFacts {
  readonly node: string;
  /** The overlay this node should have, or why it cannot be known (with the check and fix that name it, when known). */
  readonly plan: EndpointPlan | DirectPlan | { readonly error: string; readonly check?: string; readonly fix?: string };
  readonly observed: ObservedOverlay;
  readonly firewallEnabled: boolean;
  /** `nft -s list table inet chorus-kube-router`, undefined when the table is missing. */
  readonly firewallListing: string | undefined;
  readonly rpFilter: { readonly all: string; readonly dev: string | undefined };
  readonly ipForward: string;
  /** net.ipv6.conf.all.forwarding (read for a dual-stack overlay; undefined: not read). */
  readonly ipv6Forward?: string;
  /** Replies to pings of the device's overlay IP through the overlay device (undefined: not tried). */
  readonly ping: { readonly sent: number; readonly received: number; readonly target: string } | undefined;
  /** The same for the device's IPv6 overlay address (a dual-stack overlay; undefined: not tried). */
  readonly ping6?: { readonly sent: number; readonly received: number; readonly target: string } | undefined;
  readonly agent: { readonly ok: boolean; readonly detail: string; readonly url: string };
  /** A directly routed node: what the kernel says of the way to the device, and overlay devices of ours still here. */
  readonly direct?: DirectFacts;
}

export interface DirectFacts {
  /** `ip route get <device VTEP>`: the interface and the gateway (none when the device is a neighbour). */
  readonly routeToDevice: { readonly target: string; readonly dev: string; readonly via: string | undefined } | undefined;
  /** Replies to pings of the device's underlay address (undefined: not tried). */
  readonly ping: { readonly sent: number; readonly received: number; readonly target: string } | undefined;
  /** VXLAN devices of this instance on the node. */
  readonly overlayDevices: readonly string[];
}

const AGENT_FIX = 'the agent keeps this right by itself: check it runs and is not stuck (kubectl -n chorus-system get pods -l app.kubernetes.io/name=chorus-kube-router-agent -o wide; kubectl -n chorus-system logs <agent pod on this node>)';

const pass = (check: string, detail: string): CheckResult => ({ check, ok: true, detail });
const fail = (check: string, detail: string, fix: string): CheckResult => ({ check, ok: false, detail, fix });

function deviceCheck(plan: EndpointPlan, observed: ObservedOverlay, ops: readonly Op[]): CheckResult {
  const want = plan.overlay.vxlan;
  const have = observed.vxlan;
  const create = `ip link add ${want.name} type vxlan id ${want.vni} local ${want.local} dstport ${want.port} nolearning && ip link set ${want.name} up`;
  if (!have) return fail('overlay device', `${want.name} is missing`, `${AGENT_FIX}; by hand: ${create}`);
  const why = vxlanIncompatibility(want, have);
  if (why) return fail('overlay device', `${want.name} exists but does not match (${why})`, `delete it (ip link del ${want.name}) and let the agent re-create it, or by hand: ${create}`);
  if (have.local !== want.local) return fail('overlay device', `${want.name} has local ${have.local || '(none)'}, this node's address is ${want.local}`, `${AGENT_FIX} (it changes the local address in place); by hand: ip link set ${want.name} type vxlan local ${want.local}`);
  if (ops.some((o) => o.kind === 'link-set' && o.up)) return fail('overlay device', `${want.name} is down`, `ip link set ${want.name} up`);
  return pass('overlay device', `${want.name}: vxlan id ${want.vni}, local ${want.local}, port ${want.port}, up`);
}

/** "IPv4" or "IPv6", as the address text says. */
const familyName = (ip: string): string => (ip.includes(':') ? 'IPv6' : 'IPv4');

/** Addresses (or CIDRs) named by family: `IPv4 198.18.16.2/20, IPv6 2001:db8:c0::2/64`. */
const byFamily = (list: readonly string[]): string => list.map((a) => `${familyName(a)} ${a}`).join(', ');

/** A count per family: `2` when all are IPv4, `2 (IPv4 1, IPv6 1)` otherwise. */
function countByFamily(list: readonly string[]): string {
  const v6 = list.filter((x) => x.includes(':')).length;
  return v6 === 0 ? String(list.length) : `${list.length} (IPv4 ${list.length - v6}, IPv6 ${v6})`;
}

function mtuCheck(plan: EndpointPlan, observed: ObservedOverlay): CheckResult {
  const want = plan.overlay.vxlan;
  const have = observed.vxlan?.mtu;
  if (have === want.mtu) return pass('MTU', `${want.name} MTU ${want.mtu} (underlay MTU - ${vxlanOverhead(want.local)}: VXLAN over ${familyName(want.local)})`);
  return fail('MTU', `${want.name} has MTU ${String(have)}, the overlay needs ${want.mtu}`, `ip link set ${want.name} mtu ${want.mtu}; ${AGENT_FIX} (if the MTU keeps changing, another tool manages this device)`);
}

function addressCheck(plan: EndpointPlan, ops: readonly Op[]): CheckResult {
  const dev = plan.overlay.vxlan.name;
  const missing = ops.flatMap((o) => (o.kind === 'addr-add' ? [o.cidr] : []));
  const extra = ops.flatMap((o) => (o.kind === 'addr-del' ? [o.cidr] : []));
  if (missing.length === 0 && extra.length === 0) return pass('overlay address', `${byFamily(plan.overlay.addresses)} on ${dev}`);
  return fail('overlay address', [missing.length > 0 ? `missing ${missing.join(', ')}` : '', extra.length > 0 ? `unexpected ${extra.join(', ')}` : ''].filter((s) => s !== '').join('; '),
    [...missing.map((c) => `ip addr add ${c} dev ${dev}`), ...extra.map((c) => `ip addr del ${c} dev ${dev}`)].join('; '));
}

function fdbCheck(plan: EndpointPlan, ops: readonly Op[]): CheckResult {
  const dev = plan.overlay.vxlan.name;
  const missing = ops.flatMap((o) => (o.kind === 'fdb-add' ? [o.entry] : []));
  if (missing.length === 0) return pass('FDB', plan.overlay.fdb.map((e) => `${e.mac} -> ${e.dst}`).join(', ') || 'no entries needed');
  return fail('FDB', `missing ${missing.map((e) => `${e.mac} -> ${e.dst}`).join(', ')}`, `${missing.map((e) => `bridge fdb append ${e.mac} dev ${dev} dst ${e.dst} self permanent`).join('; ')}; ${AGENT_FIX}`);
}

function neighbourAndRouteCheck(plan: EndpointPlan, ops: readonly Op[]): CheckResult {
  const dev = plan.overlay.vxlan.name;
  const neigh = ops.flatMap((o) => (o.kind === 'neigh-replace' ? [o.entry] : []));
  const routes = ops.flatMap((o) => (o.kind === 'route-replace' ? [o.entry] : []));
  if (neigh.length === 0 && routes.length === 0) return pass('neighbours and routes', `${countByFamily(plan.overlay.neighbours.map((n) => n.ip))} neighbour(s), ${countByFamily(plan.overlay.routes.map((r) => r.dst))} route(s) as planned`);
  return fail('neighbours and routes', [...neigh.map((n) => `neighbour ${n.ip} -> ${n.mac} missing or wrong`), ...routes.map((r) => `route ${r.dst} via ${r.via} missing`)].join('; '),
    [...neigh.map((n) => `ip neigh replace ${n.ip} lladdr ${n.mac} dev ${dev} nud permanent`), ...routes.map((r) => `ip route replace ${r.dst} via ${r.via} dev ${dev} onlink`)].join('; '));
}

function firewallCheck(plan: EndpointPlan, facts: DoctorFacts): CheckResult {
  if (!facts.firewallEnabled) return pass('firewall', 'off by setting (--firewall off)');
  const f = plan.firewall;
  const table = `${FIREWALL_FAMILY} ${f.table ?? FIREWALL_TABLE}`;
  const restore = `${AGENT_FIX}; the agent re-creates table ${table} within a second of a change it sees (if rules keep disappearing, a firewall service is flushing nftables: exclude table ${table})`;
  const listing = facts.firewallListing;
  if (listing === undefined) return fail('firewall', `table ${table} is missing`, restore);
  const missing: string[] = [];
  const ours = `udp dport ${f.port} ${vniMatch(f.vni)}`;
  // the source check matches the underlay's family (ip6 saddr on an IPv6 underlay)
  const saddr = (f.underlayFamily ?? (f.allowedVTEPs.some((v) => v.includes(':')) ? 6 : 4)) === 6 ? 'ip6 saddr' : 'ip saddr';
  if (!listing.includes(`${ours} ${saddr} != @allowed-vteps`)) missing.push(`the VXLAN source check (${ours} ${saddr} != @allowed-vteps drop)`);
  if (f.underlayDevice && !listing.includes(`${ours} iifname != ${JSON.stringify(f.underlayDevice)}`)) missing.push(`the underlay interface check (${ours} iifname != "${f.underlayDevice}" drop)`);
  for (const v of f.allowedVTEPs) if (!new RegExp(`elements = \\{[^}]*\\b${v.replace(/\./g, '\\.')}\\b`).test(listing)) missing.push(`device VTEP ${v} in set allowed-vteps`);
  for (const c of f.podCIDRs) if (!new RegExp(`ip saddr ${c.replace(/\./g, '\\.')} snat (ip )?to ${c.replace(/\./g, '\\.')}`).test(listing)) missing.push(`the no-masquerade rule for pod CIDR ${c}`);
  for (const c of f.podCIDRsIPv6 ?? []) if (!listing.includes(`ip6 saddr ${c} snat ip6 to ${c}`)) missing.push(`the no-masquerade rule for IPv6 pod CIDR ${c}`);
  if (missing.length > 0) return fail('firewall', `table ${table} lacks ${missing.join('; ')}`, restore);
  return pass('firewall', `table ${table}: VXLAN of VNI ${f.vni} only from ${f.allowedVTEPs.join(', ')}${f.underlayDevice ? ` on ${f.underlayDevice}` : ''}; pods keep their address toward the device`);
}

function sysctlChecks(plan: EndpointPlan, facts: DoctorFacts): CheckResult[] {
  const dev = plan.overlay.vxlan.name;
  const effective = Math.max(Number(facts.rpFilter.all), Number(facts.rpFilter.dev ?? 0));
  const rp = effective === 1
    ? fail('rp_filter', `strict reverse-path filtering on ${dev} (all=${facts.rpFilter.all}, ${dev}=${facts.rpFilter.dev ?? '?'}) drops traffic from the device's overlay address`, `sysctl -w net.ipv4.conf.${dev}.rp_filter=2 (loose; the agent sets this on its device)`)
    : pass('rp_filter', `${effective === 2 ? 'loose' : 'off'} on ${dev}`);
  const fwd = facts.ipForward === '1'
    ? pass('ip_forward', 'net.ipv4.ip_forward = 1')
    : fail('ip_forward', 'net.ipv4.ip_forward = 0: the node does not forward the device\'s traffic to its pods', 'sysctl -w net.ipv4.ip_forward=1 (and persist it in /etc/sysctl.d/; Kubernetes nodes normally have it on)');
  if (facts.ipv6Forward === undefined) return [rp, fwd];
  const fwd6 = facts.ipv6Forward === '1'
    ? pass('ipv6 forwarding', 'net.ipv6.conf.all.forwarding = 1')
    : fail('ipv6 forwarding', 'net.ipv6.conf.all.forwarding = 0: the node does not forward the device\'s IPv6 traffic to its pods (the agent is not ready while it is off)', 'sysctl -w net.ipv6.conf.all.forwarding=1 (and persist it; a dual-stack CNI normally sets it)');
  return [rp, fwd, fwd6];
}

function reachabilityCheck(plan: EndpointPlan, facts: DoctorFacts, p = facts.ping, check = 'device reachable'): CheckResult {
  if (!p) return fail(check, 'not tried: no device overlay address in the hub info', 'check the coordinator (kubectl -n chorus-system logs deploy/chorus-kube-router-coordinator)');
  if (p.received > 0) return pass(check, `${p.target} answered ${p.received}/${p.sent} pings through ${plan.overlay.vxlan.name}`);
  const vteps = plan.firewall.allowedVTEPs.join(', ');
  return fail(check, `${p.target} (the device's ${p.target.includes(':') ? 'IPv6 ' : ''}overlay address) did not answer ${p.sent} pings through ${plan.overlay.vxlan.name}`,
    `the node side checks above pass, so look at the path and the device: UDP ${plan.firewall.port} between ${plan.overlay.vxlan.local} and ${vteps} must pass every firewall on the way; the device must have this node (chorus-kube-router status shows "programmed on device"; docs/citrix.md and docs/f5.md list the show commands)`);
}

function agentCheck(facts: DoctorFacts): CheckResult {
  return facts.agent.ok ? pass('agent', `${facts.agent.url}: ${facts.agent.detail}`) : fail('agent', `${facts.agent.url}: ${facts.agent.detail}`, AGENT_FIX);
}

/**
 * A node the device routes to directly: it must forward, the device must be its neighbour on the
 * underlay (no router between: the device's route to the pods goes via this node's address), and
 * nothing of the overlay is left here.
 */
function diagnoseDirect(plan: DirectPlan, facts: DoctorFacts): CheckResult[] {
  const d = plan.direct;
  const f = facts.direct;
  const results = [pass('inputs', `node ${facts.node}: routed directly (path "direct"): the device reaches pod CIDR(s) ${d.podCIDRs.join(', ') || '(none yet)'} via ${d.underlayIP}; device address(es) ${d.deviceVTEPs.join(', ')}`)];
  const left = f?.overlayDevices ?? [];
  results.push(left.length === 0
    ? pass('no overlay device', "none of this instance's VXLAN devices is here, as direct routing wants")
    : fail('no overlay device', `${left.join(', ')} still here although this node is routed directly (for 10 s after a switch from the tunnel the agent keeps it on purpose, while the device switches: run doctor again)`, AGENT_FIX));
  const fwd = facts.ipForward === '1'
    ? pass('ip_forward', 'net.ipv4.ip_forward = 1')
    : fail('ip_forward', 'net.ipv4.ip_forward = 0: the node does not forward the device\'s traffic to its pods', 'sysctl -w net.ipv4.ip_forward=1 (and persist it in /etc/sysctl.d/; Kubernetes nodes normally have it on)');
  results.push(fwd);
  const r = f?.routeToDevice;
  if (!r) results.push(fail('device is a neighbour', `no route to the device address ${d.deviceVTEPs[0] ?? '?'} on this node`, 'the node and the device must share an underlay subnet for direct routing; otherwise use --routing vxlan, or auto with --direct-subnets listing only the shared subnets'));
  else if (r.via !== undefined) results.push(fail('device is a neighbour', `the device ${r.target} is reached via the router ${r.via} on ${r.dev}, not on a shared subnet`, 'direct routing needs the device on the node\'s own subnet (its route to the pods goes via this node\'s address): route this node through VXLAN (the coordinator\'s --routing auto with --direct-subnets that leave out this node\'s subnet, or --routing vxlan)'));
  else results.push(pass('device is a neighbour', `${r.target} is on ${r.dev}'s subnet, no router between`));
  const p = f?.ping;
  if (p) {
    results.push(p.received > 0
      ? pass('device reachable', `${p.target} answered ${p.received}/${p.sent} pings on the underlay`)
      : fail('device reachable', `${p.target} (the device's underlay address) did not answer ${p.sent} pings`, 'check the path between this node and the device on the underlay (a firewall dropping ICMP makes this check fail alone; then test with TCP to a pod from the device)'));
  }
  results.push(agentCheck(facts));
  return results;
}

export function diagnose(facts: DoctorFacts): CheckResult[] {
  const plan = facts.plan;
  if ('direct' in plan) return diagnoseDirect(plan, facts);
  if ('error' in plan) {
    return [
      plan.check && plan.fix
        ? fail(plan.check, plan.error, plan.fix)
        : fail('inputs', `cannot tell what node ${facts.node}'s overlay should be: ${plan.error}`, 'check that the coordinator runs and has allocated this node (chorus-kube-router status), and that --node-name names this node'),
      agentCheck(facts),
    ];
  }
  const ops = diffOverlay(plan.overlay, facts.observed);
  const results = [pass('inputs', `node ${facts.node}: overlay ${byFamily(plan.overlay.addresses)}, VNI ${plan.overlay.vxlan.vni}, device VTEP(s) ${plan.firewall.allowedVTEPs.join(', ')} (${familyName(plan.overlay.vxlan.local)} underlay)`), deviceCheck(plan, facts.observed, ops)];
  if (!facts.observed.vxlan) {
    results.push(fail('device-dependent checks', 'skipped: the overlay device is missing', 'fix the overlay device first'));
  } else {
    results.push(mtuCheck(plan, facts.observed), addressCheck(plan, ops), fdbCheck(plan, ops), neighbourAndRouteCheck(plan, ops));
  }
  results.push(firewallCheck(plan, facts), ...sysctlChecks(plan, facts));
  if (facts.observed.vxlan) results.push(reachabilityCheck(plan, facts));
  if (facts.observed.vxlan && facts.ping6 !== undefined) results.push(reachabilityCheck(plan, facts, facts.ping6, 'device reachable (IPv6)'));
  results.push(agentCheck(facts));
  return results;
}

/** The lines doctor prints: `PASS  check  detail` or `FAIL  check  detail` + `      fix: ...`. */
export function formatResults(results: readonly CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.check.length));
  return results.map((r) => `${r.ok ? 'PASS' : 'FAIL'}  ${r.check.padEnd(width)}  ${r.detail}${r.fix ? `\n      fix: ${r.fix}` : ''}`).join('\n');
}
