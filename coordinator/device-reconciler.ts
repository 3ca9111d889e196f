/**
 * The device reconcile loop: desired device state from the latest plan, observe what the device
 * holds of ours, apply only the difference. Failures retry with exponential backoff and jitter
 * (the loop's), a periodic resync repairs changes made by hand on the device, entries we own but
 * no longer want are removed (including those of nodes deleted while no coordinator ran), and
 * entries we do not own are never seen, so never touched. A failure for one node's entry becomes
 * an Event on that Node and does not block the others.
 */
import type { Logger } from '../shared/log.ts';
import type { EventRecorder } from '../shared/kube/events.ts';
import { DONE, ReconcileLoop, SKIPPED, retry, type PassOutcome } from '../shared/reconcile-loop.ts';
import type { Metrics } from '../shared/metrics.ts';
import { FencedWriteError } from './drivers/https-json.ts';
import { DeviceOwnershipError, desiredDelta, diffDevice, diffDeviceDelta, entryId, type DesiredDelta, type DeviceChange, type DeviceDriver, type DeviceEntry, type DeviceFailure } from './drivers/driver.ts';
import { planChanges, type CoordinatorPlan, type PlanChanges } from './plan.ts';
import type { DeviceStatusPublisher } from '../shared/kube/device-status.ts';
import { DEVICE_STATUS_CLUSTER_KEY, DEVICE_STATUS_SUMMARY_KEY } from '../shared/keys.ts';

export interface DeviceReconcilerOptions {
  readonly driver: DeviceDriver;
  readonly log: Logger;
  readonly resyncMs: number;
  readonly metrics: Metrics;
  /** Records an Event on a Node. */
  readonly nodeEvent: (node: string) => EventRecorder;
  /** Only the leader may write to the device. */
  readonly canWrite: () => boolean;
  /** Where to say which nodes are programmed on the device (for `chorus-kube-router status`). */
  readonly deviceStatus?: DeviceStatusPublisher;
  /** This cluster's identity, published beside the node states (the device-teardown Job reads it from there). */
  readonly clusterId?: string;
  /**
   * --routing auto without --direct-subnets: at each fresh observation the device is asked for the
   * subnets of these VTEPs; `changed` takes them and says whether the routing policy changed (the
   * coordinator then re-plans, publishes, and hands the device the new plan).
   */
  readonly underlaySubnets?: { readonly vteps: readonly string[]; readonly changed: (subnets: readonly string[]) => boolean };
}

export class DeviceReconciler {
  private readonly o: DeviceReconcilerOptions;
  readonly loop: ReconcileLoop;
  private plan: CoordinatorPlan | undefined;
  /**
   * What the device holds of ours, as last observed plus what we applied since. Event-driven
   * passes diff against it (no GETs, so a node join costs only its writes); the periodic resync,
   * a retry or the first pass observe the device afresh, which also catches changes by hand.
   */
  private known: Map<string, DeviceEntry> | undefined;
  /**
   * The desired state `known` was last brought to in full (a pass whose changes all applied), and
   * the `known` it holds for: the next event-driven pass diffs only what changed since
   * (desiredDelta, diffDeviceDelta). Any fresh observation or failure makes `known` a new map, and this is void.
   */
  private inSync: { known: Map<string, DeviceEntry>; plan: CoordinatorPlan; desired: Set<DeviceEntry> } | undefined;
  /** The peers last published as all programmed (a plan's list: the same list is the same nodes). */
  private published: CoordinatorPlan['peers'] | undefined;
  private readonly m;
  lastError: string | undefined;
  converged = false;
  /** The ownership conflict last reported on the Nodes (an Event per node only when it changes). */
  private reportedConflict: string | undefined;
  /** The last pass could not read or write the device at all (not: some entries failed). */
  private unreachable = false;
  /** Why the VTEP subnets could not be read, as last logged (logged again only when it changes; shown in /status). */
  subnetsError: string | undefined;

