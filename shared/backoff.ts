/** Exponential backoff with full jitter, bounded; used by every retry loop in the product. */
export interface Backoff {
  /** Delay before the next attempt, in ms; grows with each call. */
  next(): number;
  reset(): void;
}

export function exponentialBackoff(baseMs: number, maxMs: number, random: () => number = Math.random): Backoff {
  let attempt = 0;
  return {
    next(): number {
      const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
      attempt = Math.min(attempt + 1, 30);
      return Math.round(ceiling / 2 + (random() * ceiling) / 2);
    },
    reset(): void {
      attempt = 0;
    },
  };
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
