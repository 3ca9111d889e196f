/**
 * The coordinator: every replica keeps warm caches of Nodes, their pod-CIDR source and the
 * published tables; the one holding the Lease reconciles. A pass is thin: it reads every
 * published allocation (published-tables.ts, so a new leader never steals an address), plans
 * (plan.ts, pure), publishes hub info, shards and then node annotations (publisher.ts, CAS and
 * bounded writes), and hands the plan to the device reconciler. Every write is fenced by the Lease.
 */
import { ApisApi, CustomObjectsApi, type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1ConfigMap, type V1Node } from '@kubernetes/client-node';
import { fenceApiWrites, makeClients, ownKubeConfig, type KubeClients } from '../shared/kube/client.ts';
import { startCache, type ResilientCache } from '../shared/kube/informer.ts';
import { nodeEventRecorder, type EventRecorder } from '../shared/kube/events.ts';
import { DEFAULT_NAMES, type InstanceNames } from '../shared/keys.ts';
import { underlayFamilyOf } from '../shared/node-facts.ts';
import type { Logger } from '../shared/log.ts';
import { Metrics } from '../shared/metrics.ts';
import { DONE, ReconcileLoop, SKIPPED, retry, type PassOutcome } from '../shared/reconcile-loop.ts';
import type { HealthSource } from '../shared/health.ts';
import { errorMessage, isConflict } from '../shared/errors.ts';
import { CoordinatorPlanner, type CoordinatorPlan, type OverlayConfig } from './plan.ts';
import type { WriteCounter } from './tables-writer.ts';
import { PublishedTables, type PublishedAllocations } from './published-tables.ts';
import { Publisher } from './publisher.ts';
import { UnderlayGrace } from './underlay-grace.ts';
import { policyKey, withDeviceSubnets, type RoutingPolicy } from './routing.ts';
import { sleep } from '../shared/backoff.ts';
import { LeaderElector } from './leader.ts';
import type { DeviceDriver } from './drivers/driver.ts';
import { DeviceStatusPublisher } from '../shared/kube/device-status.ts';
import { DeviceReconciler } from './device-reconciler.ts';
import { FencedWriteError } from './drivers/https-json.ts';
import { CALICO_BLOCK_AFFINITIES, CILIUM_NODES, NodePodCidrs, detectSource, podCIDRsBySource, type CustomResourceRef, type PodCidrSource } from './podcidr-sources.ts';

export interface CoordinatorOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly identity: string;
  /** This cluster's identity on a shared device (shown in /status). */
  readonly clusterId?: string;
  readonly overlay: OverlayConfig;
  /** Which nodes the device reaches directly, without the tunnel (default: every node through VXLAN). */
  readonly routing?: RoutingPolicy;
  readonly driver: DeviceDriver;
  readonly log: Logger;
  readonly resyncMs: number;
  readonly deviceResyncMs: number;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly podCidrSource: PodCidrSource | 'auto';
  /** Only Nodes matching this label selector join the overlay. */
  readonly nodeSelector?: string;
  /** Node annotations written in parallel at most (a 5,000-node first sync is 5,000 patches). */
  readonly writeConcurrency?: number;
  /** The names of this instance's Lease, tables, annotations and labels (default: the default instance). */
  readonly names?: InstanceNames;
  /** Service CIDRs and allowed pod ranges: a node whose pod CIDRs break them is left out (shared/pod-cidrs.ts). */
  readonly serviceCIDRs?: readonly string[];
  readonly podRanges?: readonly string[];
  /** How long a node that lost its InternalIP keeps its last one (default 2 minutes). */
  readonly underlayGraceMs?: number;
  /**
   * A reconcile pass (tables or device) running longer than this is wedged: the leader stops
   * renewing its Lease and /livez fails, so a standby takes over and the kubelet restarts this
   * process (default 5 minutes; every call a pass makes has its own, much shorter, deadline).
   */
  readonly passDeadlineMs?: number;
}

class NotLeader extends Error {}

