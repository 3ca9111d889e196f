/**
 * Publishes a coordinator plan to the API: hub info, then every shard (compare-and-swap on the
 * resourceVersion the store holds), then the node annotations, at most `writeConcurrency` at a
 * time. Each write first asks the fence (the Lease) whether this replica may still write. Writes
 * only what differs; the echo of an annotation it wrote is recognised so it triggers no pass.
 */
import type { CoreV1Api, V1Node } from '@kubernetes/client-node';
import type { InstanceNames } from '../shared/keys.ts';
import { encodeHubInfo, schemaVersionOf, type Peer } from '../shared/tables.ts';
import type { CoordinatorPlan } from './plan.ts';
import type { PublishedTables } from './published-tables.ts';
import { annotateNode, highWaterOf, writeTable, type WriteCounter } from './tables-writer.ts';

export interface PublisherOptions {
  readonly core: CoreV1Api;
  readonly namespace: string;
  readonly names: InstanceNames;
  readonly tables: PublishedTables;
  /** The node as the watch cache has it (its current annotations). */
  readonly node: (name: string) => V1Node | undefined;
  /** Throws when this replica may not write (lost the Lease). */
  readonly fence: () => void;
  /** Called with the number of API writes each write made. */
  readonly onWrites: (n: number) => void;
  /** Node annotations written in parallel at most (default 16). */
  readonly writeConcurrency?: number;
}

export class Publisher {
  private readonly o: PublisherOptions;
  readonly counter: WriteCounter = { writes: 0 };
  /** Annotations we wrote whose watch event has not arrived yet (node -> "ip mac"). */
  private readonly annotated = new Map<string, string>();
  /**
   * Per table, the content last found written (or written) and the object it was found in: while
   * the plan hands the same content and the table is the same object, nothing needs comparing
   * (a node event changes one shard; the others are the very objects they were).
   */
  private readonly checked = new Map<string, { want: object; have: object | undefined }>();
  /** Per peer, the Node object last found carrying its annotations (the same pair needs no look). */
  private readonly carried = new WeakMap<Peer, V1Node>();

  constructor(o: PublisherOptions) {
    this.o = o;
  }

  /** Hub info and every shard, planned or existing (a shard the plan no longer has is emptied). */
  async publishTables(plan: CoordinatorPlan): Promise<void> {
    const { tables, names } = this.o;
    const schema = schemaVersionOf(plan.hub);
    await this.write(names.hubConfigMap, 'hub', encodeHubInfo(plan.hub), schema, undefined, plan.hub);
    for (const name of new Set([...plan.shards.keys(), ...tables.shardNames()])) {
      const shard = plan.shards.get(name);
      await this.write(name, 'peers', shard?.data ?? {}, schema, shard?.highWater ?? highWaterOf(tables.get(name), names), shard);
    }
  }

  /** `source`: the planned object the content comes from (the same object is the same content). */
  private async write(name: string, table: 'hub' | 'peers', want: Record<string, string>, schema: string, highWater: number | undefined, source: object | undefined): Promise<void> {
    const have = this.o.tables.get(name);
    const last = this.checked.get(name);
    if (source !== undefined && last?.want === source && last.have === have) return;
    this.o.fence();
    const before = this.counter.writes;
    const result = await writeTable(this.o.core, this.o.namespace, name, table, have, want, this.counter, highWater, this.o.names, schema);
    this.o.onWrites(this.counter.writes - before);
    if (result) this.o.tables.wrote(result);
    if (source === undefined) this.checked.delete(name);
    else this.checked.set(name, { want: source, have: result ?? have });
  }

  private annotationOf(node: V1Node | undefined): string {
    const ann = node?.metadata?.annotations ?? {};
    return `${ann[this.o.names.annotationOverlayIP] ?? ''} ${ann[this.o.names.annotationVtepMAC] ?? ''} ${ann[this.o.names.annotationPath] ?? ''}`;
  }

  /** What a peer's annotations should read as, in annotationOf's terms (a VXLAN peer has no path annotation). */
  private static wanted(peer: Peer): string {
    return `${peer.overlayIP} ${peer.vtepMAC} ${peer.path === 'direct' ? 'direct' : ''}`;
  }

  /** Annotates every node whose annotation differs from the plan and is not already on its way. */
  async annotate(plan: CoordinatorPlan): Promise<void> {
    const todo = plan.peers.filter((peer) => {
      const node = this.o.node(peer.node);
      if (node !== undefined && this.carried.get(peer) === node) return false;
      const want = Publisher.wanted(peer);
      if (this.annotationOf(node) === want) {
        this.annotated.delete(peer.node);
        if (node !== undefined) this.carried.set(peer, node);
        return false;
      }
      return this.annotated.get(peer.node) !== want;
    });
    const limit = this.o.writeConcurrency ?? 16;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const peer = todo[next++];
        if (!peer) return;
        this.o.fence();
        await annotateNode(this.o.core, peer.node, peer.overlayIP, peer.vtepMAC, this.counter, this.o.names, peer.path);
        this.annotated.set(peer.node, Publisher.wanted(peer));
        this.o.onWrites(1);
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, todo.length) }, worker));
  }

  /** Whether a Node watch event is only the echo of an annotation we wrote (nothing to plan). */
  isOwnAnnotationEcho(node: V1Node): boolean {
    const name = node.metadata?.name ?? '';
    const want = this.annotated.get(name);
    if (want === undefined || this.annotationOf(node) !== want) return false;
    this.annotated.delete(name);
    return true;
  }
}
