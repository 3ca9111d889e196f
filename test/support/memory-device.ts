/**
 * A device driver over an in-memory device, for tests of the coordinator's device loop. The
 * device holds entries of several owners (this cluster, another cluster, hand-made); the driver
 * sees and changes only this cluster's, as a real driver must. Failures can be injected per key.
 */
import type { DeviceChange, DeviceDriver, DeviceEntry, DeviceFailure } from '../../coordinator/drivers/driver.ts';
import type { CoordinatorPlan } from '../../coordinator/plan.ts';

export interface StoredEntry extends DeviceEntry { readonly owner: string }

export class MemoryDevice {
  readonly entries = new Map<string, StoredEntry>();
  readonly failKeys = new Set<string>();
  calls = 0;

  put(e: StoredEntry): void {
    this.entries.set(`${e.kind}|${e.key}`, e);
  }

  owned(owner: string): StoredEntry[] {
    return [...this.entries.values()].filter((e) => e.owner === owner);
  }

  driver(owner: string): DeviceDriver {
    return {
      type: 'memory',
      deviceMACs: 'learned',
      desired: (plan: CoordinatorPlan): DeviceEntry[] => [
        { kind: 'tunnel', key: `vni-${plan.hub.vni}`, fields: { port: String(plan.hub.port) } },
        ...plan.peers.flatMap((p): DeviceEntry[] => [
          { kind: 'arp', key: p.overlayIP, fields: { mac: p.vtepMAC, vtep: p.underlayIP }, node: p.node },
          ...p.podCIDRs.map((c): DeviceEntry => ({ kind: 'route', key: c, fields: { via: p.overlayIP }, node: p.node })),
        ]),
      ],
      observe: () => {
        this.calls++;
        return Promise.resolve(this.owned(owner).map(({ owner: _o, ...e }) => e));
      },
      apply: (changes: readonly DeviceChange[]) => {
        const failures: DeviceFailure[] = [];
        for (const c of changes) {
          this.calls++;
          if (this.failKeys.has(c.entry.key)) {
            failures.push({ change: c, reason: `injected failure for ${c.entry.key}` });
            continue;
          }
          if (c.op === 'delete') this.entries.delete(`${c.entry.kind}|${c.entry.key}`);
          else this.put({ ...c.entry, owner });
        }
        return Promise.resolve(failures);
      },
      close: () => Promise.resolve(),
    };
  }
}
