/**
 * diffOverlay(desired, observed) -> ops: the smallest set of changes that turns what the kernel
 * has into what we want, in a deliberate order (removals first; then device, address, FDB,
 * neighbour, and routes last, as flannel does, so a route never points at an unresolvable hop).
 * Pure: table-tested in test/unit/overlay-diff.test.ts.
 */
import { ALL_ZEROS_MAC } from '../../shared/mac.ts';
import { EMPTY_OBSERVED, type DesiredOverlay, type ObservedOverlay, type ObservedVxlan, type Op, type VxlanSpec } from './state.ts';

/** Why an existing device cannot be reused (it must be recreated), or undefined when it can. */
export function vxlanIncompatibility(want: VxlanSpec, have: ObservedVxlan): string | undefined {
  if (have.kind !== 'vxlan') return `kind: ${have.kind} vs vxlan`;
  if (have.vni !== want.vni) return `vni: ${have.vni} vs ${want.vni}`;
  if (have.local !== want.local) return `local: ${have.local || '(none)'} vs ${want.local}`;
  if (have.port !== want.port) return `port: ${have.port} vs ${want.port}`;
  if (have.learning) return 'learning: on vs off';
  return undefined;
}

const fdbKey = (e: { mac: string; dst: string }): string => `${e.mac}|${e.dst}`;

export function diffOverlay(desired: DesiredOverlay, observedIn: ObservedOverlay): Op[] {
  const dev = desired.vxlan.name;
  const pre: Op[] = [];
  let observed = observedIn;
  const linkOps: Op[] = [];
  if (observed.vxlan) {
    const reason = vxlanIncompatibility(desired.vxlan, observed.vxlan);
    if (reason) {
      pre.push({ kind: 'link-delete', name: dev, reason });
      observed = EMPTY_OBSERVED;
    }
  }
  if (!observed.vxlan) {
    linkOps.push({ kind: 'link-create', spec: desired.vxlan }, { kind: 'link-set', name: dev, up: true });
  } else {
    const have = observed.vxlan;
    const mtu = have.mtu !== desired.vxlan.mtu ? desired.vxlan.mtu : undefined;
    const mac = have.mac !== desired.vxlan.mac ? desired.vxlan.mac : undefined;
    if (mtu !== undefined || mac !== undefined || !have.up) {
      linkOps.push({ kind: 'link-set', name: dev, ...(mtu !== undefined ? { mtu } : {}), ...(mac !== undefined ? { mac } : {}), ...(!have.up ? { up: true as const } : {}) });
    }
  }

  const removals: Op[] = [];
  const adds: Op[] = [];

  const wantRoutes = new Map(desired.routes.map((r) => [r.dst, r]));
  for (const r of observed.routes) {
    const w = wantRoutes.get(r.dst);
    if (!w) removals.push({ kind: 'route-del', dev, entry: r });
  }
  const haveRoutes = new Map(observed.routes.map((r) => [r.dst, r]));

  const wantNeigh = new Map(desired.neighbours.map((n) => [n.ip, n]));
  for (const n of observed.neighbours) {
    if (n.permanent && !wantNeigh.has(n.ip)) removals.push({ kind: 'neigh-del', dev, entry: n });
  }
  const haveNeigh = new Map(observed.neighbours.map((n) => [n.ip, n]));

  const wantFdb = new Set(desired.fdb.map(fdbKey));
  for (const e of observed.fdb) if (!wantFdb.has(fdbKey(e))) removals.push({ kind: 'fdb-del', dev, entry: e });
  const haveFdb = new Set(observed.fdb.map(fdbKey));

  const wantAddr = new Set(desired.addresses);
  for (const a of observed.addresses) if (!wantAddr.has(a)) removals.push({ kind: 'addr-del', dev, cidr: a });
  const haveAddr = new Set(observed.addresses);

  for (const a of desired.addresses) if (!haveAddr.has(a)) adds.push({ kind: 'addr-add', dev, cidr: a });
  for (const e of desired.fdb) if (!haveFdb.has(fdbKey(e))) adds.push({ kind: 'fdb-add', dev, entry: e });
  for (const n of desired.neighbours) {
    const h = haveNeigh.get(n.ip);
    if (!h || !h.permanent || h.mac !== n.mac) adds.push({ kind: 'neigh-replace', dev, entry: n });
  }
  for (const r of desired.routes) {
    const h = haveRoutes.get(r.dst);
    if (!h || h.via !== r.via) adds.push({ kind: 'route-replace', dev, entry: r });
  }
  return [...pre, ...removals, ...linkOps, ...adds];
}

/** True for the FDB entry that floods broadcast/unknown traffic to a VTEP. */
export function isFloodEntry(mac: string): boolean {
  return mac === ALL_ZEROS_MAC;
}
