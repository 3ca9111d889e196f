/**
 * Gateway mode: the Linux box that is the external device (hub role). It reads the hub info and
 * the whole peer table and programs its own namespace: the VXLAN device with the device overlay
 * IP, then per node an FDB entry, a static neighbour and a route to each pod CIDR.
 */
import type { KubeConfig, V1ConfigMap } from '@kubernetes/client-node';
import { makeClients, type KubeClients } from '../../shared/kube/client.ts';
import { startCache, type ResilientCache } from '../../shared/kube/informer.ts';
import { HUB_CONFIGMAP, LABEL_TABLE } from '../../shared/keys.ts';
import { decodeHubInfo, decodePeer, type HubInfo, type Peer } from '../../shared/tables.ts';
import type { IpRoute } from '../../shared/iproute.ts';
import type { Logger } from '../../shared/log.ts';
import { DONE, ReconcileLoop, retry, type PassOutcome } from '../../shared/reconcile-loop.ts';
import type { HealthSource } from '../../shared/health.ts';
import { errorMessage } from '../../shared/errors.ts';
import { planGatewayOverlay } from '../overlay/plan.ts';
import { programOverlay } from '../overlay/program.ts';
import { underlayMtuOf } from '../overlay/observe.ts';

export interface GatewayOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** This device's VTEP (underlay) address; must be one of the hub's deviceVTEPs. */
  readonly localIP: string;
  readonly ip: IpRoute;
  readonly log: Logger;
  readonly resyncMs: number;
}

export function peersFromShards(shards: readonly V1ConfigMap[], log: Logger): Peer[] {
  const peers: Peer[] = [];
  for (const cm of shards) {
    for (const [node, value] of Object.entries(cm.data ?? {})) {
      const p = decodePeer(node, value);
      if (p instanceof Error) log.warn({ configMap: cm.metadata?.name, node, err: p.message }, 'skipping malformed peer entry');
      else peers.push(p);
    }
  }
  return peers;
}

export class Gateway implements HealthSource {
  private readonly opts: GatewayOptions;
  private readonly clients: KubeClients;
  private hubCache: ResilientCache<V1ConfigMap> | undefined;
  private peerCache: ResilientCache<V1ConfigMap> | undefined;
  readonly loop: ReconcileLoop;
  private converged = false;
  private reason: string | undefined = 'starting';
  private hub: HubInfo | undefined;
  private programmedPeers = 0;
  private skipped: readonly { node: string; reason: string }[] = [];

  constructor(opts: GatewayOptions) {
    this.opts = opts;
    this.clients = makeClients(opts.kubeConfig);
    this.loop = new ReconcileLoop({ name: 'gateway-overlay', pass: () => this.pass(), log: opts.log, resyncMs: opts.resyncMs });
  }

  start(): void {
    const { kubeConfig, namespace, log } = this.opts;
    const onChange = (): void => this.loop.trigger('watch');
    const path = `/api/v1/namespaces/${namespace}/configmaps`;
    this.hubCache = startCache<V1ConfigMap>({
      kubeConfig, log, onChange, path, fieldSelector: `metadata.name=${HUB_CONFIGMAP}`,
      list: () => this.clients.core.listNamespacedConfigMap({ namespace, fieldSelector: `metadata.name=${HUB_CONFIGMAP}` }),
    });
    this.peerCache = startCache<V1ConfigMap>({
      kubeConfig, log, onChange, path, labelSelector: `${LABEL_TABLE}=peers`,
      list: () => this.clients.core.listNamespacedConfigMap({ namespace, labelSelector: `${LABEL_TABLE}=peers` }),
    });
    void Promise.all([this.hubCache.synced, this.peerCache.synced]).then(() => this.loop.start());
  }

  async stop(): Promise<void> {
    this.loop.stop();
    await Promise.all([this.hubCache?.stop(), this.peerCache?.stop()]);
  }

  private notReady(reason: string, outcome: PassOutcome): PassOutcome {
    if (this.reason !== reason) this.opts.log.info({ reason }, 'not converged');
    this.converged = false;
    this.reason = reason;
    return outcome;
  }

  private async pass(): Promise<PassOutcome> {
    const { namespace, ip, log, localIP } = this.opts;
    const hubCm = this.hubCache?.get(HUB_CONFIGMAP, namespace);
    if (!hubCm) return this.notReady(`waiting for hub info (ConfigMap ${namespace}/${HUB_CONFIGMAP})`, DONE);
    try {
      this.hub = decodeHubInfo(hubCm.data);
    } catch (err) {
      return this.notReady(errorMessage(err), DONE);
    }
    const underlayMtu = await underlayMtuOf(ip, localIP);
    if (underlayMtu === undefined) return this.notReady(`no interface here has the VTEP address ${localIP}`, retry(`VTEP ${localIP} not on any interface`));
    const peers = peersFromShards(this.peerCache?.list() ?? [], log);
    const plan = planGatewayOverlay(this.hub, { underlayIP: localIP, underlayMtu }, peers);
    for (const s of plan.skipped) log.warn({ node: s.node, reason: s.reason }, 'peer not programmed');
    this.skipped = plan.skipped;
    await programOverlay(ip, plan.desired, log);
    this.programmedPeers = plan.desired.neighbours.length;
    this.converged = true;
    this.reason = undefined;
    return DONE;
  }

  notReadyReason(): string | undefined {
    return this.converged ? undefined : (this.reason ?? 'not converged');
  }

  status(): Record<string, unknown> {
    return { localIP: this.opts.localIP, converged: this.converged, reason: this.reason ?? null, hub: this.hub ?? null, programmedPeers: this.programmedPeers, skipped: this.skipped };
  }
}
