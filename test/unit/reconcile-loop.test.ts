import { describe, expect, it, vi } from 'vitest';
import { DONE, ReconcileLoop, SKIPPED, retry, type PassOutcome } from '../../shared/reconcile-loop.ts';
import { capturingLogger } from '../support/nitro.ts';
import { silentLogger } from '../../shared/log.ts';

describe('reconcile loop', () => {
  it('merges triggers that arrive during a pass into one more pass, with their reasons', async () => {
    const seen: string[][] = [];
    let release: () => void = () => undefined;
    const loop = new ReconcileLoop({ name: 't', log: silentLogger(), resyncMs: 60_000, pass: async (reasons) => {
      seen.push([...reasons].sort());
      if (seen.length === 1) await new Promise<void>((r) => (release = r));
      return DONE;
    } });
    loop.start();
    loop.trigger('a');
    loop.trigger('b');
    loop.trigger('a');
    release();
    await loop.idle();
    expect(seen).toEqual([['start'], ['a', 'b']]);
    loop.stop();
  });

  it('retries a failed pass with backoff and reports the reason', async () => {
    let n = 0;
    const loop = new ReconcileLoop({ name: 't', log: silentLogger(), resyncMs: 60_000, minRetryMs: 5, maxRetryMs: 10, pass: () => Promise.resolve(++n < 3 ? retry('not yet') : DONE) });
    loop.start();
    await vi.waitFor(() => expect(n).toBe(3), { timeout: 10_000 });
    expect(loop.failures).toBe(2);
    loop.stop();
  });

  it('keeps the backoff it reached through a skipped pass (not leading), and starts again only after a success', async () => {
    const { log, lines } = capturingLogger();
    // fail, fail, fail (each retry from the timer), skipped (a standby), then on a trigger fail again,
    // then succeed, then on a trigger fail once more
    const outcomes: PassOutcome[] = [retry('down'), retry('down'), retry('down'), SKIPPED, retry('down'), DONE, retry('down')];
    let n = 0;
    const loop = new ReconcileLoop({ name: 't', log, resyncMs: 60_000, minRetryMs: 20, maxRetryMs: 100_000, pass: () => Promise.resolve(outcomes[n++] ?? DONE) });
    const delays = (): number[] => lines.map((l) => JSON.parse(l) as { retryInMs?: number }).flatMap((l) => (l.retryInMs !== undefined ? [l.retryInMs] : []));
    loop.start();
    await vi.waitFor(() => expect(n).toBe(4), { timeout: 5_000 });
    await loop.idle();
    loop.trigger('leading');
    await vi.waitFor(() => expect(n).toBe(6), { timeout: 5_000 });
    await loop.idle();
    loop.trigger('node');
    await vi.waitFor(() => expect(delays()).toHaveLength(5), { timeout: 5_000 });
    loop.stop();
    // full jitter: attempt k waits between half and all of 20 ms * 2^k
    const [d1, d2, d3, afterSkip, afterSuccess] = delays();
    expect(d1).toBeLessThanOrEqual(20);
    expect(d2).toBeGreaterThanOrEqual(20);
    expect(d3).toBeGreaterThanOrEqual(40);
    expect(afterSkip, 'the fourth failure goes on from the third').toBeGreaterThanOrEqual(80);
    expect(afterSuccess, 'a success starts the backoff again').toBeLessThanOrEqual(20);
  });

  it('holds events for the retry while the caller says so, and runs them at once when it does not', async () => {
    const seen: string[][] = [];
    let failing = true;
    let hold = true;
    const loop = new ReconcileLoop({
      name: 't', log: silentLogger(), resyncMs: 60_000, minRetryMs: 1_000, maxRetryMs: 1_000, holdWhileRetrying: () => hold,
      pass: (reasons) => {
        seen.push([...reasons].sort());
        return Promise.resolve(failing ? retry('device unreachable') : DONE);
      },
    });
    loop.start();
    await loop.idle();
    for (const r of ['a', 'b', 'c']) loop.trigger(r);
    await new Promise((r) => setTimeout(r, 50));
    // three events, no pass: they wait for the retry (0.5-1 s after the failure)
    expect(seen).toEqual([['start']]);
    failing = false;
    await vi.waitFor(() => expect(seen).toHaveLength(2), { timeout: 10_000 });
    expect(seen).toEqual([['start'], ['a', 'b', 'c', 'retry']]);
    // after a success, events run at once again
    loop.trigger('d');
    await loop.idle();
    expect(seen.at(-1)).toEqual(['d']);
    // a failure the caller does not hold for (one entry failed): the next event runs at once
    failing = true;
    hold = false;
    loop.trigger('e');
    await loop.idle();
    loop.trigger('f');
    await loop.idle();
    expect(seen.slice(-2)).toEqual([['e'], ['f']]);
    loop.stop();
  });

  it('lets idle() resolve after stop even with a trigger pending', async () => {
    let release: () => void = () => undefined;
    const loop = new ReconcileLoop({ name: 't', log: silentLogger(), resyncMs: 60_000, pass: () => new Promise((r) => (release = () => r(DONE))) });
    loop.start();
    loop.trigger('x');
    loop.stop();
    release();
    await loop.idle();
    expect(loop.passes).toBe(1);
  });
});