  constructor(o: DeviceReconcilerOptions) {
    this.o = o;
    // a device that cannot be reached is retried with backoff and jitter (0.5 s doubling to 30 s),
    // and node events meanwhile wait for the next retry instead of each calling the device
    this.loop = new ReconcileLoop({
      name: 'device', pass: (reasons) => this.pass(reasons), log: o.log, resyncMs: o.resyncMs, minRetryMs: 500, maxRetryMs: 30_000,
      holdWhileRetrying: () => this.unreachable,
    });
    this.m = {
      calls: o.metrics.counter('chorus_coordinator_device_changes_total', 'Device changes applied, by operation and kind.', { op: ['add', 'update', 'delete'], kind: [] }),
      errors: o.metrics.counter('chorus_coordinator_device_errors_total', 'Device changes or observations that failed, by kind (observe: reading what is ours; subnets: reading the VTEP subnets for --routing auto).', { kind: ['observe'] }),
      duration: o.metrics.gauge('chorus_coordinator_device_reconcile_seconds', 'Duration of the last device reconcile.'),
      passSeconds: o.metrics.histogram('chorus_coordinator_device_reconcile_duration_seconds', 'Duration of device reconcile passes that read or changed the device.'),
      converged: o.metrics.gauge('chorus_coordinator_device_converged', '1 when the last device pass left the device as the plan wants; 0 while it cannot be read or changes fail (alert only where chorus_coordinator_leader is 1).'),
      observes: o.metrics.counter('chorus_coordinator_device_observes_total', 'Full reads of what the device holds of ours (first pass, resync, retry).'),
    };
  }

  start(): void {
    this.loop.start();
  }

  stop(): void {
    this.loop.stop();
  }

  private setConverged(v: boolean): void {
    this.converged = v;
    this.m.converged(v ? 1 : 0);
  }

  /**
   * This replica has just become the leader: what it knew of the device may be stale (another
   * leader wrote meanwhile), so its first pass observes the device before diffing.
   */
  forget(): void {
    this.known = undefined;
    this.published = undefined;
  }

  /** A new plan: reconcile the device toward it. */
  update(plan: CoordinatorPlan): void {
    this.plan = plan;
    this.loop.trigger('plan');
  }

  /**
   * Every node of the plan is programmed, but those with a failed change. The Linux device
   * programs itself (its gateway publishes its own node states): only the type is said here.
   */
  private publish(plan: CoordinatorPlan, failures: readonly DeviceFailure[]): void {
    const out = this.o.deviceStatus;
    if (!out) return;
    // the same nodes, all programmed, as last published: nothing to say again
    if (failures.length === 0 && this.published === plan.peers) return;
    this.published = failures.length === 0 ? plan.peers : undefined;
    const data: Record<string, string> = { [DEVICE_STATUS_SUMMARY_KEY]: this.o.driver.type, ...(this.o.clusterId !== undefined ? { [DEVICE_STATUS_CLUSTER_KEY]: this.o.clusterId } : {}) };
    if (this.o.driver.type !== 'linux') {
      const failed = new Map(failures.flatMap((f) => (f.change.entry.node ? [[f.change.entry.node, f.reason] as const] : [])));
      for (const p of plan.peers) data[p.node] = failed.has(p.node) ? `failed: ${failed.get(p.node) ?? ''}` : 'programmed';
    }
    out.publish(data);
  }

  /** Whether this pass reads the device afresh (first pass, resync, retry) instead of trusting `known`. */
  private observing(reasons: ReadonlySet<string>): boolean {
    return !this.known || reasons.has('timer') || reasons.has('retry') || reasons.has('start');
  }

  /**
   * Reads the VTEP subnets (--routing auto from the device) and reports whether the routing policy
   * changed. A failure is logged (once per distinct reason) and counted; the policy stays as it was.
   */
  async readUnderlaySubnets(): Promise<boolean> {
    const want = this.o.underlaySubnets;
    const { driver, log } = this.o;
    if (!want || !driver.underlaySubnets) return false;
    try {
      const subnets = await driver.underlaySubnets(want.vteps);
      this.subnetsError = undefined;
      return want.changed(subnets);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.m.errors({ kind: 'subnets' });
      if (reason !== this.subnetsError) log.warn({ op: 'device', vteps: want.vteps, err: reason }, 'cannot read the subnets of the device VTEPs (--routing auto): nodes keep the path their Node records, new nodes are tunneled; retried at every resync');
      this.subnetsError = reason;
      return false;
    }
  }