export class Coordinator implements HealthSource {
  private readonly o: CoordinatorOptions;
  private readonly names: InstanceNames;
  private readonly kubeConfig: KubeConfig;
  private readonly clients: KubeClients;
  private nodes: ResilientCache<V1Node> | undefined;
  private tableCache: ResilientCache<V1ConfigMap> | undefined;
  private custom: ResilientCache<KubernetesObject> | undefined;
  private readonly tables: PublishedTables;
  private readonly publisher: Publisher;
  private readonly underlayGrace: UnderlayGrace;
  private readonly nodeEvents = new Map<string, EventRecorder>();
  readonly elector: LeaderElector;
  readonly loop: ReconcileLoop;
  readonly device: DeviceReconciler;
  private readonly deviceStatus: DeviceStatusPublisher;
  readonly registry = new Metrics();
  private readonly m;
  private source: PodCidrSource | undefined;
  private lastPlan: CoordinatorPlan | undefined;
  /** Remembers per node what it worked out, so a node event re-plans that node (plan.ts). */
  private readonly planner = new CoordinatorPlanner();
  private readonly podCIDRsOfNode = new NodePodCidrs();
  private synced = false;
  private converged = false;
  private reason: string | undefined = 'starting';
  /** The routing policy in force: the configured one, with the device's subnets once read (--routing auto). */
  private routing: RoutingPolicy | undefined;
  /** Whether this replica has asked the device for its VTEP subnets before its first plan. */
  private subnetsAsked = false;

  constructor(o: CoordinatorOptions) {
    this.names = o.names ?? DEFAULT_NAMES;
    this.o = o;
    // its own KubeConfig: the write fence below must not reach other users of the caller's
    this.kubeConfig = ownKubeConfig(o.kubeConfig);
    this.clients = makeClients(this.kubeConfig);
    this.loop = new ReconcileLoop({ name: 'coordinator', pass: (reasons) => this.pass(reasons), log: o.log, resyncMs: o.resyncMs });
    this.m = {
      nodes: this.registry.gauge('chorus_coordinator_nodes', 'Nodes selected for the overlay.'),
      allocated: this.registry.gauge('chorus_coordinator_allocations', 'Nodes holding an overlay address.'),
      capacity: this.registry.gauge('chorus_coordinator_pool_capacity', 'Node addresses the overlay network has.'),
      unallocated: this.registry.gauge('chorus_coordinator_unallocated_nodes', 'Selected nodes not served: left out for bad data (pod CIDR, InternalIP) or without an address (pool exhausted).'),
      podCIDRs: this.registry.gauge('chorus_coordinator_pod_cidrs', 'Pod CIDRs published for the device to route, by family.', { family: ['ipv4', 'ipv6'] }),
      unrouted: this.registry.gauge('chorus_coordinator_unrouted_pod_cidr_nodes', 'Nodes whose pod CIDRs of a family the device cannot reach (IPv6 ones without --overlay-network-ipv6), by family.', { family: ['ipv4', 'ipv6'] }),
      leader: this.registry.gauge('chorus_coordinator_leader', '1 while this replica leads.'),
      writes: this.registry.counter('chorus_coordinator_api_writes_total', 'Kubernetes API writes.'),
      passes: this.registry.counter('chorus_coordinator_reconciles_total', 'Reconcile passes, by result.', { result: ['ok', 'error'] }),
      duration: this.registry.gauge('chorus_coordinator_reconcile_seconds', 'Duration of the last reconcile pass.'),
      passSeconds: this.registry.histogram('chorus_coordinator_reconcile_duration_seconds', 'Duration of the reconcile passes that wrote or checked the tables.'),
    };
    this.m.leader(0);
    this.tables = new PublishedTables(o.namespace, this.names);
    this.publisher = new Publisher({
      core: this.clients.core, namespace: o.namespace, names: this.names, tables: this.tables,
      node: (name) => this.nodes?.get(name), fence: () => this.fence(), onWrites: (n) => this.m.writes({}, n),
      ...(o.writeConcurrency !== undefined ? { writeConcurrency: o.writeConcurrency } : {}),
    });
    this.underlayGrace = new UnderlayGrace({ graceMs: o.underlayGraceMs ?? 120_000, log: o.log, expired: () => this.loop.trigger('underlay-grace'), family: underlayFamilyOf(o.overlay.deviceVTEPs) });
    this.deviceStatus = new DeviceStatusPublisher({ core: this.clients.core, namespace: o.namespace, name: this.names.deviceStatusConfigMap, product: this.names.product, log: o.log, create: true, prune: o.driver.type !== 'linux', canWrite: () => this.elector.canWrite() });
    this.device = new DeviceReconciler({
      driver: o.driver, log: o.log, resyncMs: o.deviceResyncMs, metrics: this.registry,
      nodeEvent: (node) => this.eventsFor(node), canWrite: () => this.elector.canWrite(),
      deviceStatus: this.deviceStatus,
      ...(o.clusterId !== undefined ? { clusterId: o.clusterId } : {}),
      ...(o.routing?.fromDevice === true ? { underlaySubnets: { vteps: o.overlay.deviceVTEPs, changed: (subnets: readonly string[]) => this.deviceSubnetsRead(subnets) } } : {}),
    });
    this.routing = o.routing;
    this.elector = new LeaderElector({
      api: this.clients.coordination, namespace: o.namespace, name: this.names.leaderLease, identity: o.identity,
      leaseDurationMs: o.leaseDurationMs, renewDeadlineMs: o.renewDeadlineMs, retryPeriodMs: o.retryPeriodMs, log: o.log,
      healthy: () => this.notAliveReason(),
      onStartedLeading: () => {
        this.m.leader(1);
        this.device.forget();
        this.loop.trigger('leading');
      },
      // passes skipped while fenced (a renew came late under load) run now, not at the next resync
      onResumedWriting: () => this.loop.trigger('writable'),
      onStoppedLeading: () => {
        this.m.leader(0);
        this.converged = false;
        this.reason = 'not the leader';
      },
    });
    fenceApiWrites(this.kubeConfig, () => {
      if (!this.elector.canWrite()) throw new NotLeader('not writing to the API: this replica lost the leader Lease');
    });
    o.driver.setWriteFence?.(() => {
      if (!this.elector.canWrite()) throw new FencedWriteError(`not writing to the ${o.driver.type} device: this replica lost the leader Lease`);
    });
  }

