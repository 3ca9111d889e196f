/**
 * A device driver turns the coordinator's plan into the external device's own state. The
 * coordinator owns the loop (device-reconciler.ts): it asks the driver what the plan means on
 * this device (`desired`), what the device holds of ours now (`observe`, only objects this
 * cluster owns), diffs the two, and hands the driver the changes (`apply`, in batches).
 * Drivers for devices with an API (Citrix NITRO, F5 iControl REST) implement all three, sharing
 * the HTTPS transport and the debounced save (https-json.ts); the Linux
 * device has no API: it runs `gateway` mode, reads the peer table itself, and its driver wants
 * nothing.
 */
import type { WriteFence } from './https-json.ts';
import type { CoordinatorPlan } from '../plan.ts';
import type { Peer } from '../../shared/tables.ts';

/**
 * One object on the device, identified by kind + key; `fields` is everything about it that must
 * match, field by field, as text (drivers normalise what the device answers: numbers as strings,
 * route domains and letter case). Compared one way only: sameFields.
 */
export interface DeviceEntry {
  readonly kind: string;
  readonly key: string;
  readonly fields: Readonly<Record<string, string>>;
  /** The node the entry serves, if any (failures become Events on that Node). */
  readonly node?: string;
}

export type DeviceChange =
  | { readonly op: 'add'; readonly entry: DeviceEntry }
  | { readonly op: 'update'; readonly entry: DeviceEntry; readonly previous: DeviceEntry }
  | { readonly op: 'delete'; readonly entry: DeviceEntry };

export interface DeviceFailure { readonly change: DeviceChange; readonly reason: string }

export interface DeviceDriver {
  readonly type: string;
  /** 'derived': the device's VTEP MAC is derived from its overlay IP and published; 'learned': nodes ARP for it. */
  readonly deviceMACs: 'derived' | 'learned';
  /** The device entries the plan calls for. */
  desired(plan: CoordinatorPlan): DeviceEntry[];
  /**
   * The entries one peer of the plan brings: the very objects desired(plan) holds for it. With
   * it, a plan planned node by node is diffed from its changed peers alone (DeviceReconciler).
   */
  peerEntries?(plan: CoordinatorPlan, peer: Peer): readonly DeviceEntry[];
  /** The entries of this cluster on the device now (never another cluster's or hand-made ones). */
  observe(): Promise<DeviceEntry[]>;
  /**
   * Applies the changes (in order: deletes, updates, adds) and returns the ones that failed.
   * `desired` gives the whole desired state the changes were diffed from, worked out when called
   * (for APIs that replace a set in one request, such as a BIG-IP tunnel's FDB records).
   */
  apply(changes: readonly DeviceChange[], desired: () => readonly DeviceEntry[]): Promise<DeviceFailure[]>;
  /**
   * From now on every request that changes the device passes `fence` first, which throws when
   * this replica may no longer write (it lost the Lease mid-apply): checked per request, so a long
   * apply stops at the first request after the renew deadline. Drivers that write nothing
   * themselves (linux: its gateway programs the device) need none.
   */
  setWriteFence?(fence: WriteFence): void;
  /**
   * The subnet of each of these device VTEP addresses, as the device defines it (the address's
   * own prefix): the direct subnets of --routing auto when none are configured. Throws when the
   * device cannot be read or a VTEP is none of its addresses. Devices without an API have none.
   */
  underlaySubnets?(vteps: readonly string[]): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * The device holds objects this cluster would own, but another cluster (or instance) has claimed
 * them: the driver observes nothing as ours and the loop writes nothing; every node of the plan
 * is reported failed with this message, which names the owner and the fix.
 */
export class DeviceOwnershipError extends Error {
  override readonly name = 'DeviceOwnershipError';
}

export const entryId = (e: DeviceEntry): string => `${e.kind}|${e.key}`;

/** Whether two entries' fields are the same (order-independent; a field absent on one side differs). */
export function sameFields(a: DeviceEntry, b: DeviceEntry): boolean {
  const ka = Object.keys(a.fields);
  return ka.length === Object.keys(b.fields).length && ka.every((k) => b.fields[k] === a.fields[k]);
}

/** An entry's fields as one line for logs, Events and tests: `a=1 b=2`. */
export const fieldsText = (e: DeviceEntry): string => Object.entries(e.fields).map(([k, v]) => `${k}=${v}`).join(' ');

/**
 * The device entries of each peer, built once per peer object: the coordinator's planner hands
 * back the same Peer object for a node that did not change, so a node event builds only that
 * node's entries. `context` is everything else the entries are built from (VNI, addresses of the
 * device): when it changes, nothing is reused.
 */
export class PeerEntries {
  private context: string | undefined;
  private byPeer = new WeakMap<Peer, readonly DeviceEntry[]>();

