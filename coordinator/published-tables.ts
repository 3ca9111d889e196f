/**
 * The coordinator's view of the tables it publishes (hub info and peer-table shards): the watch
 * cache, overlaid with the objects this replica wrote whose watch event has not arrived yet (so a
 * pass right after a write plans from what is on the server, not from a stale cache), the echo of
 * our own writes recognised (it needs no pass), and each shard decoded once per resourceVersion.
 */
import type { V1ConfigMap } from '@kubernetes/client-node';
import { DEFAULT_NAMES, type InstanceNames } from '../shared/keys.ts';
import { decodePeer, shardIndexOf } from '../shared/tables.ts';
import { highWaterOf } from './tables-writer.ts';

/** What the store reads from the watch cache (a ResilientCache of ConfigMaps). */
export interface TableCache {
  get(name: string, namespace?: string): V1ConfigMap | undefined;
  list(): V1ConfigMap[];
}

export interface PublishedAllocations {
  /** node -> overlay address, from every shard's well-formed entries. */
  readonly held: ReadonlyMap<string, string>;
  /** shard index -> its recorded high-water mark. */
  readonly highWater: ReadonlyMap<number, number>;
}

export class PublishedTables {
  private readonly namespace: string;
  private readonly names: InstanceNames;
  private cache: TableCache | undefined;
  /** Objects we wrote whose watch event has not arrived yet: newer than the cache. */
  private readonly written = new Map<string, V1ConfigMap>();
  /** Decoded shard contents by shard name, kept while the shard's resourceVersion is unchanged. */
  private readonly decoded = new Map<string, { rv: string; held: [string, string][] }>();
  /** The last answer of allocations(), and the shard versions it was read from. */
  private last: { versions: string; answer: PublishedAllocations } | undefined;

  constructor(namespace: string, names: InstanceNames = DEFAULT_NAMES) {
    this.namespace = namespace;
    this.names = names;
  }

  attach(cache: TableCache): void {
    this.cache = cache;
  }

  /**
   * A watch event arrived for `cm`: forgets the written copies the cache has caught up with, and
   * tells whether the event is the echo of our own write (true: nothing new to plan from).
   */
  observed(cm: V1ConfigMap | undefined): boolean {
    const own = cm !== undefined && this.written.get(cm.metadata?.name ?? '')?.metadata?.resourceVersion === cm.metadata?.resourceVersion;
    for (const [name, obj] of this.written) {
      if (this.cache?.get(name, this.namespace)?.metadata?.resourceVersion === obj.metadata?.resourceVersion) this.written.delete(name);
    }
    return own;
  }

  /** Records the object a write returned (newer than the cache until its event arrives). */
  wrote(cm: V1ConfigMap): void {
    if (cm.metadata?.name) this.written.set(cm.metadata.name, cm);
  }

  /** Replaces our copies with a fresh listing (after a 409: someone else changed a table). */
  replaceWith(fresh: readonly V1ConfigMap[]): void {
    this.written.clear();
    for (const cm of fresh) this.wrote(cm);
  }

  get(name: string): V1ConfigMap | undefined {
    return this.written.get(name) ?? this.cache?.get(name, this.namespace);
  }

  shardNames(): string[] {
    const names = new Set([...(this.cache?.list() ?? []).map((c) => c.metadata?.name ?? ''), ...this.written.keys()]);
    return [...names].filter((n) => shardIndexOf(n, this.names.peersConfigMapPrefix) !== undefined);
  }

  /** Every allocation published in the peer table, and each shard's high-water mark. */
  allocations(): PublishedAllocations {
    const names = this.shardNames();
    const versions = names.map((name) => `${name}@${this.get(name)?.metadata?.resourceVersion ?? ''}`).join(',');
    // the same shards at the same versions: the very same answer (the planner then knows, by
    // object, that nothing in the table changed)
    if (this.last?.versions === versions) return this.last.answer;
    const held = new Map<string, string>();
    const highWater = new Map<number, number>();
    for (const name of names) {
      const cm = this.get(name);
      highWater.set(shardIndexOf(name, this.names.peersConfigMapPrefix) ?? 0, highWaterOf(cm, this.names));
      const rv = cm?.metadata?.resourceVersion ?? '';
      let entry = this.decoded.get(name);
      if (!entry || entry.rv !== rv) {
        const list: [string, string][] = [];
        for (const [node, value] of Object.entries(cm?.data ?? {})) {
          const p = decodePeer(node, value);
          // a malformed entry is not an allocation: the plan falls back on the node's annotation
          if (!(p instanceof Error)) list.push([node, p.overlayIP]);
        }
        entry = { rv, held: list };
        this.decoded.set(name, entry);
      }
      for (const [node, ip] of entry.held) held.set(node, ip);
    }
    for (const name of this.decoded.keys()) if (!names.includes(name)) this.decoded.delete(name);
    const answer = { held, highWater };
    this.last = { versions, answer };
    return answer;
  }

  /** How many shards are decoded and cached (for tests: the cache is bounded by the shards that exist). */
  get decodedShards(): number {
    return this.decoded.size;
  }
}