  /** A pass that has run past the pass deadline, by loop: the process is wedged. */
  notAliveReason(): string | undefined {
    const deadline = this.o.passDeadlineMs ?? 300_000;
    for (const loop of [this.loop, this.device.loop]) {
      const ms = loop.runningForMs();
      if (ms > deadline) return `the ${loop.name} reconcile pass has run for ${Math.round(ms / 1000)} s (deadline ${Math.round(deadline / 1000)} s)`;
    }
    return undefined;
  }

  private eventsFor(node: string): EventRecorder {
    let r = this.nodeEvents.get(node);
    if (!r) {
      r = nodeEventRecorder(this.clients.core, node, 'coordinator', this.o.log, this.names.product);
      this.nodeEvents.set(node, r);
    }
    return r;
  }

  start(): void {
    void this.startAsync().catch((err: unknown) => {
      this.reason = `start failed: ${errorMessage(err)}`;
      this.o.log.error({ err: errorMessage(err) }, 'coordinator could not start');
    });
  }

  private async startAsync(): Promise<void> {
    const { namespace, log } = this.o;
    const kubeConfig = this.kubeConfig;
    this.source = this.o.podCidrSource === 'auto' ? await this.detectPodCidrSource() : this.o.podCidrSource;
    log.info({ podCidrSource: this.source, nodeSelector: this.o.nodeSelector ?? null }, 'pod CIDR source');
    const onChange = (): void => this.loop.trigger('watch');
    const selector = this.o.nodeSelector;
    this.nodes = startCache<V1Node>({
      kubeConfig, log, path: '/api/v1/nodes', ...(selector ? { labelSelector: selector } : {}),
      // the echo of our own annotation write changes nothing: no pass for it
      onChange: (node) => {
        if (!node || !this.publisher.isOwnAnnotationEcho(node)) this.loop.trigger('watch');
      },
      list: () => this.clients.core.listNode(selector ? { labelSelector: selector } : {}),
    });
    this.tableCache = startCache<V1ConfigMap>({
      kubeConfig, log, path: `/api/v1/namespaces/${namespace}/configmaps`, labelSelector: this.names.labelTable,
      list: () => this.clients.core.listNamespacedConfigMap({ namespace, labelSelector: this.names.labelTable }),
      // the echo of our own table write changes nothing: no pass for it
      onChange: (cm) => {
        if (!this.tables.observed(cm)) this.loop.trigger('watch');
      },
    });
    this.tables.attach(this.tableCache);
    const ref: CustomResourceRef | undefined = this.source === 'calico' ? CALICO_BLOCK_AFFINITIES : this.source === 'cilium' ? CILIUM_NODES : undefined;
    if (ref) {
      const api = kubeConfig.makeApiClient(CustomObjectsApi);
      this.custom = startCache<KubernetesObject>({
        kubeConfig, log, onChange, path: `/apis/${ref.group}/${ref.version}/${ref.plural}`,
        list: async () => (await api.listClusterCustomObject({ group: ref.group, version: ref.version, plural: ref.plural })) as KubernetesListObject<KubernetesObject>,
      });
    }
    await Promise.all([this.nodes.synced, this.tableCache.synced, this.custom?.synced]);
    this.synced = true;
    this.loop.start();
    this.device.start();
    this.elector.start();
  }

