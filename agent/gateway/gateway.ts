/**
 * Gateway mode: the Linux box that is the external device (hub role). It reads the hub info and
 * the whole peer table and keeps its overlay endpoint (../endpoint.ts) programmed: the VXLAN
 * device with the device overlay IP, then per node an FDB entry, a static neighbour and a route
 * to each pod CIDR; its firewall table accepts VXLAN only from node VTEPs.
 */
import type { KubeConfig, V1ConfigMap } from '@kubernetes/client-node';
import { makeClients, type KubeClients } from '../../shared/kube/client.ts';
import { startCache, type ResilientCache } from '../../shared/kube/informer.ts';
import { DEFAULT_NAMES, DEVICE_STATUS_SUMMARY_KEY, type InstanceNames } from '../../shared/keys.ts';
import { decodeHubInfo, decodePeer, type HubInfo, type Peer } from '../../shared/tables.ts';
import type { Logger } from '../../shared/log.ts';
import type { HealthSource } from '../../shared/health.ts';
import { errorMessage } from '../../shared/errors.ts';
import { planGatewayOverlay } from '../overlay/plan.ts';
import { interfaceOfAddress, readerOf, type KernelReader } from '../overlay/observe.ts';
import { OverlayEndpoint, type KernelSettings } from '../endpoint.ts';
import { DeviceStatusPublisher } from '../../shared/kube/device-status.ts';
import type { EndpointPlan, Problem } from '../plan-types.ts';

export interface GatewayOptions extends KernelSettings {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** This device's VTEP (underlay) address; must be one of the hub's deviceVTEPs. */
  readonly localIP: string;
  /** The instance this gateway serves (default: the default instance). */
  readonly names?: InstanceNames;
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
  private readonly o: GatewayOptions;
  private readonly clients: KubeClients;
  private hubCache: ResilientCache<V1ConfigMap> | undefined;
  private peerCache: ResilientCache<V1ConfigMap> | undefined;
  readonly endpoint: OverlayEndpoint;
  private hub: HubInfo | undefined;
  private skipped: readonly { node: string; reason: string }[] = [];
  private peers = 0;
  private programmedNodes: readonly string[] = [];
  private readonly deviceStatus: DeviceStatusPublisher;
  private readonly names: InstanceNames;
  private readonly reader: KernelReader;

  constructor(o: GatewayOptions) {
    this.o = o;
    this.names = o.names ?? DEFAULT_NAMES;
    this.clients = makeClients(o.kubeConfig);
    this.reader = readerOf(o);
    this.endpoint = new OverlayEndpoint({
      role: 'gateway', ip: o.ip, reader: this.reader, ...(o.writer ? { writer: o.writer } : {}), ...(o.host ? { host: o.host } : {}), nft: o.nft, log: o.log, resyncMs: o.resyncMs, txChecksum: o.txChecksum, firewall: o.firewall,
      requireForwarding: false, onProgrammed: () => this.publishProgrammed(), ownsDevice: this.names.ownsDevice,
    }, () => this.plan());
    this.deviceStatus = new DeviceStatusPublisher({ core: this.clients.core, namespace: o.namespace, name: this.names.deviceStatusConfigMap, product: this.names.product, log: o.log, create: false, prune: true });
  }

  start(): void {
    const { kubeConfig, namespace, log } = this.o;
    const onChange = (): void => this.endpoint.trigger('watch');
    const path = `/api/v1/namespaces/${namespace}/configmaps`;
    this.hubCache = startCache<V1ConfigMap>({
      kubeConfig, log, onChange, path, fieldSelector: `metadata.name=${this.names.hubConfigMap}`,
      list: () => this.clients.core.listNamespacedConfigMap({ namespace, fieldSelector: `metadata.name=${this.names.hubConfigMap}` }),
    });
    this.peerCache = startCache<V1ConfigMap>({
      kubeConfig, log, onChange, path, labelSelector: `${this.names.labelTable}=peers`,
      list: () => this.clients.core.listNamespacedConfigMap({ namespace, labelSelector: `${this.names.labelTable}=peers` }),
    });
    void Promise.all([this.hubCache.synced, this.peerCache.synced]).then(() => this.endpoint.start());
  }

  /** Tells `status` which nodes this gateway has programmed (and which it had to skip, why). */
  private publishProgrammed(): void {
    const data: Record<string, string> = { [DEVICE_STATUS_SUMMARY_KEY]: 'linux' };
    for (const n of this.programmedNodes) data[n] = 'programmed';
    for (const s of this.skipped) data[s.node] = `failed: ${s.reason}`;
    this.deviceStatus.publish(data);
  }

  async stop(): Promise<void> {
    this.deviceStatus.stop();
    await this.endpoint.stop();
    await Promise.all([this.hubCache?.stop(), this.peerCache?.stop()]);
  }

  private async plan(): Promise<EndpointPlan | Problem> {
    const { namespace, log, localIP } = this.o;
    const hubCm = this.hubCache?.get(this.names.hubConfigMap, namespace);
    if (!hubCm) return { kind: 'waiting', reason: `waiting for hub info (ConfigMap ${namespace}/${this.names.hubConfigMap})` };
    let hub: HubInfo;
    try {
      hub = decodeHubInfo(hubCm.data);
    } catch (err) {
      return { kind: 'invalid', reason: errorMessage(err) };
    }
    this.hub = hub;
    const underlay = interfaceOfAddress(await this.reader.interfaces(), localIP);
    if (underlay === undefined) return { kind: 'invalid', reason: `no interface here has the VTEP address ${localIP}` };
    const peers = peersFromShards(this.peerCache?.list() ?? [], log);
    let plan;
    try {
      plan = planGatewayOverlay(hub, { underlayIP: localIP, underlayMtu: underlay.mtu, names: this.names, underlay: { device: underlay.name, cidrs: underlay.cidrs } }, peers);
    } catch (err) {
      return { kind: 'invalid', reason: errorMessage(err) };
    }
    const skippedKey = JSON.stringify(plan.skipped);
    if (skippedKey !== JSON.stringify(this.skipped)) for (const s of plan.skipped) log.warn({ node: s.node, reason: s.reason }, 'peer not programmed');
    this.skipped = plan.skipped;
    this.peers = plan.desired.neighbours.length;
    const skippedNodes = new Set(plan.skipped.map((x) => x.node));
    this.programmedNodes = peers.map((x) => x.node).filter((n) => !skippedNodes.has(n));
    const { desired } = plan;
    return {
      overlay: desired,
      firewall: { table: this.names.firewallTable, vxlanDevice: desired.vxlan.name, port: hub.port, vni: hub.vni, underlayDevice: underlay?.name, allowedVTEPs: desired.fdb.map((e) => e.dst), underlayFamily: localIP.includes(':') ? 6 : 4, deviceOverlayIPs: [], podCIDRs: [] },
    };
  }

  notReadyReason(): string | undefined {
    return this.endpoint.notReadyReason();
  }

  notAliveReason(): string | undefined {
    return this.endpoint.notAliveReason();
  }

  status(): Record<string, unknown> {
    return { localIP: this.o.localIP, hub: this.hub ?? null, programmedPeers: this.peers, skipped: this.skipped, ...this.endpoint.status() };
  }

  metricsText(): Promise<string> {
    return this.endpoint.metricsText();
  }
}
