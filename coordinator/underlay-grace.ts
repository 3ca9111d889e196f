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

  constructor(o: UnderlayGraceOptions) {
    this.o = o;
  }

  /** The Nodes as the plan should see them (a node within its grace carries its last InternalIP). */
  apply(nodes: readonly V1Node[]): V1Node[] {
    const now = (this.o.now ?? (() => performance.now()))();
    const { graceMs } = this.o;
    const seen = new Set<string>();
    const out = nodes.map((n) => {
      const name = n.metadata?.name ?? '';
      seen.add(name);
      const ip = internalIP(n, this.o.family ?? 4);
      const last = this.last.get(name);
      if (ip) {
        this.last.set(name, { ip });
        return n;
      }
      if (!last) return n;
      if (last.missingSince === undefined) {
        this.last.set(name, { ip: last.ip, missingSince: now });
        this.o.log.warn({ node: name, underlayIP: last.ip, graceMs }, 'node lost its InternalIP: keeping its last one for the grace period');
        const schedule = this.o.schedule ?? ((fn, ms) => setTimeout(fn, ms).unref());
        schedule(this.o.expired, graceMs + 10);
      }
      if (now - (last.missingSince ?? now) >= graceMs) return n;
      return { ...n, status: { ...n.status, addresses: [...(n.status?.addresses ?? []), { type: 'InternalIP', address: last.ip }] } };
    });
    for (const name of [...this.last.keys()]) if (!seen.has(name)) this.last.delete(name);
    return out;
  }
}
