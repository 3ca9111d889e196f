/**
 * diffOverlay(desired, observed) -> ops: the smallest set of changes that turns what the kernel
 * has into what we want, in a deliberate order (removals first; then device, address, FDB,
 * neighbour, and routes last, as flannel does, so a route never points at an unresolvable hop).
 * Pure: table-tested in test/unit/overlay.test.ts.
 */
import { ALL_ZEROS_MAC } from '../../shared/mac.ts';
import { EMPTY_OBSERVED, type DesiredOverlay, type FdbEntry, type ObservedOverlay, type ObservedVxlan, type Op, type VxlanSpec } from './state.ts';

/** Why an existing device cannot be reused (it must be recreated), or undefined when it can. */
export function vxlanIncompatibility(want: VxlanSpec, have: ObservedVxlan, localInPlace = true): string | undefined {
  if (have.kind !== 'vxlan') return `kind: ${have.kind} vs vxlan`;
  if (have.vni !== want.vni) return `vni: ${have.vni} vs ${want.vni}`;
  // a new local address (a renumbered node) is changed in place (deviceOps), where the kernel can
  if (!localInPlace && have.local !== want.local) return `local: ${have.local || '(none)'} vs ${want.local}`;
  if (have.port !== want.port) return `port: ${have.port} vs ${want.port}`;
  if (have.learning) return 'learning: on vs off';
  return undefined;
}

/** True for the FDB entry that floods broadcast/unknown traffic to a VTEP. */
export function isFloodEntry(mac: string): boolean {
  return mac === ALL_ZEROS_MAC;
}

const fdbKey = (e: FdbEntry): string => `${e.mac}|${e.dst}`;

function deviceOps(want: VxlanSpec, have: ObservedVxlan | undefined): Op[] {
  if (!have) return [{ kind: 'link-create', spec: want }, { kind: 'link-set', name: want.name, up: true }];
  const mtu = have.mtu !== want.mtu ? want.mtu : undefined;
  const mac = have.mac !== want.mac ? want.mac : undefined;
  // a renumbered node: the kernel changes a VXLAN device's local address in place (changelink), so
  // the device never disappears, and it still takes VXLAN sent to the old address (the socket is
  // bound to the port on every address) until the device sends to the new one
  const local = have.local !== want.local ? want.local : undefined;
  if (mtu === undefined && mac === undefined && local === undefined && have.up) return [];
  return [{ kind: 'link-set', name: want.name, ...(mtu !== undefined ? { mtu } : {}), ...(mac !== undefined ? { mac } : {}), ...(!have.up ? { up: true as const } : {}), ...(local !== undefined ? { local } : {}) }];
}

/** Entries we own that are no longer wanted, routes first (the reverse of the add order). */
function removalOps(dev: string, desired: DesiredOverlay, observed: ObservedOverlay): Op[] {
  const wantRoutes = new Set(desired.routes.map((r) => r.dst));
  const wantNeigh = new Set(desired.neighbours.map((n) => n.ip));
  const wantFdb = new Set(desired.fdb.map(fdbKey));
  const wantAddr = new Set(desired.addresses);
  return [
    ...observed.routes.filter((r) => !wantRoutes.has(r.dst)).map((entry): Op => ({ kind: 'route-del', dev: entry.dev ?? dev, entry })),
    // only static entries are ours; the kernel's own ARP entries age out by themselves
    ...observed.neighbours.filter((n) => n.permanent && !wantNeigh.has(n.ip)).map((entry): Op => ({ kind: 'neigh-del', dev, entry })),
    ...observed.fdb.filter((e) => !wantFdb.has(fdbKey(e))).map((entry): Op => ({ kind: 'fdb-del', dev, entry })),
    ...observed.addresses.filter((a) => !wantAddr.has(a)).map((cidr): Op => ({ kind: 'addr-del', dev, cidr })),
  ];
}

function additionOps(dev: string, desired: DesiredOverlay, observed: ObservedOverlay): Op[] {
  const haveAddr = new Set(observed.addresses);
  const haveFdb = new Set(observed.fdb.map(fdbKey));
  const haveNeigh = new Map(observed.neighbours.map((n) => [n.ip, n]));
  // one route per destination: `replace` moves it between the VXLAN device and the direct device in one step
  const haveRoutes = new Map(observed.routes.map((r) => [r.dst, `${r.via}|${r.dev ?? ''}`]));
  return [
    ...desired.addresses.filter((a) => !haveAddr.has(a)).map((cidr): Op => ({ kind: 'addr-add', dev, cidr })),
    ...desired.fdb.filter((e) => !haveFdb.has(fdbKey(e))).map((entry): Op => ({ kind: 'fdb-add', dev, entry })),
    ...desired.neighbours.filter((n) => {
      const h = haveNeigh.get(n.ip);
      return !h || !h.permanent || h.mac !== n.mac;
    }).map((entry): Op => ({ kind: 'neigh-replace', dev, entry })),
    ...desired.routes.filter((r) => haveRoutes.get(r.dst) !== `${r.via}|${r.dev ?? ''}`).map((entry): Op => ({ kind: 'route-replace', dev: entry.dev ?? dev, entry })),
  ];
}

/** `localInPlace` false: a device whose local address differs is recreated (a kernel that cannot change it in place). */
export function diffOverlay(desired: DesiredOverlay, observedIn: ObservedOverlay, o: { localInPlace?: boolean } = {}): Op[] {
  const dev = desired.vxlan.name;
  const reason = observedIn.vxlan ? vxlanIncompatibility(desired.vxlan, observedIn.vxlan, o.localInPlace ?? true) : undefined;
  // an incompatible device is recreated; with it goes everything that was on it
  const observed = reason ? EMPTY_OBSERVED : observedIn;
  return [
    ...(reason ? [{ kind: 'link-delete', name: dev, reason } as const] : []),
    ...removalOps(dev, desired, observed),
    ...deviceOps(desired.vxlan, observed.vxlan),
    ...additionOps(dev, desired, observed),
  ];
}

/**
 * What the kernel holds once every op of diffOverlay(desired, observed) has been applied
 * (no op refused): the desired addresses, FDB, static neighbours and routes, and the
 * neighbours the kernel learned by itself that the plan does not claim. The device is as
 * observed (the caller reads it again when an op changed it).
 */
export function expectedAfter(desired: DesiredOverlay, observed: ObservedOverlay): ObservedOverlay {
  const claimed = new Set(desired.neighbours.map((n) => n.ip));
  return {
    vxlan: observed.vxlan,
    addresses: [...desired.addresses],
    fdb: [...desired.fdb],
    neighbours: [...desired.neighbours.map((n) => ({ ...n, permanent: true })), ...observed.neighbours.filter((n) => !n.permanent && !claimed.has(n.ip))],
    routes: [...desired.routes],
  };
}
