/**
 * A single-writer reconcile loop: triggers coalesce (ten events while a pass runs cause one more
 * pass, not ten), passes never overlap, a failed pass is retried with bounded backoff, and a slow
 * periodic resync is the backstop for anything missed. Event handlers only call trigger().
 */
import { exponentialBackoff } from './backoff.ts';
import { errorMessage } from './errors.ts';
import type { Logger } from './log.ts';

export type PassOutcome = { readonly kind: 'done' } | { readonly kind: 'retry'; readonly reason: string } | { readonly kind: 'skipped' };

export const DONE: PassOutcome = { kind: 'done' };
/**
 * The pass had nothing it could succeed or fail at (a replica that does not lead): neither a
 * retry nor a success, so a backoff in force is kept (a leader that loses and regains its Lease
 * while the device is down goes on from the delay it had reached, instead of starting again at
 * the shortest one).
 */
export const SKIPPED: PassOutcome = { kind: 'skipped' };
export function retry(reason: string): PassOutcome {
  return { kind: 'retry', reason };
}

export interface LoopOptions {
  readonly name: string;
  /** One pass; `reasons` are the triggers merged into it ('start', 'timer', 'retry', or the caller's). */
  readonly pass: (reasons: ReadonlySet<string>) => Promise<PassOutcome>;
  readonly log: Logger;
  readonly resyncMs: number;
  readonly minRetryMs?: number;
  readonly maxRetryMs?: number;
  /**
   * Asked when an event arrives while a failed pass waits for its retry: true holds the event for
   * that retry (which then runs with every reason held) instead of running a pass at once, so a
   * dependency that is down is not called once per event. The device loop holds while the
   * device is unreachable; a failure of one entry does not hold others' changes back.
   */
  readonly holdWhileRetrying?: () => boolean;
}

export class ReconcileLoop {
  private running = false;
  private pending = false;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private readonly backoff;
  private readonly opts: LoopOptions;
  readonly name: string;
  private idleWaiters: (() => void)[] = [];
  passes = 0;
  failures = 0;
  /** When the pass in progress started (monotonic ms), or undefined between passes. */
  private passStarted: number | undefined;
  /** A failed pass's retry is scheduled and has not run yet. */
  private retryScheduled = false;

  constructor(opts: LoopOptions) {
    this.opts = opts;
    this.name = opts.name;
    this.backoff = exponentialBackoff(opts.minRetryMs ?? 200, opts.maxRetryMs ?? 30_000);
  }

  start(): void {
    this.stopped = false;
    this.trigger('start');
  }

  stop(): void {
    this.stopped = true;
    this.pending = false;
    if (this.timer) clearTimeout(this.timer);
    if (!this.running) this.wakeIdle();
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private reasons = new Set<string>();

  trigger(reason: string): void {
    if (this.stopped) return;
    this.reasons.add(reason);
    if (this.retryScheduled && !this.running && reason !== 'retry' && reason !== 'timer' && this.opts.holdWhileRetrying?.() === true) return;
    this.pending = true;
    if (!this.running) void this.run();
  }

  /**
   * How long the pass in progress has run (0 between passes): every call a pass makes has a
   * deadline, so a pass that runs far longer is wedged (liveness and leadership read this).
   */
  runningForMs(now = performance.now()): number {
    return this.passStarted === undefined ? 0 : now - this.passStarted;
  }

  /** Resolves when no pass is running or pending (for tests and orderly shutdown). */
  idle(): Promise<void> {
    if (!this.running && (!this.pending || this.stopped)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(ms: number, retrying: boolean): void {
    if (this.timer) clearTimeout(this.timer);
    this.retryScheduled = retrying;
    this.timer = setTimeout(() => this.trigger(retrying ? 'retry' : 'timer'), ms);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    this.running = true;
    let nextDelay = this.opts.resyncMs;
    let retrying = false;
    this.retryScheduled = false;
    while (this.pending && !this.stopped) {
      this.pending = false;
      const reasons = this.reasons;
      this.reasons = new Set();
      this.passes++;
      let outcome: PassOutcome;
      const started = performance.now();
      this.passStarted = started;
      try {
        outcome = await this.opts.pass(reasons);
      } catch (err) {
        outcome = retry(errorMessage(err));
      } finally {
        this.passStarted = undefined;
      }
      if (outcome.kind === 'retry') {
        this.failures++;
        nextDelay = this.backoff.next();
        retrying = true;
        this.opts.log.warn({ loop: this.opts.name, reason: outcome.reason, retryInMs: nextDelay, durationMs: Math.round(performance.now() - started) }, 'reconcile incomplete; will retry');
        break;
      }
      if (outcome.kind === 'done') this.backoff.reset();
      nextDelay = this.opts.resyncMs;
      retrying = false;
    }
    this.running = false;
    if (!this.stopped) this.schedule(nextDelay, retrying);
    // events that came during a failed pass wait for its retry too, when the caller holds them
    if (retrying && this.pending && this.opts.holdWhileRetrying?.() === true) this.pending = false;
    if (!this.pending || this.stopped) this.wakeIdle();
    else void this.run();
  }
}