  of(peer: Peer, context: string, build: (peer: Peer) => DeviceEntry[]): readonly DeviceEntry[] {
    if (context !== this.context) {
      this.byPeer = new WeakMap();
      this.context = context;
    }
    let entries = this.byPeer.get(peer);
    if (!entries) {
      entries = build(peer);
      this.byPeer.set(peer, entries);
    }
    return entries;
  }
}

/** The change that brings what the device has (`have`) to `want`, if any, onto the right list. */
function addOrUpdate(have: DeviceEntry | undefined, want: DeviceEntry, adds: DeviceChange[], updates: DeviceChange[]): void {
  if (!have) adds.push({ op: 'add', entry: want });
  // an entry applied from the last desired state is that very object: nothing to compare
  else if (have !== want && !sameFields(have, want)) updates.push({ op: 'update', entry: want, previous: have });
}

/** Pure: the changes that turn `observed` into `desired`; deletes first, then updates, then adds. */
export function diffDevice(desired: readonly DeviceEntry[], observed: readonly DeviceEntry[]): DeviceChange[] {
  const want = new Map(desired.map((e) => [entryId(e), e]));
  const have = new Map(observed.map((e) => [entryId(e), e]));
  const deletes: DeviceChange[] = [];
  const updates: DeviceChange[] = [];
  const adds: DeviceChange[] = [];
  for (const [id, e] of have) if (!want.has(id)) deletes.push({ op: 'delete', entry: e });
  for (const [id, e] of want) addOrUpdate(have.get(id), e, adds, updates);
  return [...deletes, ...updates, ...adds];
}

/** What a desired state adds to, and takes from, the one before it (entries compared by object). */
export interface DesiredDelta {
  readonly added: readonly DeviceEntry[];
  readonly removed: readonly DeviceEntry[];
}

/**
 * What changed from `previous` to `desired`, by object: a planned peer that did not change brings
 * the very entry objects it brought last time (PeerEntries). One lookup per entry; the entries that
 * left are looked for only when some did.
 */
export function desiredDelta(previous: ReadonlySet<DeviceEntry>, desired: readonly DeviceEntry[]): DesiredDelta {
  const added: DeviceEntry[] = [];
  let kept = 0;
  for (const e of desired) {
    if (previous.has(e)) kept++;
    else added.push(e);
  }
  const removed: DeviceEntry[] = [];
  if (kept < previous.size) {
    const now = new Set(desired);
    for (const e of previous) if (!now.has(e)) removed.push(e);
  }
  return { added, removed };
}

/**
 * Pure: the same changes as diffDevice(desired, observed), found from what changed since the
 * desired state `observed` was brought to (every change of the pass that diffed it applied): a
 * node event looks up the id of that node's entries only, where diffDevice keys every entry of
 * the cluster.
 */
export function diffDeviceDelta(delta: DesiredDelta, observed: ReadonlyMap<string, DeviceEntry>): DeviceChange[] {
  const added = new Map<string, DeviceEntry>();
  for (const e of delta.added) added.set(entryId(e), e);
  const deletes: DeviceChange[] = [];
  const updates: DeviceChange[] = [];
  const adds: DeviceChange[] = [];
  for (const e of delta.removed) {
    const id = entryId(e);
    const h = observed.get(id);
    if (h && !added.has(id)) deletes.push({ op: 'delete', entry: h });
  }
  for (const [id, e] of added) addOrUpdate(observed.get(id), e, adds, updates);
  return [...deletes, ...updates, ...adds];
}
