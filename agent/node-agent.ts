/**
 * The node agent: watches only its own Node and the hub ConfigMap (so a node joining costs the
 * other nodes nothing), plans the node's overlay endpoint and programs the kernel. Kubernetes
 * events and a slow resync drive one reconcile loop; /readyz says whether the node is converged.
 */
import type { V1ConfigMap, V1Node } from '@kubernetes/client-node';
import { makeClients, type KubeClients } from '../shared/kube/client.ts';
import { startCache, type ResilientCache } from '../shared/kube/informer.ts';
import { HUB_CONFIGMAP } from '../shared/keys.ts';
import { decodeHubInfo, type HubInfo } from '../shared/tables.ts';
import { allocatedOverlayIP, internalIPv4 } from '../shared/node-facts.ts';
import type { IpRoute } from '../shared/iproute.ts';
import type { Logger } from '../shared/log.ts';
import { DONE, ReconcileLoop, retry, type PassOutcome } from '../shared/reconcile-loop.ts';
import type { HealthSource } from '../shared/health.ts';
import { errorMessage } from '../shared/errors.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import { planNodeOverlay } from './overlay/plan.ts';
import { programOverlay } from './overlay/program.ts';
import { underlayMtuOf } from './overlay/observe.ts';

export interface NodeAgentOptions {
  readonly kubeConfig: KubeConfig;
  readonly nodeName: string;
  readonly namespace: string;
  /** Overrides the Node's InternalIP as the local VTEP address. */
  readonly underlayIP?: string;
  readonly ip: IpRoute;
  readonly log: Logger;
  readonly resyncMs: number;
}

interface AgentState {
  converged: boolean;
  reason: string | undefined;
  hub: HubInfo | undefined;
  overlayIP: string | undefined;
  underlayIP: string | undefined;
  device: string | undefined;
  lastReconcile: string | undefined;
  lastChanges: number;
}

export class NodeAgent implements HealthSource {
  private readonly opts: NodeAgentOptions;
  private readonly clients: KubeClients;
  private nodeCache: ResilientCache<V1Node> | undefined;
  private hubCache: ResilientCache<V1ConfigMap> | undefined;
  readonly loop: ReconcileLoop;
  private readonly state: AgentState = { converged: false, reason: 'starting', hub: undefined, overlayIP: undefined, underlayIP: undefined, device: undefined, lastReconcile: undefined, lastChanges: 0 };

  constructor(opts: NodeAgentOptions) {
    this.opts = opts;
    this.clients = makeClients(opts.kubeConfig);
    this.loop = new ReconcileLoop({ name: 'node-overlay', pass: () => this.pass(), log: opts.log, resyncMs: opts.resyncMs });
  }

  start(): void {
    const { kubeConfig, nodeName, namespace, log } = this.opts;
    const onChange = (): void => this.loop.trigger('watch');
    this.nodeCache = startCache<V1Node>({
      kubeConfig, log, onChange, path: '/api/v1/nodes', fieldSelector: `metadata.name=${nodeName}`,
      list: () => this.clients.core.listNode({ fieldSelector: `metadata.name=${nodeName}` }),
    });
    this.hubCache = startCache<V1ConfigMap>({
      kubeConfig, log, onChange, path: `/api/v1/namespaces/${namespace}/configmaps`, fieldSelector: `metadata.name=${HUB_CONFIGMAP}`,
      list: () => this.clients.core.listNamespacedConfigMap({ namespace, fieldSelector: `metadata.name=${HUB_CONFIGMAP}` }),
    });
    void Promise.all([this.nodeCache.synced, this.hubCache.synced]).then(() => this.loop.start());
  }

  async stop(): Promise<void> {
    this.loop.stop();
    await Promise.all([this.nodeCache?.stop(), this.hubCache?.stop()]);
  }

  private notReady(reason: string, outcome: PassOutcome): PassOutcome {
    if (this.state.reason !== reason) this.opts.log.info({ node: this.opts.nodeName, reason }, 'not converged');
    this.state.converged = false;
    this.state.reason = reason;
    return outcome;
  }

  private async pass(): Promise<PassOutcome> {
    const { nodeName, namespace, ip, log } = this.opts;
    const node = this.nodeCache?.get(nodeName);
    if (!node) return this.notReady(`Node ${nodeName} not found in the API`, DONE);
    const hubCm = this.hubCache?.get(HUB_CONFIGMAP, namespace);
    if (!hubCm) return this.notReady(`waiting for hub info (ConfigMap ${namespace}/${HUB_CONFIGMAP})`, DONE);
    let hub: HubInfo;
    try {
      hub = decodeHubInfo(hubCm.data);
    } catch (err) {
      return this.notReady(errorMessage(err), DONE);
    }
    this.state.hub = hub;
    const overlayIP = allocatedOverlayIP(node);
    this.state.overlayIP = overlayIP;
    if (!overlayIP) return this.notReady('waiting for the coordinator to allocate this node an overlay IP', DONE);
    const underlayIP = this.opts.underlayIP ?? internalIPv4(node);
    this.state.underlayIP = underlayIP;
    if (!underlayIP) return this.notReady(`Node ${nodeName} has no IPv4 InternalIP and no --underlay-ip was given`, DONE);
    const underlayMtu = await underlayMtuOf(ip, underlayIP);
    if (underlayMtu === undefined) return this.notReady(`no interface on this host has the underlay IP ${underlayIP}`, retry(`underlay IP ${underlayIP} not on any interface`));
    const desired = planNodeOverlay(hub, { underlayIP, underlayMtu }, overlayIP);
    this.state.device = desired.vxlan.name;
    const ops = await programOverlay(ip, desired, log);
    this.state.lastChanges = ops.length;
    this.state.lastReconcile = new Date().toISOString();
    if (!this.state.converged) log.info({ node: nodeName, dev: desired.vxlan.name, overlayIP, vtep: underlayIP }, 'overlay converged');
    this.state.converged = true;
    this.state.reason = undefined;
    return DONE;
  }

  notReadyReason(): string | undefined {
    return this.state.converged ? undefined : (this.state.reason ?? 'not converged');
  }

  status(): Record<string, unknown> {
    const { hub, ...rest } = this.state;
    return { node: this.opts.nodeName, ...rest, hub: hub ?? null };
  }
}