  private async detectPodCidrSource(): Promise<PodCidrSource> {
    const groups = await this.kubeConfig.makeApiClient(ApisApi).getAPIVersions();
    return detectSource(groups.groups.map((g) => g.name));
  }

  async stop(): Promise<void> {
    this.loop.stop();
    this.device.stop();
    this.deviceStatus.stop();
    await Promise.all([this.loop.idle(), this.device.loop.idle()]);
    // a pending config save still runs while we hold the Lease (after release it would be fenced)
    await this.o.driver.close();
    await this.elector.release();
    await Promise.all([this.nodes?.stop(), this.tableCache?.stop(), this.custom?.stop()]);
  }

  /** Every allocation published in the peer table, and each shard's high-water mark. */
  published(): PublishedAllocations {
    return this.tables.allocations();
  }

  /** API writes this replica has made (tables and annotations). */
  get counter(): WriteCounter {
    return this.publisher.counter;
  }

  private fence(): void {
    if (!this.elector.canWrite()) throw new NotLeader('lost the lease');
  }

  private async pass(reasons: ReadonlySet<string>): Promise<PassOutcome> {
    if (!this.synced) return DONE;
    if (!this.elector.canWrite()) {
      this.reason = `standby (leader: ${this.elector.holder || 'none yet'})`;
      return SKIPPED;
    }
    const started = performance.now();
    // --routing auto from the device: before the first plan, ask once, waiting at most 2 s (a
    // fresh cluster then starts on the right paths instead of tunneling every node until the
    // first device pass; a device that does not answer delays nobody: its answer re-plans)
    if (this.routing?.pending === true && !this.subnetsAsked) {
      this.subnetsAsked = true;
      const waited = new AbortController();
      await Promise.race([this.device.readUnderlaySubnets(), sleep(2_000, waited.signal)]);
      waited.abort();
    }
    const { overlay } = this.o;
    const nodes = this.nodes?.list() ?? [];
    const { held, highWater } = this.published();
    const podCIDRs = podCIDRsBySource(this.source ?? 'node', nodes, (this.custom?.list() ?? []), this.podCIDRsOfNode);
    // node events are planned node by node; the resync plans every node afresh (the backstop)
    const plan = this.planner.plan({
      config: overlay, nodes: this.underlayGrace.apply(nodes), podCIDRs, held, highWater, deviceMACs: this.o.driver.deviceMACs, peersPrefix: this.names.peersConfigMapPrefix,
      annotationKey: this.names.annotationOverlayIP, pathAnnotationKey: this.names.annotationPath, ...(this.routing ? { routing: this.routing } : {}),
      ...(this.o.serviceCIDRs ? { serviceCIDRs: this.o.serviceCIDRs } : {}), ...(this.o.podRanges ? { podRanges: this.o.podRanges } : {}),
    }, { full: reasons.has('timer') || reasons.has('retry') });
    this.lastPlan = plan;
    this.recordPlanMetrics(plan, nodes.length);
    try {
      await this.publisher.publishTables(plan);
      // the shards have committed every allocation: the device may use them now
      this.fence();
      this.device.update(plan);
      await this.publisher.annotate(plan);
    } catch (err) {
      // fenced (here or where the request was handed to a connection): the new leader carries on
      if (err instanceof NotLeader || !this.elector.canWrite()) return SKIPPED;
      this.m.passes({ result: 'error' });
      if (isConflict(err)) {
        // someone changed a table since our cache saw it: forget our copies and re-plan
        const fresh = await this.clients.core.listNamespacedConfigMap({ namespace: this.o.namespace, labelSelector: this.names.labelTable });
        this.tables.replaceWith(fresh.items);
        return retry('conflict writing a table; re-planning from fresh state');
      }
      this.converged = false;
      this.reason = errorMessage(err);
      throw err;
    }
    this.reportProblems(plan);
    this.converged = true;
    this.reason = undefined;
    this.m.passes({ result: 'ok' });
    this.m.duration((performance.now() - started) / 1000);
    this.m.passSeconds((performance.now() - started) / 1000);
    return DONE;
  }