  /** What the device holds of ours: observed afresh when due, else as we last knew it. */
  private async knownState(reasons: ReadonlySet<string>): Promise<Map<string, DeviceEntry> | undefined> {
    if (!this.observing(reasons) && this.known) return this.known;
    try {
      this.known = new Map((await this.o.driver.observe()).map((e) => [entryId(e), e]));
      this.m.observes();
      this.reportedConflict = undefined;
      return this.known;
    } catch (err) {
      this.known = undefined;
      this.m.errors({ kind: 'observe' });
      this.setConverged(false);
      if (err instanceof DeviceOwnershipError) {
        this.lastError = `the ${this.o.driver.type} device refuses this cluster: ${err.message}`;
        this.reportConflict(err.message);
        return undefined;
      }
      this.lastError = `observing the ${this.o.driver.type} device failed: ${err instanceof Error ? err.message : String(err)}`;
      return undefined;
    }
  }

  /**
   * Another cluster owns what this one would program: every node is reported failed with the
   * reason (status ConfigMap, and one Warning Event per Node each time the reason changes); the
   * loop keeps retrying with backoff and goes on once the other cluster's claim is gone.
   */
  private reportConflict(reason: string): void {
    const plan = this.plan;
    if (!plan) return;
    const failures: DeviceFailure[] = plan.peers.map((p) => ({ change: { op: 'add', entry: { kind: 'node', key: p.node, fields: {}, node: p.node } }, reason }));
    this.publish(plan, failures);
    if (this.reportedConflict === reason) return;
    this.reportedConflict = reason;
    this.o.log.error({ op: 'device', reason }, 'the device holds objects of this configuration that belong to another cluster; nothing is written');
    for (const p of plan.peers) this.o.nodeEvent(p.node).warning('DeviceOwnedByAnotherCluster', reason);
  }

  private fenced(changes: number): PassOutcome {
    this.known = undefined;
    this.setConverged(false);
    this.o.log.warn({ op: 'device', changes }, 'lost the lease during a device apply: stopped writing; the new leader reads the device afresh');
    return SKIPPED;
  }

  /** The driver threw (no answer, 5xx, a failover): nothing it says can be trusted as applied. */
  private applyFailed(err: unknown, changes: number): PassOutcome {
    this.known = undefined; // partly applied: look again before the next diff
    if (err instanceof FencedWriteError) return this.fenced(changes);
    this.unreachable = true;
    this.setConverged(false);
    this.lastError = `applying ${changes} changes to the ${this.o.driver.type} device failed: ${err instanceof Error ? err.message : String(err)}`;
    throw err;
  }

  /**
   * What to change: from the peers that joined and left since the plan the device last matched
   * (a plan planned node by node says which), else from every entry that changed since then, else
   * a full diff; with the delta of the entries when there is one.
   */
  private changesFor(plan: CoordinatorPlan, desired: () => readonly DeviceEntry[], known: Map<string, DeviceEntry>): { changes: DeviceChange[]; delta: DesiredDelta | undefined } {
    if (this.inSync?.known !== known) return { changes: diffDevice(desired(), [...known.values()]), delta: undefined };
    const delta = this.deltaOfPeers(plan, this.inSync.plan) ?? desiredDelta(this.inSync.desired, desired());
    return { changes: diffDeviceDelta(delta, known), delta };
  }

  /**
   * The entries of the peers that left and joined between `matched` and `plan`, when `plan` was
   * planned node by node from it (through plans the loop did not see, at most MAX_CHANGE_CHAIN): undefined
   * otherwise, or when the driver cannot give one peer's entries.
   */
  private deltaOfPeers(plan: CoordinatorPlan, matched: CoordinatorPlan): DesiredDelta | undefined {
    const { driver } = this.o;
    if (!driver.peerEntries) return undefined;
    const steps: PlanChanges[] = [];
    for (let p = plan; p !== matched; ) {
      const c = planChanges(p);
      if (!c) return undefined;
      steps.unshift(c);
      p = c.base;
    }
    // +1 joined, -1 left, netted over the steps (a peer object may leave and come back)
    const count = new Map<DeviceEntry, number>();
    for (const step of steps) {
      for (const peer of step.left) for (const e of driver.peerEntries(step.base, peer)) count.set(e, (count.get(e) ?? 0) - 1);
      for (const peer of step.joined) for (const e of driver.peerEntries(step.base, peer)) count.set(e, (count.get(e) ?? 0) + 1);
    }
    const added: DeviceEntry[] = [];
    const removed: DeviceEntry[] = [];
    for (const [e, n] of count) {
      if (n > 0) added.push(e);
      else if (n < 0) removed.push(e);
    }
    return { added, removed };
  }

