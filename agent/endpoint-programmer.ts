/**
 * Applies an EndpointPlan (node or gateway) to this host: the overlay device (observe, diff,
 * apply), reverse-path filtering on it, its checksum offload setting, and the agent's nftables
 * table. Returns what it changed, by kind, so the caller can count repairs; and removes all of
 * it for `agent cleanup`.
 *
 * The device itself is observed on every pass (netlink events tell us when it drifts). Settings
 * no netlink event reports (offload, sysctl, the firewall table) are checked when the device is
 * new, when asked for a full check (start, periodic resync, an nft monitor event), and otherwise
 * left alone, so an event-driven pass spawns no process unless something must change (the agent
 * reads the kernel over netlink; changes are `ip -batch` / `bridge -batch`).
 */
import type { IpRoute } from '../shared/iproute.ts';
import type { Logger } from '../shared/log.ts';
import { errorMessage } from '../shared/errors.ts';
import type { DirectPlan, EndpointPlan } from './plan-types.ts';
import { programOverlay, removeOverlay } from './overlay/program.ts';
import { readerOf, type KernelReader } from './overlay/observe.ts';
import type { EntryWriter } from './overlay/netlink-writer.ts';
import { EMPTY_OBSERVED, type ObservedOverlay, type Op } from './overlay/state.ts';
import { LINUX_HOST, type HostKnobs, type TxChecksumMode } from './host.ts';
import { renderDirectRuleset, renderRuleset, sameTable } from './firewall/ruleset.ts';
import type { Nft } from './firewall/nft.ts';

export const CHANGE_KINDS = ['device', 'device-settings', 'address', 'fdb', 'neighbour', 'route', 'firewall', 'offload', 'sysctl'] as const;
export type ChangeKind = typeof CHANGE_KINDS[number];

export function changeKindOf(op: Op): ChangeKind {
  switch (op.kind) {
    case 'link-create': case 'link-delete': return 'device';
    case 'link-set': return 'device-settings';
    case 'addr-add': case 'addr-del': return 'address';
    case 'fdb-add': case 'fdb-del': return 'fdb';
    case 'neigh-replace': case 'neigh-del': return 'neighbour';
    case 'route-replace': case 'route-del': return 'route';
  }
}

export interface EndpointProgrammerOptions {
  readonly ip: IpRoute;
  /** How the kernel is read (default: iproute2 through `ip`). */
  readonly reader?: KernelReader;
  /** How FDB entries, neighbours and routes are written (default: `ip`/`bridge` batches; the agent and gateway use netlink). */
  readonly writer?: EntryWriter;
  readonly nft: Nft;
  readonly log: Logger;
  readonly txChecksum: TxChecksumMode;
  readonly firewall: boolean;
  /** Whether a VXLAN device name is this instance's (default: the default instance's names). */
  readonly ownsDevice?: (name: string) => boolean;
  /** sysctls and offloads (default: this host's). */
  readonly host?: HostKnobs;
  /**
   * How long a node that switches from the tunnel to direct routing keeps its tunnel (default
   * 10 s): the device may still send through it until its own switch is applied.
   */
  readonly tunnelKeepMs?: number;
  /** Monotonic milliseconds (default performance.now): the tunnel's keep time is measured on it. */
  readonly monotonic?: () => number;
}

export interface ApplyResult {
  readonly changes: ReadonlyMap<ChangeKind, number>;
  readonly observed: ObservedOverlay;
  /** Apply again after this long (the tunnel kept through a switch to direct routing expires). */
  readonly againInMs?: number;
}

export const DEFAULT_TUNNEL_KEEP_MS = 10_000;

