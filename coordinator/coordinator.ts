/**
 * The coordinator: every replica keeps warm caches of Nodes and the published tables; the one
 * holding the Lease reconciles. A pass loads every published allocation before it allocates
 * anything (so a new leader never steals an address), writes hub info, then the shards (CAS),
 * then node annotations, then asks the device driver to sync. Writes are fenced by the lease.
 */
import type { KubeConfig, V1ConfigMap, V1Node } from '@kubernetes/client-node';
import { makeClients, type KubeClients } from '../shared/kube/client.ts';
import { startCache, type ResilientCache } from '../shared/kube/informer.ts';
import { ANNOTATION_OVERLAY_IP, ANNOTATION_VTEP_MAC, HUB_CONFIGMAP, LABEL_TABLE, LEADER_LEASE } from '../shared/keys.ts';
import { decodePeer, encodeHubInfo, shardIndexOf } from '../shared/tables.ts';
import type { Logger } from '../shared/log.ts';
import { DONE, ReconcileLoop, retry, type PassOutcome } from '../shared/reconcile-loop.ts';
import type { HealthSource } from '../shared/health.ts';
import { errorMessage, isConflict } from '../shared/errors.ts';
import { planCoordinator, type CoordinatorPlan, type OverlayConfig } from './plan.ts';
import { annotateNode, writeTable, type WriteCounter } from './tables-writer.ts';
import { LeaderElector } from './leader.ts';
import type { DeviceDriver } from './drivers/driver.ts';

export interface CoordinatorOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly identity: string;
  readonly overlay: OverlayConfig;
  readonly driver: DeviceDriver;
  readonly log: Logger;
  readonly resyncMs: number;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

class NotLeader extends Error {}

export class Coordinator implements HealthSource {
  private readonly o: CoordinatorOptions;
  private readonly clients: KubeClients;
  private nodes: ResilientCache<V1Node> | undefined;
  private tables: ResilientCache<V1ConfigMap> | undefined;
  /** Objects we wrote whose watch event has not arrived yet: newer than the cache. */
  private readonly written = new Map<string, V1ConfigMap>();
  readonly elector: LeaderElector;
  readonly loop: ReconcileLoop;
  readonly counter: WriteCounter = { writes: 0 };
  private lastPlan: CoordinatorPlan | undefined;
  private synced = false;
  private converged = false;
  private reason: string | undefined = 'starting';

  constructor(o: CoordinatorOptions) {
    this.o = o;
    this.clients = makeClients(o.kubeConfig);
    this.loop = new ReconcileLoop({ name: 'coordinator', pass: () => this.pass(), log: o.log, resyncMs: o.resyncMs });
    this.elector = new LeaderElector({
      api: this.clients.coordination, namespace: o.namespace, name: LEADER_LEASE, identity: o.identity,
      leaseDurationMs: o.leaseDurationMs, renewDeadlineMs: o.renewDeadlineMs, retryPeriodMs: o.retryPeriodMs, log: o.log,
      onStartedLeading: () => this.loop.trigger('leading'),
      onStoppedLeading: () => {
        this.converged = false;
        this.reason = 'not the leader';
      },
    });
  }

  start(): void {
    const { kubeConfig, namespace, log } = this.o;
    const onChange = (): void => this.loop.trigger('watch');
    this.nodes = startCache<V1Node>({ kubeConfig, log, onChange, path: '/api/v1/nodes', list: () => this.clients.core.listNode() });
    this.tables = startCache<V1ConfigMap>({
      kubeConfig, log, path: `/api/v1/namespaces/${namespace}/configmaps`, labelSelector: LABEL_TABLE,
      list: () => this.clients.core.listNamespacedConfigMap({ namespace, labelSelector: LABEL_TABLE }),
      onChange: () => {
        this.dropCaughtUp();
        this.loop.trigger('watch');
      },
    });
    void Promise.all([this.nodes.synced, this.tables.synced]).then(() => {
      this.synced = true;
      this.loop.start();
      this.elector.start();
    });
  }

  async stop(): Promise<void> {
    this.loop.stop();
    await this.loop.idle();
    await this.elector.release();
    await Promise.all([this.nodes?.stop(), this.tables?.stop(), this.o.driver.close()]);
  }

