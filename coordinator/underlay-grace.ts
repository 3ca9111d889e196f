/**
 * A node that loses its InternalIP (a kubelet restart, a status update without addresses) keeps
 * its last one for a grace period, so its overlay address, its peer-table entry and its device
 * entries do not move; after the grace it is left out like any node without one.
 */
import type { V1Node } from '@kubernetes/client-node';
import type { Logger } from '../shared/log.ts';
import { internalIP } from '../shared/node-facts.ts';
import type { IpFamily } from '../shared/ip.ts';

export interface UnderlayGraceOptions {
  readonly graceMs: number;
  readonly log: Logger;
  /** Asks for a pass when a grace period ends. */
  readonly expired: () => void;
  /** Monotonic milliseconds (default performance.now). */
  readonly now?: () => number;
  /** Schedules `expired` (default an unref'd setTimeout). */
  readonly schedule?: (fn: () => void, ms: number) => void;
  /** The underlay's family: the InternalIP of that family is the one kept (default 4). */
  readonly family?: IpFamily;
}

export class UnderlayGrace {
  private readonly o: UnderlayGraceOptions;
  /** Each node's last InternalIP, and since when it has been missing. */
  private readonly last = new Map<string, { ip: string; missingSince?: number }>();
  /** A Node object's InternalIP as read from it (a changed Node is a new object): a pass reads only the Nodes that changed. */
  private readonly read = new WeakMap<V1Node, string | null>();

  constructor(o: UnderlayGraceOptions) {
    this.o = o;
  }

  /**
   * The Nodes as the plan should see them (a node within its grace carries its last InternalIP).
   * When no node is within its grace, that is the very array given.
   */
  apply(nodes: readonly V1Node[]): readonly V1Node[] {
    const now = (this.o.now ?? (() => performance.now()))();
    let out: V1Node[] | undefined;
    let remembered = 0;
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i] as V1Node;
      const kept = this.kept(n, now);
      if (kept !== undefined) {
        out ??= nodes.slice();
        out[i] = kept;
      }
      if (this.last.has(n.metadata?.name ?? '')) remembered++;
    }
    // a node that left: forget its address (only when some did: a pass with none costs no walk)
    if (remembered < this.last.size) {
      const present = new Set(nodes.map((n) => n.metadata?.name ?? ''));
      for (const name of [...this.last.keys()]) if (!present.has(name)) this.last.delete(name);
    }
    return out ?? nodes;
  }

  /** The Node with its last InternalIP added when it lost it within the grace; undefined: the Node as it is. */
  private kept(n: V1Node, now: number): V1Node | undefined {
    const name = n.metadata?.name ?? '';
    let ip = this.read.get(n);
    if (ip === undefined) {
      ip = internalIP(n, this.o.family ?? 4) ?? null;
      this.read.set(n, ip);
    }
    const last = this.last.get(name);
    if (ip !== null) {
      if (last?.ip !== ip || last.missingSince !== undefined) this.last.set(name, { ip });
      return undefined;
    }
    if (!last) return undefined;
    const { graceMs } = this.o;
    if (last.missingSince === undefined) {
      this.last.set(name, { ip: last.ip, missingSince: now });
      this.o.log.warn({ node: name, underlayIP: last.ip, graceMs }, 'node lost its InternalIP: keeping its last one for the grace period');
      const schedule = this.o.schedule ?? ((fn, ms) => setTimeout(fn, ms).unref());
      schedule(this.o.expired, graceMs + 10);
    }
    if (now - (last.missingSince ?? now) >= graceMs) return undefined;
    return { ...n, status: { ...n.status, addresses: [...(n.status?.addresses ?? []), { type: 'InternalIP', address: last.ip }] } };
  }
}
