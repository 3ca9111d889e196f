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
import { DONE, ReconcileLoop, retry, type PassOutcome } from '../shared/reconcile-loop.ts';
import type { Metrics } from '../shared/metrics.ts';
import { diffDevice, type DeviceDriver } from './drivers/driver.ts';
import type { CoordinatorPlan } from './plan.ts';

export interface DeviceReconcilerOptions {
  readonly driver: DeviceDriver;
  readonly log: Logger;
  readonly resyncMs: number;
  readonly metrics: Metrics;
  /** Records an Event on a Node. */
  readonly nodeEvent: (node: string) => EventRecorder;
  /** Only the leader may write to the device. */
  readonly canWrite: () => boolean;
}

export class DeviceReconciler {
  private readonly o: DeviceReconcilerOptions;
  readonly loop: ReconcileLoop;
  private plan: CoordinatorPlan | undefined;
  private readonly m;
  lastError: string | undefined;
  converged = false;

  constructor(o: DeviceReconcilerOptions) {
    this.o = o;
    this.loop = new ReconcileLoop({ name: 'device', pass: () => this.pass(), log: o.log, resyncMs: o.resyncMs, minRetryMs: 500, maxRetryMs: 60_000 });
    this.m = {
      calls: o.metrics.counter('chorus_coordinator_device_changes_total', 'Device changes applied, by operation and kind.'),
      errors: o.metrics.counter('chorus_coordinator_device_errors_total', 'Device changes or observations that failed, by kind.'),
      duration: o.metrics.gauge('chorus_coordinator_device_reconcile_seconds', 'Duration of the last device reconcile.'),
    };
  }

  start(): void {
    this.loop.start();
  }

  stop(): void {
    this.loop.stop();
  }

  /** A new plan: reconcile the device toward it. */
  update(plan: CoordinatorPlan): void {
    this.plan = plan;
    this.loop.trigger('plan');
  }

  private async pass(): Promise<PassOutcome> {
    const plan = this.plan;
    if (!plan || !this.o.canWrite() || plan.refused) return DONE;
    const started = performance.now();
    const { driver, log } = this.o;
    let observed;
    try {
      observed = await driver.observe();
    } catch (err) {
      this.m.errors({ kind: 'observe' });
      this.lastError = `observing the ${driver.type} device failed: ${err instanceof Error ? err.message : String(err)}`;
      this.converged = false;
      return retry(this.lastError);
    }
    const changes = diffDevice(driver.desired(plan), observed);
    if (changes.length === 0) {
      this.converged = true;
      this.lastError = undefined;
      this.m.duration((performance.now() - started) / 1000);
      return DONE;
    }
    if (!this.o.canWrite()) return DONE;
    const failures = await driver.apply(changes);
    for (const c of changes) this.m.calls({ op: c.op, kind: c.entry.kind });
    for (const f of failures) {
      this.m.errors({ kind: f.change.entry.kind });
      if (f.change.entry.node) this.o.nodeEvent(f.change.entry.node).warning('DeviceProgrammingFailed', `${f.change.op} ${f.change.entry.kind} ${f.change.entry.key} on the ${driver.type} device failed: ${f.reason}`);
    }
    log.info({ op: 'device', changes: changes.length, failed: failures.length, durationMs: Math.round(performance.now() - started) }, 'device reconciled');
    this.m.duration((performance.now() - started) / 1000);
    if (failures.length > 0) {
      this.converged = false;
      this.lastError = `${failures.length} of ${changes.length} device changes failed, first: ${failures[0]?.reason ?? ''}`;
      return retry(this.lastError);
    }
    this.converged = true;
    this.lastError = undefined;
    return DONE;
  }
}