export class EndpointProgrammer {
  private readonly o: EndpointProgrammerOptions;
  /** The table listing right after our last apply; a different listing later is drift. */
  private appliedListing: string | undefined;
  private appliedRuleset: string | undefined;
  /** Our last replace's listing is still to be read (ensureFirewall). */
  private unlistedReplace = false;
  /** ifindex of the device whose offload and sysctl were last verified. */
  private settingsCheckedFor: number | undefined;
  private readonly reader: KernelReader;
  /** The tunneled plan last applied: kept applied for a while when the node switches to direct. */
  private lastTunneled: EndpointPlan | undefined;
  /** Until when (performance.now()) the tunnel is kept through the current switch to direct. */
  private tunnelKeptUntil: number | undefined;

  constructor(o: EndpointProgrammerOptions) {
    this.o = o;
    this.reader = readerOf(o);
  }

  async apply(plan: EndpointPlan, fullCheck: boolean): Promise<ApplyResult> {
    const result = await this.applyTunnel(plan, fullCheck);
    this.lastTunneled = plan;
    this.tunnelKeptUntil = undefined;
    return result;
  }

  private async applyTunnel(plan: EndpointPlan, fullCheck: boolean): Promise<ApplyResult> {
    const changes = new Map<ChangeKind, number>();
    const add = (k: ChangeKind, n = 1): void => {
      changes.set(k, (changes.get(k) ?? 0) + n);
    };
    // The boundary first: the VXLAN device never comes up (first start, reboot, a VNI or port
    // change) before the table that guards it is in place. If nft cannot apply it, fail closed:
    // the device is kept down and the pass fails with the reason (readiness says it).
    const ruleset = renderRuleset(plan.firewall);
    if (this.o.firewall && (fullCheck || ruleset !== this.appliedRuleset)) {
      try {
        if (await this.ensureFirewall(ruleset)) add('firewall');
      } catch (err) {
        this.appliedRuleset = undefined;
        this.unlistedReplace = false;
        const down = await this.o.ip.run('ip', ['link', 'set', 'dev', plan.overlay.vxlan.name, 'down']).then(() => true, () => false);
        throw new Error(`the firewall table could not be applied, so ${plan.overlay.vxlan.name} ${down ? 'was set down' : 'is not brought up'} (fail closed): ${errorMessage(err)}`, { cause: err });
      }
    }
    const { ops, observed } = await programOverlay(this.o.ip, plan.overlay, this.o.log, { owns: this.o.ownsDevice, reader: this.reader, writer: this.o.writer });
    for (const op of ops) add(changeKindOf(op));
    const dev = plan.overlay.vxlan.name;
    const index = observed.vxlan?.index;
    if (fullCheck || index !== this.settingsCheckedFor) {
      const host = this.o.host ?? LINUX_HOST;
      if (await host.ensureRpFilterLoose(dev)) add('sysctl');
      if (await host.ensureTxChecksum(dev, this.o.txChecksum)) add('offload');
      this.settingsCheckedFor = index;
    }
    return { changes, observed };
  }

  private async ensureFirewall(ruleset: string): Promise<boolean> {
    const listing = await this.o.nft.list();
    if (listing !== undefined && listing === this.appliedListing && ruleset === this.appliedRuleset) return false;
    // A table that holds exactly the rules we would write is kept (after a restart, where this
    // process has applied nothing yet: one `nft list`, no rewrite, no nft monitor event answered
    // by a second pass). Anything else is replaced in one atomic transaction, so no packet ever
    // sees the table missing or half-made.
    if (listing !== undefined && sameTable(ruleset, listing)) {
      this.appliedRuleset = ruleset;
      this.appliedListing = listing;
      this.unlistedReplace = false;
      return false;
    }
    // The listing after our own replace is not read at once (one nft process less before a new
    // node's device comes up): the next full check, which the replace's own nft monitor event
    // brings, finds it the same as the rules (sameTable). An nft that prints the table otherwise
    // than sameTable expects, or a change made in between, gets one more replace, and that one's
    // listing, read at once, is the reference from then on (a listing identical to the one
    // before it means nothing changed).
    const listNow = this.unlistedReplace && ruleset === this.appliedRuleset;
    await this.o.nft.replace(ruleset);
    this.appliedRuleset = ruleset;
    this.appliedListing = listNow ? await this.o.nft.list() : undefined;
    this.unlistedReplace = !listNow;
    if (listNow && listing !== undefined && this.appliedListing === listing) return false;
    this.o.log.info({ op: 'firewall', table: this.o.nft.table }, listing === undefined ? 'firewall table created' : 'firewall table replaced');
    return true;
  }