  private dropCaughtUp(): void {
    for (const [name, obj] of this.written) {
      const cached = this.tables?.get(name, this.o.namespace);
      if (cached?.metadata?.resourceVersion === obj.metadata?.resourceVersion) this.written.delete(name);
    }
  }

  private table(name: string): V1ConfigMap | undefined {
    return this.written.get(name) ?? this.tables?.get(name, this.o.namespace);
  }

  /** Every allocation published in the peer table: node name -> overlay IP. */
  heldAllocations(): Map<string, string> {
    const held = new Map<string, string>();
    const names = new Set([...(this.tables?.list() ?? []).map((c) => c.metadata?.name ?? ''), ...this.written.keys()]);
    for (const name of names) {
      if (shardIndexOf(name) === undefined) continue;
      for (const [node, value] of Object.entries(this.table(name)?.data ?? {})) {
        const p = decodePeer(node, value);
        if (!(p instanceof Error)) held.set(node, p.overlayIP);
      }
    }
    return held;
  }

  private fence(): void {
    if (!this.elector.canWrite()) throw new NotLeader('lost the lease');
  }

  private async write(name: string, table: 'hub' | 'peers', want: Record<string, string>): Promise<void> {
    this.fence();
    const result = await writeTable(this.clients.core, this.o.namespace, name, table, this.table(name), want, this.counter);
    if (result) this.written.set(name, result);
  }

  private async pass(): Promise<PassOutcome> {
    if (!this.synced) return DONE;
    if (!this.elector.canWrite()) {
      this.reason = `standby (leader: ${this.elector.holder || 'none yet'})`;
      return DONE;
    }
    const { log, overlay } = this.o;
    const plan = planCoordinator(overlay, this.nodes?.list() ?? [], this.heldAllocations());
    this.lastPlan = plan;
    try {
      await this.write(HUB_CONFIGMAP, 'hub', encodeHubInfo(plan.hub));
      const shardNames = new Set([...plan.shards.keys(), ...[...this.heldShardNames()]]);
      for (const name of shardNames) await this.write(name, 'peers', plan.shards.get(name) ?? {});
      for (const peer of plan.peers) {
        const node = this.nodes?.get(peer.node);
        const ann = node?.metadata?.annotations ?? {};
        if (ann[ANNOTATION_OVERLAY_IP] === peer.overlayIP && ann[ANNOTATION_VTEP_MAC] === peer.vtepMAC) continue;
        this.fence();
        await annotateNode(this.clients.core, peer.node, peer.overlayIP, peer.vtepMAC, this.counter);
      }
      this.fence();
      await this.o.driver.sync(plan);
    } catch (err) {
      if (err instanceof NotLeader) return DONE;
      if (isConflict(err)) {
        // someone changed a table since our cache saw it: forget our copies and re-plan
        this.written.clear();
        await this.refreshTables();
        return retry('conflict writing a table; re-planning from fresh state');
      }
      this.converged = false;
      this.reason = errorMessage(err);
      throw err;
    }
    for (const p of plan.problems) log.warn({ node: p.node, reason: p.reason }, 'node not served');
    this.converged = true;
    this.reason = undefined;
    return DONE;
  }

  private heldShardNames(): string[] {
    return (this.tables?.list() ?? []).map((c) => c.metadata?.name ?? '').filter((n) => shardIndexOf(n) !== undefined);
  }

  private async refreshTables(): Promise<void> {
    const fresh = await this.clients.core.listNamespacedConfigMap({ namespace: this.o.namespace, labelSelector: LABEL_TABLE });
    for (const cm of fresh.items) if (cm.metadata?.name) this.written.set(cm.metadata.name, cm);
  }

  notReadyReason(): string | undefined {
    if (!this.synced) return 'caches not synced';
    if (!this.elector.canWrite()) return undefined; // a warm standby is ready to serve
    return this.converged ? undefined : (this.reason ?? 'not converged');
  }

  status(): Record<string, unknown> {
    return {
      identity: this.o.identity,
      leader: this.elector.canWrite(),
      leaseHolder: this.elector.holder || null,
      deviceType: this.o.driver.type,
      converged: this.converged,
      reason: this.reason ?? null,
      nodes: this.lastPlan?.peers.length ?? 0,
      problems: this.lastPlan?.problems ?? [],
      hub: this.lastPlan?.hub ?? null,
      apiWrites: this.counter.writes,
    };
  }
}
