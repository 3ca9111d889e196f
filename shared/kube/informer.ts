/**
 * A list+watch cache that does not die. client-node's ListWatch stops for good on any error but
 * 410 and does not await its callbacks; this wrapper restarts it with backoff, and turns every
 * event into a plain "something changed" signal: handlers read the cache, never trust a payload.
 */
import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { exponentialBackoff } from '../backoff.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';

export interface CacheOptions<T extends KubernetesObject> {
  readonly kubeConfig: KubeConfig;
  /** API path of the collection, e.g. /api/v1/nodes or /api/v1/namespaces/x/configmaps. */
  readonly path: string;
  readonly list: () => Promise<KubernetesListObject<T>>;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly log: Logger;
  /** Called after every add, update or delete (with the object), and after each (re)list (without). */
  readonly onChange: (obj?: T) => void;
}

export interface ResilientCache<T extends KubernetesObject> {
  /** Resolves once the first list has been loaded into the cache. */
  readonly synced: Promise<void>;
  get(name: string, namespace?: string): T | undefined;
  list(): T[];
  stop(): Promise<void>;
}

export function startCache<T extends KubernetesObject>(opts: CacheOptions<T>): ResilientCache<T> {
  const log = opts.log.child({ watch: opts.path, ...(opts.fieldSelector ? { fieldSelector: opts.fieldSelector } : {}) });
  // restarts within 0.25-4 s (jittered): a component sees an API server that came back within
  // about 4 s, and thousands of agents retrying spread their lists over that window
  const backoff = exponentialBackoff(500, 4_000);
  let stopped = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let markSynced: () => void = () => undefined;
  const synced = new Promise<void>((resolve) => {
    markSynced = resolve;
  });
  const lw = new ListWatch<T>(
    opts.path,
    new Watch(opts.kubeConfig),
    async () => {
      const result = await opts.list();
      // the list succeeded: the connection works, so the next failure starts from a short delay
      backoff.reset();
      // setImmediate: runs after ListWatch has put the listed items into its cache
      setImmediate(() => {
        markSynced();
        opts.onChange();
      });
      return result;
    },
    false,
    opts.labelSelector,
    opts.fieldSelector,
  );
  const changed = (obj: T): void => opts.onChange(obj);
  lw.on('add', changed);
  lw.on('update', changed);
  lw.on('delete', changed);
  lw.on('error', (err: unknown) => {
    if (stopped) return;
    const delayMs = backoff.next();
    log.warn({ err: errorMessage(err), delayMs }, 'watch failed; restarting');
    restartTimer = setTimeout(() => {
      if (!stopped) lw.start().catch((e: unknown) => log.error({ err: errorMessage(e) }, 'watch restart failed'));
    }, delayMs);
  });
  lw.start().catch((e: unknown) => log.error({ err: errorMessage(e) }, 'watch start failed'));
  return {
    synced,
    get: (name, namespace) => lw.get(name, namespace),
    list: () => [...lw.list()],
    async stop(): Promise<void> {
      stopped = true;
      if (restartTimer) clearTimeout(restartTimer);
      await lw.stop();
    },
  };
}