  /** The device now matches `plan`: the next pass diffs from it (the last such set, moved by the delta when there is one). */
  private matched(known: Map<string, DeviceEntry>, plan: CoordinatorPlan, desired: () => readonly DeviceEntry[], delta: DesiredDelta | undefined): void {
    const last = this.inSync?.known === known ? this.inSync.desired : undefined;
    if (last && delta) {
      for (const e of delta.removed) last.delete(e);
      for (const e of delta.added) last.add(e);
      this.inSync = { known, plan, desired: last };
    } else {
      this.inSync = { known, plan, desired: new Set(desired()) };
    }
  }

  /** What an apply changed: into `known` (what applied), metrics, and an Event per failed node. */
  private recordApplied(changes: readonly DeviceChange[], failures: readonly DeviceFailure[], known: Map<string, DeviceEntry>, plan: CoordinatorPlan, desired: () => readonly DeviceEntry[], delta: DesiredDelta | undefined): void {
    const failed = new Set(failures.map((f) => f.change));
    for (const c of changes) {
      if (failed.has(c)) continue;
      if (c.op === 'delete') known.delete(entryId(c.entry));
      else known.set(entryId(c.entry), c.entry);
    }
    if (failures.length > 0) this.known = undefined;
    else this.matched(known, plan, desired, delta);
    for (const c of changes) this.m.calls({ op: c.op, kind: c.entry.kind });
    for (const f of failures) {
      this.m.errors({ kind: f.change.entry.kind });
      if (f.change.entry.node) this.o.nodeEvent(f.change.entry.node).warning('DeviceProgrammingFailed', `${f.change.op} ${f.change.entry.kind} ${f.change.entry.key} on the ${this.o.driver.type} device failed: ${f.reason}`);
    }
  }

  private async pass(reasons: ReadonlySet<string>): Promise<PassOutcome> {
    const plan = this.plan;
    if (!this.o.canWrite()) {
      this.known = undefined; // whoever leads meanwhile may change the device: observe it when we lead again
      return SKIPPED;
    }
    if (!plan) return DONE;
    const started = performance.now();
    const { driver, log } = this.o;
    const fresh = this.observing(reasons);
    const known = await this.knownState(reasons);
    this.unreachable = !known;
    if (!known) return retry(this.lastError ?? 'observing the device failed');
    // other direct subnets: the coordinator re-plans and publishes first (the agents must see a
    // node's new path before the device takes it), then hands this loop the new plan
    if (fresh && (await this.readUnderlaySubnets())) return DONE;
    let all: readonly DeviceEntry[] | undefined;
    const desired = (): readonly DeviceEntry[] => (all ??= driver.desired(plan));
    const { changes, delta } = this.changesFor(plan, desired, known);
    if (changes.length === 0) {
      this.matched(known, plan, desired, delta);
      this.setConverged(true);
      this.lastError = undefined;
      this.publish(plan, []);
      this.m.duration((performance.now() - started) / 1000);
      return DONE;
    }
    if (!this.o.canWrite()) return SKIPPED;
    let failures;
    try {
      failures = await driver.apply(changes, desired);
    } catch (err) {
      return this.applyFailed(err, changes.length);
    }
    // lost the Lease during the apply: what failed may be fenced writes, and Events and the
    // status ConfigMap are writes too; the new leader observes the device and reports
    if (!this.o.canWrite()) return this.fenced(changes.length);
    this.recordApplied(changes, failures, known, plan, desired, delta);
    log.info({ op: 'device', changes: changes.length, failed: failures.length, durationMs: Math.round(performance.now() - started) }, 'device reconciled');
    this.publish(plan, failures);
    this.m.duration((performance.now() - started) / 1000);
    this.m.passSeconds((performance.now() - started) / 1000);
    if (failures.length > 0) {
      this.setConverged(false);
      this.lastError = `${failures.length} of ${changes.length} device changes failed, first: ${failures[0]?.reason ?? ''}`;
      return retry(this.lastError);
    }
    this.setConverged(true);
    this.lastError = undefined;
    return DONE;
  }
}