  /** The device's VTEP subnets were read (--routing auto): a different set re-plans every node's path. */
  private deviceSubnetsRead(subnets: readonly string[]): boolean {
    const current = this.routing;
    if (!current) return false;
    const next = withDeviceSubnets(current, subnets);
    if (policyKey(next) === policyKey(current)) return false;
    this.o.log.info({ op: 'routing', directSubnets: next.directSubnets, previous: current.pending === true ? 'not read yet' : current.directSubnets }, 'direct subnets read from the device (--routing auto): nodes there are routed directly, the rest through VXLAN');
    this.routing = next;
    this.loop.trigger('routing');
    return true;
  }

  private recordPlanMetrics(plan: CoordinatorPlan, selected: number): void {
    this.m.nodes(selected);
    this.m.allocated(plan.peers.length);
    this.m.capacity(plan.capacity);
    this.m.unallocated(plan.problems.length);
    let v4 = 0;
    let v6 = 0;
    for (const p of plan.peers) {
      v4 += p.podCIDRs.length;
      v6 += p.podCIDRsIPv6?.length ?? 0;
    }
    this.m.podCIDRs(v4, { family: 'ipv4' });
    this.m.podCIDRs(v6, { family: 'ipv6' });
    this.m.unrouted(0, { family: 'ipv4' });
    this.m.unrouted(plan.ipv6NotRouted.length, { family: 'ipv6' });
  }

  private lastProblems = '';
  private ipv6NotRoutedLogged = false;
  private reportProblems(plan: CoordinatorPlan): void {
    // once per process: a dual-stack cluster on an IPv4-only overlay is supported, but its IPv6 pods are unreachable from the device
    if (plan.ipv6NotRouted.length > 0 && !this.ipv6NotRoutedLogged) {
      this.ipv6NotRoutedLogged = true;
      this.o.log.warn({ nodes: plan.ipv6NotRouted.length, examples: plan.ipv6NotRouted.slice(0, 5) }, 'nodes have IPv6 pod CIDRs, which the device cannot reach: the overlay carries IPv4 only; set --overlay-network-ipv6 (CHORUS_OVERLAY_NETWORK_IPV6) to route them (docs/install.md, "Dual-stack clusters")');
    }
    const key = JSON.stringify([plan.problems, plan.incomplete]);
    if (key === this.lastProblems) return;
    this.lastProblems = key;
    for (const p of plan.problems) {
      this.o.log.warn({ node: p.node, reason: p.reason }, 'node not served');
      this.eventsFor(p.node).warning('OverlayNotServed', p.reason);
    }
    for (const p of plan.incomplete) {
      this.o.log.warn({ node: p.node, reason: p.reason }, 'node served without pod routes');
      this.eventsFor(p.node).warning('PodCIDRMissing', p.reason);
    }
  }

  notReadyReason(): string | undefined {
    if (!this.synced) return this.reason ?? 'caches not synced';
    if (!this.elector.canWrite()) return undefined; // a warm standby is ready to take over
    if (!this.converged) return this.reason ?? 'not converged';
    return undefined;
  }

  status(): Record<string, unknown> {
    const plan = this.lastPlan;
    return {
      identity: this.o.identity,
      instance: this.names.instance,
      clusterId: this.o.clusterId ?? null,
      leader: this.elector.canWrite(),
      leaseHolder: this.elector.holder || null,
      deviceType: this.o.driver.type,
      podCidrSource: this.source ?? null,
      converged: this.converged,
      reason: this.reason ?? null,
      nodes: plan?.peers.length ?? 0,
      capacity: plan?.capacity ?? null,
      problems: plan?.problems ?? [],
      incomplete: plan?.incomplete ?? [],
      ipv6PodCIDRsNotRouted: plan?.ipv6NotRouted.length ?? 0,
      device: { converged: this.device.converged, lastError: this.device.lastError ?? null },
      routing: this.routingStatus(),
      hub: plan?.hub ?? null,
      apiWrites: this.publisher.counter.writes,
    };
  }

  /** The routing policy in force, where its direct subnets come from, and why they are not read yet. */
  private routingStatus(): Record<string, unknown> {
    const r = this.routing ?? { mode: 'vxlan', directSubnets: [] };
    const source = r.fromDevice === true ? 'device' : 'settings';
    return {
      mode: r.mode, directSubnets: r.pending === true ? null : r.directSubnets, ...(r.mode === 'auto' ? { directSubnetsFrom: source } : {}),
      ...(r.pending === true ? { pending: this.device.subnetsError ?? 'the device has not been asked yet' } : {}),
    };
  }

  metricsText(): Promise<string> {
    return this.registry.render();
  }
}
