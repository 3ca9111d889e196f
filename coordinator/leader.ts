/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics: a candidate
 * takes the lease only when the holder has not renewed it for leaseDuration (measured on our own
 * clock from when we last saw the record change, so clock skew between replicas does not matter);
 * the leader renews every retryPeriod, and every write is fenced: canWrite() turns false as soon
 * as renewDeadline has passed without a successful renew, well before the lease can expire and
 * another replica can take over. release() hands the lease over at once on shutdown.
 *
 * Fencing holds when the process is frozen or the clock jumps: deadlines are measured on the
 * monotonic clock (a wall-clock step neither extends nor shortens them), a renew counts from when
 * its request was sent (an answer that arrives after a long freeze does not make a stale lease
 * look fresh), and each Lease call has a deadline of its own. A leader whose own work is stuck
 * (`healthy` says why) stops renewing and steps down, so a standby takes over instead of a
 * leader that holds the Lease and does nothing.
 */
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { isConflict, isNotFound, errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/log.ts';
import { sleep } from '../shared/backoff.ts';

export interface LeaderOptions {
  readonly api: CoordinationV1Api;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly log: Logger;
  readonly onStartedLeading: () => void;
  readonly onStoppedLeading: () => void;
  /**
   * Writes were fenced (the renew deadline passed) and a later renew succeeded while the Lease
   * still named us: still the leader, writing again. Work skipped while fenced must run now;
   * onStartedLeading is not called (nobody else led meanwhile).
   */
  readonly onResumedWriting?: () => void;
  /** Why this replica should not lead now (its reconcile is stuck), or undefined when it may. */
  readonly healthy?: () => string | undefined;
  /** Monotonic milliseconds (default performance.now): every deadline is measured on it. */
  readonly monotonic?: () => number;
  /** Wall clock for the Lease's acquire and renew times (default: now). */
  readonly wallClock?: () => Date;
}

/** A Lease call that took longer than it may: its answer, whenever it comes, is not used. */
class LeaseCallTimeout extends Error {}

function withDeadline<T>(call: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LeaseCallTimeout(`${what}: no answer within ${Math.round(ms)} ms`)), ms);
  });
  return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
}

export class LeaderElector {
  private readonly o: LeaderOptions;
  private readonly now: () => number;
  private readonly wall: () => Date;
  private leading = false;
  private lastRenew = 0;
  private observedHolder = '';
  private observedRv = '';
  private observedAt = 0;
  /** A round saw us leading past the renew deadline (fenced) and no renew has lifted it yet. */
  private fenced = false;
  private readonly abort = new AbortController();
  private loopDone: Promise<void> | undefined;
  holder = '';

  constructor(o: LeaderOptions) {
    if (o.renewDeadlineMs >= o.leaseDurationMs) throw new Error(`leader election: renew deadline (${o.renewDeadlineMs} ms) must be shorter than the lease duration (${o.leaseDurationMs} ms)`);
    if (o.retryPeriodMs >= o.renewDeadlineMs) throw new Error(`leader election: retry period (${o.retryPeriodMs} ms) must be shorter than the renew deadline (${o.renewDeadlineMs} ms)`);
    this.o = o;
    this.now = o.monotonic ?? (() => performance.now());
    this.wall = o.wallClock ?? (() => new Date());
  }

  /** Whether this replica believes it leads (it may still not write: see canWrite). */
  get isLeading(): boolean {
    return this.leading;
  }

  /** True only while we lead and our last renew is within the renew deadline. */
  canWrite(): boolean {
    return this.leading && this.now() - this.lastRenew < this.o.renewDeadlineMs;
  }