  /**
   * A node routed directly: none of the overlay. A VXLAN device of ours left from when the node
   * was tunneled is removed (the device already routes to it directly: the coordinator programs
   * the device before it tells the node), and the firewall table holds only the return path.
   */
  async applyDirect(plan: DirectPlan, fullCheck: boolean): Promise<ApplyResult> {
    const kept = await this.keepTunnel(plan, fullCheck);
    if (kept) return kept;
    const changes = new Map<ChangeKind, number>();
    const devices = await removeOverlay(this.o.ip, this.o.ownsDevice, this.reader);
    if (devices.length > 0) {
      changes.set('device', devices.length);
      this.o.log.info({ op: 'remove', devices, reason: 'this node is routed directly' }, 'overlay device removed');
    }
    // the return path only: one atomic replace of the whole table (the VXLAN guard goes with it)
    const ruleset = renderDirectRuleset(plan.firewall);
    if (this.o.firewall && (fullCheck || ruleset !== this.appliedRuleset)) {
      try {
        if (await this.ensureFirewall(ruleset)) changes.set('firewall', 1);
      } catch (err) {
        this.appliedRuleset = undefined;
        throw new Error(`the firewall table (return path of a directly routed node) could not be applied: ${errorMessage(err)}`, { cause: err });
      }
    }
    this.settingsCheckedFor = undefined;
    return { changes, observed: EMPTY_OBSERVED };
  }

  /**
   * Make-before-break for a switch from the tunnel to direct routing: the coordinator tells the
   * node and the device at once, and the device may take longer (an API round trip, a
   * transaction) to route directly. Until then it still sends through the tunnel, so the node
   * keeps the tunneled plan (device, FDB, routes, the VXLAN guard) for `tunnelKeepMs`, with the
   * direct path's return rules added to its firewall table so both paths work. Undefined when
   * there is nothing to keep (the node was not tunneled, or the time is up).
   */
  private async keepTunnel(plan: DirectPlan, fullCheck: boolean): Promise<ApplyResult | undefined> {
    const keepMs = this.o.tunnelKeepMs ?? DEFAULT_TUNNEL_KEEP_MS;
    const tunneled = this.lastTunneled;
    if (!tunneled || keepMs <= 0) return undefined;
    const now = (this.o.monotonic ?? performance.now.bind(performance))();
    if (this.tunnelKeptUntil === undefined) {
      this.tunnelKeptUntil = now + keepMs;
      this.o.log.info({ op: 'switch', path: 'direct', keepMs, dev: tunneled.overlay.vxlan.name }, 'this node is routed directly now: its tunnel is kept while the device switches');
    }
    if (now >= this.tunnelKeptUntil) {
      this.lastTunneled = undefined;
      this.tunnelKeptUntil = undefined;
      return undefined;
    }
    const both: EndpointPlan = { ...tunneled, firewall: { ...tunneled.firewall, directReturn: plan.firewall } };
    const result = await this.applyTunnel(both, fullCheck);
    return { ...result, againInMs: Math.min(keepMs, Math.ceil(this.tunnelKeptUntil - now)) };
  }

  /** Removes the overlay device(s) and the firewall table: everything the agent creates. */
  async cleanup(): Promise<{ devices: string[]; firewall: boolean }> {
    const devices = await removeOverlay(this.o.ip, this.o.ownsDevice, this.reader);
    const firewall = await this.o.nft.remove();
    return { devices, firewall };
  }
}
