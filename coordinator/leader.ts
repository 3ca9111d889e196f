/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics: a candidate
 * takes the lease only when the holder has not renewed it for leaseDuration (measured on our own
 * clock from when we last saw the record change, so clock skew between replicas does not matter);
 * the leader renews every retryPeriod, and every write is fenced: canWrite() turns false as soon
 * as renewDeadline has passed without a successful renew, well before the lease can expire and
 * another replica can take over. release() hands the lease over at once on shutdown.
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
  readonly now?: () => number;
}

export class LeaderElector {
  private readonly o: LeaderOptions;
  private readonly now: () => number;
  private leading = false;
  private lastRenew = 0;
  private observedHolder = '';
  private observedRv = '';
  private observedAt = 0;
  private readonly abort = new AbortController();
  private loopDone: Promise<void> | undefined;
  holder = '';

  constructor(o: LeaderOptions) {
    if (o.renewDeadlineMs >= o.leaseDurationMs) throw new Error(`leader election: renew deadline (${o.renewDeadlineMs} ms) must be shorter than the lease duration (${o.leaseDurationMs} ms)`);
    if (o.retryPeriodMs >= o.renewDeadlineMs) throw new Error(`leader election: retry period (${o.retryPeriodMs} ms) must be shorter than the renew deadline (${o.renewDeadlineMs} ms)`);
    this.o = o;
    this.now = o.now ?? Date.now;
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
      const ok = await this.tryAcquireOrRenew().catch((err: unknown) => {
        this.o.log.warn({ err: errorMessage(err), lease: this.o.name }, 'lease update failed');
        return false;
      });
      if (this.abort.signal.aborted) break;
      if (ok) {
        this.lastRenew = this.now();
        if (!this.leading) {
          this.leading = true;
          this.o.log.info({ identity: this.o.identity, lease: this.o.name }, 'became leader');
          this.o.onStartedLeading();
        }
      } else if (this.leading && !this.canWrite()) {
        this.stepDown('could not renew the lease within the renew deadline');
      }
      await sleep(this.o.retryPeriodMs, this.abort.signal);
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
    const nowDate = new Date(this.now());
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
      await api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: new Date(this.now()) } } });
      this.o.log.info({ identity, lease: name }, 'released the lease');
    } catch (err) {
      this.o.log.warn({ err: errorMessage(err), lease: name }, 'could not release the lease; a standby takes over when it expires');
    }
  }
}
