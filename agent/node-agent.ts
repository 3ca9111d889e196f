/**
 * The node agent: watches only its own Node and the hub ConfigMap (so a node joining costs the
 * other nodes nothing) and keeps the node's overlay endpoint (endpoint.ts) programmed from them.
 * SIGTERM leaves the data plane in place, so a rolling update does not cut traffic.
 */
import type { KubeConfig, V1ConfigMap, V1Node } from '@kubernetes/client-node';
import { makeClients, type KubeClients } from '../shared/kube/client.ts';
import { startCache, type ResilientCache } from '../shared/kube/informer.ts';
import { nodeEventRecorder } from '../shared/kube/events.ts';
import { DEFAULT_NAMES, type InstanceNames } from '../shared/keys.ts';
import type { HealthSource } from '../shared/health.ts';
import { planNode, resolveNodeInputs, hostFactsOf, type HostFacts } from './node-plan.ts';
import { isProblem, type DirectPlan, type EndpointPlan, type Problem } from './plan-types.ts';
import { OverlayEndpoint, type KernelSettings } from './endpoint.ts';
import { readerOf, type KernelReader } from './overlay/observe.ts';

export interface NodeAgentOptions extends KernelSettings {
  readonly kubeConfig: KubeConfig;
  readonly nodeName: string;
  readonly namespace: string;
  /** Overrides the Node's InternalIP as the local VTEP address. */
  readonly underlayIP?: string;
  /** The instance this agent serves (default: the default instance). */
  readonly names?: InstanceNames;
}

export class NodeAgent implements HealthSource {
  private readonly o: NodeAgentOptions;
  private readonly clients: KubeClients;
  private nodeCache: ResilientCache<V1Node> | undefined;
  private hubCache: ResilientCache<V1ConfigMap> | undefined;
  readonly endpoint: OverlayEndpoint;
  private readonly names: InstanceNames;
  private readonly reader: KernelReader;

  constructor(o: NodeAgentOptions) {
    this.o = o;
    this.names = o.names ?? DEFAULT_NAMES;
    this.clients = makeClients(o.kubeConfig);
    this.reader = readerOf(o);
    this.endpoint = new OverlayEndpoint({
      role: 'agent', ip: o.ip, reader: this.reader, ...(o.writer ? { writer: o.writer } : {}), ...(o.host ? { host: o.host } : {}), nft: o.nft, log: o.log, resyncMs: o.resyncMs, txChecksum: o.txChecksum, firewall: o.firewall,
      requireForwarding: true, events: nodeEventRecorder(this.clients.core, o.nodeName, 'agent', o.log, this.names.product), ownsDevice: this.names.ownsDevice,
    }, () => this.plan());
  }

  start(): void {
    const { kubeConfig, nodeName, namespace, log } = this.o;
    const onChange = (): void => this.endpoint.trigger('watch');
    this.nodeCache = startCache<V1Node>({
      kubeConfig, log, onChange, path: '/api/v1/nodes', fieldSelector: `metadata.name=${nodeName}`,
      list: () => this.clients.core.listNode({ fieldSelector: `metadata.name=${nodeName}` }),
    });
    this.hubCache = startCache<V1ConfigMap>({
      kubeConfig, log, onChange, path: `/api/v1/namespaces/${namespace}/configmaps`, fieldSelector: `metadata.name=${this.names.hubConfigMap}`,
      list: () => this.clients.core.listNamespacedConfigMap({ namespace, fieldSelector: `metadata.name=${this.names.hubConfigMap}` }),
    });
    void Promise.all([this.nodeCache.synced, this.hubCache.synced]).then(() => this.endpoint.start());
  }

  async stop(): Promise<void> {
    await this.endpoint.stop();
    await Promise.all([this.nodeCache?.stop(), this.hubCache?.stop()]);
  }

  private async plan(): Promise<EndpointPlan | DirectPlan | Problem> {
    const { nodeName, namespace } = this.o;
    const resolved = resolveNodeInputs(nodeName, this.nodeCache?.get(nodeName), this.hubCache?.get(this.names.hubConfigMap, namespace)?.data, `${namespace}/${this.names.hubConfigMap}`, this.o.underlayIP, this.names);
    if (isProblem(resolved)) return resolved;
    const facts = hostFactsOf(await this.reader.interfaces(), resolved);
    this.noteSharedPort(facts, resolved.hub.vni, resolved.hub.port);
    return planNode(resolved, facts);
  }

  private sharedPortNote = '';

  /**
   * Says once (per set of devices) that another VXLAN uses our port or our VNI without clashing:
   * another VNI on our port passes untouched (the firewall checks our VNI only); our VNI on
   * another port is another overlay. (Our VNI on our port is refused by the planner.)
   */
  private noteSharedPort(facts: HostFacts, vni: number, port: number): void {
    const sharing = (facts.foreignVxlans ?? []).filter((f) => (f.port === port) !== (f.vni === vni));
    const note = sharing.map((f) => `${f.dev}:${f.vni}:${f.port}`).join(',');
    if (note === this.sharedPortNote) return;
    this.sharedPortNote = note;
    if (sharing.length > 0) this.o.log.info({ port, vni, others: sharing }, 'other VXLAN devices use our UDP port or our VNI, not both: no clash (the firewall checks our VNI on our port only)');
  }

  notReadyReason(): string | undefined {
    return this.endpoint.notReadyReason();
  }

  notAliveReason(): string | undefined {
    return this.endpoint.notAliveReason();
  }

  status(): Record<string, unknown> {
    return { node: this.o.nodeName, instance: this.names.instance, ...this.endpoint.status() };
  }

  metricsText(): Promise<string> {
    return this.endpoint.metricsText();
  }
}
