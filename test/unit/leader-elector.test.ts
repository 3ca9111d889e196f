// LeaderElector against a fake Lease API and fake clocks (issue 13, "fencing that holds"): when
// a leader may write is decided on the monotonic clock only, a renew counts from when it was sent,
// a Lease call that hangs ends at the renew deadline, and a leader whose own work is stuck stops
// renewing. Each round is driven by hand (round()), so no test depends on real time but one
// (the hanging call, bounded by its deadline of 60 ms).
import { describe, expect, it } from 'vitest';
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { LeaderElector } from '../../coordinator/leader.ts';
import { createLogger } from '../../shared/log.ts';
import { Writable } from 'node:stream';

const log = createLogger({ component: 'test', level: 'error', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

class ApiError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/** One Lease, stored with a resourceVersion that every write bumps; a stale replace is a 409. */
class FakeLeaseApi {
  lease: V1Lease | undefined;
  private rv = 0;
  /** Runs inside every call, before it is answered (a frozen process, a slow server). */
  during: (() => Promise<void> | void) | undefined;
  /** When set, every call throws this (the API server unreachable). */
  down: Error | undefined;
  writes = 0;

  private async gate(): Promise<void> {
    await this.during?.();
    if (this.down) throw this.down;
  }

  async readNamespacedLease(): Promise<V1Lease> {
    await this.gate();
    if (!this.lease) throw new ApiError(404, 'leases "x" not found');
    return structuredClone(this.lease);
  }

  async createNamespacedLease(p: { body: V1Lease }): Promise<V1Lease> {
    await this.gate();
    if (this.lease) throw new ApiError(409, 'already exists');
    this.writes++;
    this.lease = { ...structuredClone(p.body), metadata: { ...p.body.metadata, resourceVersion: String(++this.rv) } };
    return structuredClone(this.lease);
  }

  async replaceNamespacedLease(p: { body: V1Lease }): Promise<V1Lease> {
    await this.gate();
    if (p.body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) throw new ApiError(409, 'the object has been modified');
    this.writes++;
    this.lease = { ...structuredClone(p.body), metadata: { ...p.body.metadata, resourceVersion: String(++this.rv) } };
    return structuredClone(this.lease);
  }

  /** Another replica's renew: a new resourceVersion, the same holder. */
  renewBy(holder: string): void {
    this.lease = { metadata: { name: 'l', namespace: 'ns', resourceVersion: String(++this.rv) }, spec: { holderIdentity: holder, leaseDurationSeconds: 3 } };
  }
}

interface Clocks { mono: number; wall: number }

function elector(api: FakeLeaseApi, clocks: Clocks, identity: string, extra: { healthy?: () => string | undefined; renewDeadlineMs?: number; leaseDurationMs?: number; retryPeriodMs?: number } = {}): { e: LeaderElector; started: () => number; stopped: () => number; resumed: () => number } {
  let started = 0;
  let stopped = 0;
  let resumed = 0;
  const e = new LeaderElector({
    api: api as unknown as CoordinationV1Api, namespace: 'ns', name: 'l', identity,
    leaseDurationMs: extra.leaseDurationMs ?? 3_000, renewDeadlineMs: extra.renewDeadlineMs ?? 2_000, retryPeriodMs: extra.retryPeriodMs ?? 250, log,
    onStartedLeading: () => started++, onStoppedLeading: () => stopped++, onResumedWriting: () => resumed++,
    monotonic: () => clocks.mono, wallClock: () => new Date(clocks.wall),
    ...(extra.healthy ? { healthy: extra.healthy } : {}),
  });
  return { e, started: () => started, stopped: () => stopped, resumed: () => resumed };
}

describe('LeaderElector (fake clock, fake Lease API)', () => {
  it('creates the Lease and leads; may write until renewDeadline after its last renew, not a millisecond longer', async () => {
    const api = new FakeLeaseApi();
    const clocks = { mono: 1_000, wall: Date.UTC(2026, 0, 1) };
    const { e, started, stopped } = elector(api, clocks, 'a');
    await e.round();
    expect(api.lease?.spec?.holderIdentity).toBe('a');
    expect(e.canWrite()).toBe(true);
    expect(started()).toBe(1);
    api.down = new Error('connection refused');
    clocks.mono += 1_999;
    await e.round();
    expect(e.canWrite()).toBe(true);
    clocks.mono += 1;
    expect(e.canWrite()).toBe(false);
    await e.round();
    expect(stopped()).toBe(1);
    expect(e.isLeading).toBe(false);
  });

  it('a wall-clock step (either way) neither extends nor shortens the fence, nor lets a standby take over early', async () => {
    const api = new FakeLeaseApi();
    const clocks = { mono: 0, wall: Date.UTC(2026, 0, 1) };
    const a = elector(api, clocks, 'a');
    const b = elector(api, clocks, 'b');
    await a.e.round();
    await b.e.round();
    expect(b.e.canWrite()).toBe(false);
    api.down = new Error('API unreachable for a');
    clocks.wall += 3_600_000; // NTP steps the clock an hour ahead
    clocks.mono += 1_000;
    expect(a.e.canWrite()).toBe(true);
    clocks.wall -= 7_200_000; // and two hours back
    clocks.mono += 1_000;
    expect(a.e.canWrite()).toBe(false); // 2 s on the monotonic clock, whatever the wall clock says
    api.down = undefined;
    // b measures the lease's age on its own monotonic clock from when it saw the record change
    clocks.mono += 999; // 2,999 ms after b saw a's record
    await b.e.round();
    expect(b.e.isLeading).toBe(false);
    clocks.mono += 1;
    await b.e.round();
    expect(b.e.isLeading).toBe(true);
    expect(api.lease?.spec?.holderIdentity).toBe('b');
    expect(api.lease?.spec?.leaseTransitions).toBe(1);
  });

  it('a renew answered after a freeze counts from when it was sent: the frozen leader may not write', async () => {
    const api = new FakeLeaseApi();
    const clocks = { mono: 0, wall: Date.UTC(2026, 0, 1) };
    const { e } = elector(api, clocks, 'a');
    await e.round();
    // the process is frozen (SIGSTOP) between sending the renew and reading its answer
    api.during = () => {
      clocks.mono += 2_500;
    };
    await e.round();
    expect(api.lease?.spec?.holderIdentity).toBe('a'); // the server took the renew...
    expect(e.canWrite()).toBe(false); // ...but it was sent 2.5 s ago: past the renew deadline
    api.during = undefined;
    await e.round();
    expect(e.canWrite()).toBe(true);
  });

  it('says when a late renew lifts the fence while still the holder, once, so work skipped meanwhile runs', async () => {
    const api = new FakeLeaseApi();
    const clocks = { mono: 0, wall: Date.UTC(2026, 0, 1) };
    const { e, started, stopped, resumed } = elector(api, clocks, 'a');
    await e.round();
    await e.round(); // an on-time renew says nothing
    expect(resumed()).toBe(0);
    // the event loop was blocked past the renew deadline: writes are fenced, a pass is skipped
    clocks.mono += 2_100;
    expect(e.canWrite()).toBe(false);
    await e.round(); // the renew succeeds: still the holder, writing again
    expect(e.canWrite()).toBe(true);
    expect(resumed()).toBe(1);
    expect(started()).toBe(1);
    expect(stopped()).toBe(0);
    await e.round();
    expect(resumed()).toBe(1);
    // a renew that comes back late (frozen mid-call) fences without lifting: said at the renew that lifts it
    api.during = () => {
      clocks.mono += 2_500;
    };
    await e.round();
    expect(e.canWrite()).toBe(false);
    expect(resumed()).toBe(1);
    api.during = undefined;
    await e.round();
    expect(e.canWrite()).toBe(true);
    expect(resumed()).toBe(2);
  });

  it('a leader that lost the Lease while frozen steps down on its first round after thawing', async () => {
    const api = new FakeLeaseApi();
    const clocks = { mono: 0, wall: Date.UTC(2026, 0, 1) };
    const a = elector(api, clocks, 'a');
    await a.e.round();
    clocks.mono += 10_000; // frozen; meanwhile b took the Lease
    api.renewBy('b');
    expect(a.e.canWrite()).toBe(false);
    const writes = api.writes;
    await a.e.round();
    expect(a.stopped()).toBe(1);
    expect(api.lease?.spec?.holderIdentity).toBe('b');
    expect(api.writes).toBe(writes); // it did not fight for it
  });

  it('a Lease call that never answers ends at the renew deadline, and the leader steps down', async () => {
    const api = new FakeLeaseApi();
    const clocks = { mono: 0, wall: Date.UTC(2026, 0, 1) };
    const { e, stopped } = elector(api, clocks, 'a', { leaseDurationMs: 120, renewDeadlineMs: 60, retryPeriodMs: 20 });
    await e.round();
    api.during = () => new Promise(() => undefined); // hangs forever
    const t0 = performance.now();
    clocks.mono += 70; // the deadline is what is left of renewDeadline, at least one retry period (20 ms)
    await e.round();
    const took = performance.now() - t0;
    expect(took).toBeLessThan(5_000); // bounded: without a deadline this round would never end
    expect(e.canWrite()).toBe(false);
    expect(stopped()).toBe(1);
  });

  it('stops renewing while its own work is stuck, and does not take the Lease back until it is not', async () => {
    const api = new FakeLeaseApi();
    const clocks = { mono: 0, wall: Date.UTC(2026, 0, 1) };
    let stuck: string | undefined;
    const { e, stopped } = elector(api, clocks, 'a', { healthy: () => stuck });
    await e.round();
    const writes = api.writes;
    stuck = 'the device reconcile pass has run for 400 s';
    clocks.mono += 250;
    await e.round();
    expect(stopped()).toBe(1);
    expect(e.canWrite()).toBe(false);
    clocks.mono += 10_000; // the Lease has expired: a stuck replica still does not take it
    await e.round();
    expect(api.writes).toBe(writes);
    stuck = undefined;
    await e.round();
    expect(e.canWrite()).toBe(true);
  });
});