  start(): void {
    this.loopDone = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.abort.signal.aborted) {
      await this.round();
      await sleep(this.o.retryPeriodMs, this.abort.signal);
    }
  }

  /** One acquire-or-renew attempt (exposed for tests with a fake clock). */
  async round(): Promise<void> {
    const unhealthy = this.o.healthy?.();
    if (unhealthy !== undefined) {
      // neither renew nor acquire: the Lease runs out and a healthy standby takes it
      if (this.leading) this.stepDown(`not renewing the lease: ${unhealthy}`);
      return;
    }
    const sentAt = this.now();
    // a call that outlives what is left of the renew deadline cannot keep us leading anyway
    const budget = this.leading ? Math.max(this.o.renewDeadlineMs - (sentAt - this.lastRenew), this.o.retryPeriodMs) : this.o.renewDeadlineMs;
    const ok = await withDeadline(this.tryAcquireOrRenew(), budget, `lease ${this.o.name}`).catch((err: unknown) => {
      this.o.log.warn({ err: errorMessage(err), lease: this.o.name }, 'lease update failed');
      return false;
    });
    if (this.abort.signal.aborted) return;
    if (ok) {
      // the deadline passed before this renew came back: passes meanwhile were refused writes
      if (this.leading && !this.canWrite()) this.fenced = true;
      this.lastRenew = sentAt;
      if (!this.leading) {
        this.leading = true;
        this.fenced = false;
        this.o.log.info({ identity: this.o.identity, lease: this.o.name }, 'became leader');
        this.o.onStartedLeading();
      } else if (this.fenced && this.canWrite()) {
        this.fenced = false;
        this.o.log.info({ identity: this.o.identity, lease: this.o.name }, 'renewed the lease after the renew deadline: writing again');
        this.o.onResumedWriting?.();
      }
    } else if (this.leading && !this.canWrite()) {
      this.stepDown('could not renew the lease within the renew deadline');
    }
  }

  private stepDown(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.o.log.warn({ identity: this.o.identity, reason }, 'stopped leading');
    this.o.onStoppedLeading();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity, leaseDurationMs } = this.o;
    const nowDate = this.wall();
    let lease: V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await api.createNamespacedLease({
        namespace,
        body: { metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000), acquireTime: nowDate, renewTime: nowDate, leaseTransitions: 0 } },
      }).catch((e: unknown) => {
        if (isConflict(e)) return undefined;
        throw e;
      });
      return this.verifyHeld();
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    this.holder = holder;
    const rv = lease.metadata?.resourceVersion ?? '';
    if (holder !== this.observedHolder || rv !== this.observedRv) {
      this.observedHolder = holder;
      this.observedRv = rv;
      this.observedAt = this.now();
    }
    const durationMs = (spec.leaseDurationSeconds ?? Math.ceil(leaseDurationMs / 1000)) * 1000;
    if (holder !== '' && holder !== identity && this.now() < this.observedAt + durationMs) return false;
    const taking = holder !== identity;
    const body: V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
        renewTime: nowDate,
        ...(taking ? { acquireTime: nowDate, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
      },
    };
    try {
      const updated = await api.replaceNamespacedLease({ name, namespace, body });
      this.observedRv = updated.metadata?.resourceVersion ?? '';
      this.observedHolder = identity;
      this.observedAt = this.now();
      this.holder = identity;
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  private async verifyHeld(): Promise<boolean> {
    const lease = await this.o.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
    this.holder = lease.spec?.holderIdentity ?? '';
    this.observedHolder = this.holder;
    this.observedRv = lease.metadata?.resourceVersion ?? '';
    this.observedAt = this.now();
    return this.holder === this.o.identity;
  }

  /**
   * Stops the loop and, if the Lease still names us, gives it up so a standby takes over at once
   * (also when we had already stopped writing because a renew came too late).
   */
  async release(): Promise<void> {
    this.abort.abort();
    await this.loopDone;
    this.stepDown('shutting down');
    if (this.holder !== this.o.identity) return;
    const { api, namespace, name, identity } = this.o;
    try {
      const lease = await api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      await api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: this.wall() } } });
      this.o.log.info({ identity, lease: name }, 'released the lease');
    } catch (err) {
      this.o.log.warn({ err: errorMessage(err), lease: name }, 'could not release the lease; a standby takes over when it expires');
    }
  }
}
