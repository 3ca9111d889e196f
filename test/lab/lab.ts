/**
 * A whole Chorus kube-router system on one machine: the embedded API server, K coordinators,
 * the Linux device running `gateway`, and N nodes with M pods each, every process in its own
 * network namespace and talking over the lab's underlay as it would across a real network.
 * Supervised like kubelet would; torn down completely by destroy().
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { release } from 'node:os';
import { CoreV1Api, CustomObjectsApi, KubeConfig, KubernetesObjectApi, type KubernetesObject, type V1Node } from '@kubernetes/client-node';
import type { Logger } from '../../shared/log.ts';
import { DEFAULT_NAMES, DEFAULT_NAMESPACE, instanceNames } from '../../shared/keys.ts';
import { mergePatch } from '../../shared/kube/client.ts';
import { allocatedOverlayIP } from '../../shared/node-facts.ts';
import { errorMessage, isNotFound } from '../../shared/errors.ts';
import { sleep } from '../../shared/backoff.ts';
import { twinAddress } from '../../shared/ip.ts';
import { kubeconfigYaml } from '../apiserver/server.ts';
import {
  AGENT_B_HEALTH_PORT, AGENT_B_STATUS_PORT, DEVICE_B_IP, INSTANCE_B, OVERLAY_NETWORK_B, VNI_B,
  AGENT_HEALTH_PORT, API_PORT, CONTROL_PLANE_IP, COORDINATOR_HEALTH_PORT, DEVICE_IP, DEVICE_IPV6, GATEWAY_HEALTH_PORT, GATEWAY_STATUS_PORT, LAB_VNI, MAX_NODES,
  OVERLAY_NETWORK, OVERLAY_NETWORK_IPV6, UNDERLAY_NETWORK, UNDERLAY_PREFIX, initialSegment, namesFor, nodeName, nodeUnderlayIP, nodeUnderlayIPv6, podCIDR, podCIDRv6, podIP, podIPv6, routedNodeIP,
  type LabIpFamily, type LabRouting, type Names, type Segment,
} from './addressing.ts';
import { addUnderlayHost, addUnderlayIPv6, attachNode, createCore, createNode, createRouter, deleteAllWithPrefix, deleteNamespaces, detachNode, ping, removeUnderlayPort, routeViaRouter } from './netns.ts';
import { SupervisedProcess, type LabComponents, type ProcessSpec } from './processes.ts';
import { makeServerCertificate } from '../emulators/tls.ts';
import { DEPLOY_DIR, loadManifests } from '../support/manifests.ts';
import { execa } from 'execa';
import { loadAll } from 'js-yaml';

export const LAB_DEVICE_USER = 'chorus-lab';

/** What a lab node reports of itself (a network namespace on this machine's kernel, no kubelet). */
const LAB_NODE_INFO = {
  kubeletVersion: 'v1.34.0-chorus-lab', kubeProxyVersion: '', osImage: 'chorus-kube-router lab (network namespace)', kernelVersion: release(),
  containerRuntimeVersion: 'none://lab', operatingSystem: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch,
  machineID: '', systemUUID: '', bootID: '',
};

export type LabIpam = 'node' | 'calico' | 'cilium';

export interface LabOptions {
  readonly nodes: number;
  /** Where nodes' pod CIDRs are published: spec.podCIDRs, Calico BlockAffinities or CiliumNodes. */
  readonly ipam?: LabIpam;
  readonly podsPerNode: number;
  readonly device: 'linux' | 'citrix' | 'f5';
  readonly coordinators: number;
  readonly dir: string;
  readonly prefix: string;
  readonly log: Logger;
  /** Lease timings for the lab's coordinators (shorter than production so failovers are quick). */
  readonly leaseArgs?: readonly string[];
  /** Also run instance b (deploy/instance-b) on the same nodes, programming this second device. */
  readonly secondInstance?: 'citrix' | 'f5';
  /** Run coordinators, agents and the gateway from sources (default) or from the bundle in dist/. */
  readonly components?: LabComponents;
  /**
   * The coordinator's --routing (default vxlan). auto: the even-numbered nodes sit behind a
   * router, off the device's subnet, and are tunneled; the others are routed directly.
   */
  readonly routing?: LabRouting;
  /** ipv4 (default), or dual: dual-stack pods and overlay (--overlay-network-ipv6) over the IPv4 underlay. */
  readonly ipFamily?: LabIpFamily;
}

/** `ip`: the pod's IPv4 address; `ips`: every address it has (IPv4 first, then IPv6 in a dual-stack lab). */
export interface PodDoc { name: string; netns: string; ip: string; ips: string[] }
export interface NodeDoc {
  name: string; netns: string; underlayIP: string; overlayIP: string | null; podCIDRs: string[];
  /** Dual-stack lab: the node's IPv6 overlay address once allocated (the twin of overlayIP); null otherwise. */
  overlayIPv6: string | null;
  agentPid: number | null; agentHealthURL: string; pods: PodDoc[];
  /** How the device reaches this node's pods, as the coordinator annotated the Node (vxlan until it has). */
  path: 'vxlan' | 'direct';
}
export interface LabDocument {
  prefix: string;
  kubeconfig: string;
  /** Kubeconfig with the in-lab address of the API server, as the lab's own processes use it. */
  labKubeconfig: string;
  dir: string;
  /** auditFile: every request, one JSON line each (verb, resource, namespace, name, user); each component has its own user. */
  apiServer: { url: string; labURL: string; pid: number | null; auditFile: string; caFile: string };
  supervisorPid: number;
  /** Where coordinators, agents and the gateway run from: the TypeScript sources or the bundle (dist/). */
  components: LabComponents;
  /** The coordinator's --routing. */
  routing: LabRouting;
  /** ipv4, or dual (dual-stack overlay and pods). */
  ipFamily: LabIpFamily;
  device: { type: string; netns: string; underlayIP: string; overlayIPs: string[]; overlayIPv6s: string[]; pid: number | null; api: { url: string; kind: string; username?: string; password?: string; caFile?: string } };
  coordinators: { pid: number | null; identity: string; healthURL: string }[];
  nodes: NodeDoc[];
  /** Instance b (`lab up --second-instance`), or null: its device, coordinator and one agent per node. */
  second: SecondInstanceDoc | null;
}

export interface SecondInstanceDoc {
  instance: string;
  vni: number;
  overlayNetwork: string;
  device: { type: string; netns: string; underlayIP: string; overlayIPs: string[]; pid: number | null; api: { url: string; kind: string; username: string; password: string; caFile: string } };
  coordinator: { pid: number | null; identity: string };
  /** Node name -> pid of that node's instance-b agent. */
  agents: Record<string, number | null>;
}

interface LabNode {
  index: number; pods: number; agent: SupervisedProcess | undefined; agentB: SupervisedProcess | undefined;
  /** Where it is plugged in now, and its address there (its Node's InternalIP). */
  segment: Segment; underlayIP: string;
  /** The address its agent's health endpoint listens on (the one it started with). */
  healthIP: string;
}

export { newPrefix } from './addressing.ts';

export class Lab {
  readonly opts: LabOptions;
  readonly names: Names;
  private readonly token = randomBytes(24).toString('hex');
  /** Lab-only device credentials (the emulated ADC's), printed in the lab document. */
  private readonly devicePassword = randomBytes(12).toString('hex');
  private apiServer: SupervisedProcess | undefined;
  private gateway: SupervisedProcess | undefined;
  private coordinators: SupervisedProcess[] = [];
  private deviceB: SupervisedProcess | undefined;
  private coordinatorB: SupervisedProcess | undefined;
  private readonly nodes = new Map<string, LabNode>();
  private forwarder: Server | undefined;
  private hostURL = '';
  private core: CoreV1Api | undefined;
  private destroyed = false;
  /** Called whenever process ids or membership change (the supervisor rewrites its state file). */
  onChange: () => void = () => undefined;

  constructor(opts: LabOptions) {
    if (opts.nodes < 0 || opts.nodes > MAX_NODES) throw new Error(`--nodes ${opts.nodes} is outside 0..${MAX_NODES}`);
    if (opts.coordinators < 1 || opts.coordinators > 5) throw new Error(`--coordinators ${opts.coordinators} is outside 1..5`);
    this.opts = opts;
    this.names = namesFor(opts.prefix);
  }

  get ipam(): LabIpam {
    return this.opts.ipam ?? 'node';
  }

  get routing(): LabRouting {
    return this.opts.routing ?? 'vxlan';
  }

  /** Dual-stack pods and overlay: --ip-family dual, and ipv6 (which adds the IPv6 underlay). */
  get dualStack(): boolean {
    return this.opts.ipFamily === 'dual' || this.opts.ipFamily === 'ipv6';
  }

  /** --ip-family ipv6: the VXLAN runs over IPv6 (the device's VTEP and the nodes' InternalIPs of IPv6). */
  get ipv6Underlay(): boolean {
    return this.opts.ipFamily === 'ipv6';
  }

  /** The device's VTEP: its IPv4 underlay address, or its IPv6 one on an IPv6 underlay. */
  get deviceVTEP(): string {
    return this.ipv6Underlay ? DEVICE_IPV6 : DEVICE_IP;
  }

  /** Node i's pod CIDRs, IPv4 first (as a dual-stack cluster's spec.podCIDRs lists them). */
  private podCIDRsOf(index: number): string[] {
    return this.dualStack ? [podCIDR(index), podCIDRv6(index)] : [podCIDR(index)];
  }

  /**
   * The coordinator's routing settings: with auto, the device's own subnet is the direct one,
   * given to the Linux gateway's coordinator and read from the ADC (its VTEP SNIP) or the BIG-IP
   * (its VTEP self IP) by theirs.
   */
  private routingArgs(): string[] {
    switch (this.routing) {
      case 'vxlan': return [];
      case 'direct': return ['--routing', 'direct'];
      case 'auto': return ['--routing', 'auto', ...(this.opts.device === 'linux' ? ['--direct-subnets', UNDERLAY_NETWORK] : [])];
    }
  }

  get kubeconfigPath(): string { return join(this.opts.dir, 'kubeconfig'); }
  get labKubeconfigPath(): string { return join(this.opts.dir, 'kubeconfig.lab'); }
  /** The gateway's kubeconfig: it runs outside the cluster, with a token minted for its ServiceAccount. */
  get gatewayKubeconfigPath(): string { return join(this.opts.dir, 'kubeconfig.gateway'); }
  /** Where a component's ServiceAccount token, CA and namespace live (mounted into its processes). */
  serviceAccountDir(component: LabIdentity): string { return join(this.opts.dir, 'serviceaccounts', component); }
  get auditFile(): string { return join(this.opts.dir, 'apiserver-audit.jsonl'); }
  private get apiTlsDir(): string { return join(this.opts.dir, 'apiserver-tls'); }
  private logFile(name: string): string { return join(this.opts.dir, 'logs', `${name}.log`); }

  private supervise(name: string, netns: string, args: string[], pod: Pick<ProcessSpec, 'serviceAccount' | 'env'> = {}): SupervisedProcess {
    const p = new SupervisedProcess({ name, netns, args, logFile: this.logFile(name), components: this.opts.components ?? 'sources', ...pod }, this.opts.log, () => this.onChange());
    p.start();
    return p;
  }

  /** A process run as a pod of a component: in-cluster configuration with the component's ServiceAccount. */
  podOf(component: 'agent' | 'coordinator' | 'agent-b' | 'coordinator-b', env: Record<string, string> = {}): Pick<ProcessSpec, 'serviceAccount' | 'env'> {
    return { serviceAccount: { dir: this.serviceAccountDir(component), host: CONTROL_PLANE_IP, port: API_PORT }, env: { POD_NAMESPACE: DEFAULT_NAMESPACE, ...env } };
  }

  /** Builds the topology and starts every process; resolves when the API answers. */
  async start(progress: (msg: string) => void): Promise<void> {
    const { dir, log } = this.opts;
    mkdirSync(join(dir, 'logs'), { recursive: true });
    progress(`building network namespaces (prefix ${this.opts.prefix})`);
    await createCore(this.names, CONTROL_PLANE_IP, DEVICE_IP);
    if (this.ipv6Underlay) await addUnderlayIPv6(this.names.device, DEVICE_IPV6);
    if (this.routing === 'auto') await createRouter(this.names, [this.names.controlPlane, this.names.device]);
    const apiSocket = join(dir, 'api.sock');
    const apiTls = await makeServerCertificate(this.apiTlsDir, { ips: ['127.0.0.1', CONTROL_PLANE_IP], dnsNames: API_DNS_NAMES, commonName: 'chorus-lab-apiserver' });
    const ca = readFileSync(apiTls.caFile);
    const labURL = `https://${CONTROL_PLANE_IP}:${API_PORT}`;
    writeFileSync(join(dir, 'token'), this.token, { mode: 0o600 });
    writeFileSync(this.labKubeconfigPath, kubeconfigYaml(labURL, this.token, ca), { mode: 0o600 });
    const users: Record<string, string> = {};
    for (const c of [...LAB_COMPONENTS, ...(this.opts.secondInstance ? INSTANCE_B_COMPONENTS : [])]) {
      const t = randomBytes(24).toString('hex');
      users[t] = serviceAccountUser(c);
      const saDir = this.serviceAccountDir(c);
      mkdirSync(saDir, { recursive: true, mode: 0o700 });
      writeFileSync(join(saDir, 'token'), t, { mode: 0o600 });
      writeFileSync(join(saDir, 'ca.crt'), ca);
      writeFileSync(join(saDir, 'namespace'), DEFAULT_NAMESPACE);
      if (c === 'gateway') writeFileSync(this.gatewayKubeconfigPath, kubeconfigYaml(labURL, t, ca, 'chorus-lab-gateway'), { mode: 0o600 });
    }
    writeFileSync(join(dir, 'users.json'), JSON.stringify(users), { mode: 0o600 });
    progress('starting the embedded API server');
    this.apiServer = this.supervise('apiserver', this.names.controlPlane, [
      'lab', 'apiserver', '--listen', `${CONTROL_PLANE_IP}:${API_PORT}`, '--socket', apiSocket, '--tls-dir', this.apiTlsDir,
      '--token-file', join(dir, 'token'), '--state-file', join(dir, 'apiserver-state.json'),
      '--users-file', join(dir, 'users.json'), '--audit-file', this.auditFile,
      ...(this.ipam !== 'node' ? ['--crds', this.ipam] : []),
    ]);
    this.forwarder = await forwardLoopbackTo(apiSocket);
    const addr = this.forwarder.address();
    if (addr === null || typeof addr === 'string') throw new Error('forwarder has no TCP address');
    this.hostURL = `https://127.0.0.1:${addr.port}`;
    writeFileSync(this.kubeconfigPath, kubeconfigYaml(this.hostURL, this.token, ca), { mode: 0o600 });
    this.core = this.kubeConfig().makeApiClient(CoreV1Api);
    await this.waitForApi();
    progress('installing the namespace, ServiceAccounts, RBAC and admission policy of deploy/');
    await this.installRbac();
    if (this.opts.secondInstance) await this.startSecondInstance(progress);
    if (this.opts.device === 'citrix') {
      progress('starting the NITRO emulator as the Citrix ADC');
      await this.startDeviceEmulator('nitro-emulator', ['--snip', `${DEVICE_IP}/${UNDERLAY_PREFIX}`]);
    }
    if (this.opts.device === 'f5') {
      progress('starting the iControl REST emulator as the F5 BIG-IP');
      await this.startDeviceEmulator('f5-emulator', ['--self', `${DEVICE_IP}/${UNDERLAY_PREFIX}`, ...(this.ipv6Underlay ? ['--self6', `${DEVICE_IPV6}/64`] : [])]);
    }
    progress(`starting ${this.opts.coordinators} coordinator(s)${this.opts.device === 'linux' ? ' and the gateway' : ''}`);
    for (let k = 1; k <= this.opts.coordinators; k++) this.coordinators.push(this.startCoordinator(k));
    if (this.opts.device === 'linux') {
      this.gateway = this.supervise('gateway', this.names.device, [
        'gateway', '--kubeconfig', this.gatewayKubeconfigPath, '--local-ip', this.deviceVTEP,
        '--health-listen', `${DEVICE_IP}:${GATEWAY_HEALTH_PORT}`, '--status-listen', `${DEVICE_IP}:${GATEWAY_STATUS_PORT}`,
      ]);
    }
    for (let i = 1; i <= this.opts.nodes; i++) {
      progress(`creating node ${i}/${this.opts.nodes} with ${this.opts.podsPerNode} pod(s)`);
      await this.addNode(this.opts.podsPerNode);
    }
    log.info({ prefix: this.opts.prefix, nodes: this.opts.nodes }, 'lab started');
  }

  /** deploy/'s namespace, RBAC and admission policy, applied as an operator's `kubectl apply -k deploy/` would: the API server enforces them. */
  private async installRbac(): Promise<void> {
    const objects = loadManifests().filter((m) => ['base/namespace.yaml', 'base/rbac.yaml', 'base/admission-policy.yaml'].includes(m.file));
    const client = KubernetesObjectApi.makeApiClient(this.kubeConfig());
    for (const { file: _file, ...object } of objects) {
      // with the annotation `kubectl apply` keeps, so that a later `kubectl apply -k deploy/` finds them unchanged
      // (its text as kubectl writes it: keys sorted, as Go encodes a map, with an empty annotations map)
      const lastApplied = `${sortedJson({ ...object, metadata: { ...object.metadata, annotations: {} } })}\n`;
      const applied = { ...object, metadata: { ...object.metadata, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': lastApplied } } };
      await client.create(applied as KubernetesObject).catch(ignoreAlreadyExists);
    }
  }

  private get tlsDir(): string { return join(this.opts.dir, 'device-tls'); }
  private get credentialsDir(): string { return join(this.opts.dir, 'device-credentials'); }

  /** The emulated ADC or BIG-IP: its TLS certificate, lab-only credentials, and the emulator process. */
  private async startDeviceEmulator(command: 'nitro-emulator' | 'f5-emulator', extra: readonly string[]): Promise<void> {
    await makeServerCertificate(this.tlsDir, [DEVICE_IP]);
    this.writeDeviceCredentials();
    this.gateway = this.supervise(command, this.names.device, [
      'lab', command, '--listen', `${DEVICE_IP}:443`, '--tls-dir', this.tlsDir, '--credentials-dir', this.credentialsDir, ...extra,
    ]);
  }

  /** The lab-only credentials both emulated devices accept. */
  private writeDeviceCredentials(): void {
    mkdirSync(this.credentialsDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(this.credentialsDir, 'username'), LAB_DEVICE_USER, { mode: 0o600 });
    writeFileSync(join(this.credentialsDir, 'password'), this.devicePassword, { mode: 0o600 });
  }

  private deviceArgs(): string[] {
    if (this.opts.device === 'linux') return [];
    return ['--device-type', this.opts.device, '--device-address', `https://${DEVICE_IP}`, '--ca-file', join(this.tlsDir, 'ca.crt'), '--credentials-dir', this.credentialsDir];
  }

  private startCoordinator(k: number): SupervisedProcess {
    return this.supervise(`coordinator-${k}`, this.names.controlPlane, [
      'coordinator', '--identity', `coordinator-${k}`,
      '--overlay-network', OVERLAY_NETWORK, ...(this.dualStack ? ['--overlay-network-ipv6', OVERLAY_NETWORK_IPV6] : []), '--device-vtep', this.deviceVTEP, ...this.deviceArgs(), ...this.routingArgs(),
      '--health-listen', `${CONTROL_PLANE_IP}:${COORDINATOR_HEALTH_PORT + k}`,
      ...(this.opts.leaseArgs ?? ['--lease-duration', '8s', '--renew-deadline', '5s', '--retry-period', '1s']),
    ], this.podOf('coordinator'));
  }

  private async waitForApi(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await this.api().listNamespace();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`the embedded API server did not answer within 30 s: ${errorMessage(err)} (log: ${this.logFile("apiserver")})`, { cause: err });
        await sleep(100);
      }
    }
  }

  api(): CoreV1Api {
    if (!this.core) throw new Error('lab not started');
    return this.core;
  }

  private nextIndex(): number {
    const used = new Set([...this.nodes.values()].map((n) => n.index));
    for (let i = 1; i <= MAX_NODES; i++) if (!used.has(i)) return i;
    throw new Error(`the lab holds at most ${MAX_NODES} nodes`);
  }

  /** Adds a node: namespace and pods, the Node object, and (unless agent is false) its agent. */
  async addNode(pods: number, agent = true): Promise<NodeDoc> {
    const index = this.nextIndex();
    const name = nodeName(index);
    const segment = initialSegment(this.routing, index);
    const underlayIP = segment === 'switch' ? nodeUnderlayIP(index) : routedNodeIP(index);
    await createNode(this.names, index, underlayIP, pods, segment, this.dualStack);
    // an IPv6 underlay: the node's IPv6 address is its VTEP, listed first among its InternalIPs (an IPv6-primary cluster)
    const vtepIP = this.ipv6Underlay ? nodeUnderlayIPv6(index) : underlayIP;
    if (this.ipv6Underlay) await addUnderlayIPv6(this.names.node(index), vtepIP);
    const internalIPs = this.ipv6Underlay ? [vtepIP, underlayIP] : [underlayIP];
    const node: V1Node = {
      metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux' } },
      spec: this.ipam === 'node' ? { podCIDR: podCIDR(index), podCIDRs: this.podCIDRsOf(index) } : {},
      status: {
        addresses: [...internalIPs.map((address) => ({ type: 'InternalIP', address })), { type: 'Hostname', address: name }],
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'lab node' }],
        nodeInfo: LAB_NODE_INFO,
      },
    };
    await this.api().createNode({ body: node });
    await this.publishPodCIDRs(name, this.podCIDRsOf(index));
    const supervised = agent ? this.supervise(`agent-${name}`, this.names.node(index), ['agent', ...agentArgs(underlayIP)], this.podOf('agent', { NODE_NAME: name })) : undefined;
    const agentB = agent && this.opts.secondInstance
      ? this.supervise(`agent-b-${name}`, this.names.node(index), ['agent', ...agentArgsB(underlayIP)], this.podOf('agent-b', { NODE_NAME: name }))
      : undefined;
    this.nodes.set(name, { index, pods, agent: supervised, agentB, segment, underlayIP: vtepIP, healthIP: underlayIP });
    this.onChange();
    return this.nodeDoc(name, undefined);
  }

  /** With Calico or Cilium IPAM, the node's pod CIDR lives in their custom resources. */
  private async publishPodCIDRs(node: string, cidrs: readonly string[]): Promise<void> {
    if (this.ipam === 'node') return;
    const custom = this.kubeConfig().makeApiClient(CustomObjectsApi);
    if (this.ipam === 'calico') {
      // one block per family, as Calico's IPAM makes them
      for (const cidr of cidrs) {
        await custom.createClusterCustomObject({ group: 'crd.projectcalico.org', version: 'v1', plural: 'blockaffinities', body: {
          apiVersion: 'crd.projectcalico.org/v1', kind: 'BlockAffinity',
          metadata: { name: `${node}-${cidr.replace(/[./:]/g, '-')}` }, spec: { node, cidr, state: 'confirmed', deleted: 'false' },
        } });
      }
    } else {
      await custom.createClusterCustomObject({ group: 'cilium.io', version: 'v2', plural: 'ciliumnodes', body: {
        apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata: { name: node }, spec: { ipam: { podCIDRs: [...cidrs] } },
      } });
    }
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  /**
   * Moves a node to the other segment (--routing auto): onto the device's subnet, or behind the
   * router. Make-before-break, as a renumbered host would be: the new link and address come up,
   * the Node's InternalIP changes, and once the coordinator has published the node's new address
   * and path (and the device has its route) the old link goes. Its agent's health endpoint stays on
   * the address it started with (lab only). Resolves with the new address.
   */
  async moveNode(name: string, withinMs = 30_000): Promise<{ underlayIP: string; segment: Segment }> {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no lab node named "${name}" (nodes: ${[...this.nodes.keys()].join(', ') || 'none'})`);
    if (this.routing !== 'auto') throw new Error(`moving a node between subnets needs a lab with --routing auto (this one is ${this.routing})`);
    const from = n.segment;
    const to: Segment = from === 'switch' ? 'routed' : 'switch';
    const ip = to === 'switch' ? nodeUnderlayIP(n.index) : routedNodeIP(n.index);
    await attachNode(this.names, n.index, to, ip);
    const node = await this.api().readNode({ name });
    const addresses = (node.status?.addresses ?? []).filter((a) => a.type !== 'InternalIP');
    await this.api().patchNodeStatus({ name, body: { status: { addresses: [{ type: 'InternalIP', address: ip }, ...addresses] } } }, mergePatch());
    const peers = DEFAULT_NAMES.peersConfigMapPrefix;
    const deadline = Date.now() + withinMs;
    for (;;) {
      const published = (await this.api().listNamespacedConfigMap({ namespace: DEFAULT_NAMESPACE })).items
        .filter((c) => c.metadata?.name?.startsWith(peers)).map((c) => c.data?.[name]).find((v) => v !== undefined);
      if (published !== undefined && (JSON.parse(published) as { underlayIP?: string }).underlayIP === ip) break;
      if (Date.now() > deadline) throw new Error(`node ${name} moved to ${ip}, but the peer table did not show it within ${withinMs} ms`);
      await sleep(50);
    }
    await this.waitForDeviceRoute(podCIDR(n.index), to === 'switch' ? ip : undefined, deadline);
    await this.waitForNodeSide(n.index, to === 'switch' ? undefined : ip, deadline);
    await detachNode(this.names, n.index, from);
    n.segment = to;
    n.underlayIP = ip;
    this.onChange();
    return { underlayIP: ip, segment: to };
  }

  /**
   * Waits until the device's namespace routes a pod CIDR the new way: via `directVia` (a direct
   * route) or not via an underlay address any more (through the overlay). Every device in the lab
   * (the gateway, both emulators) programs its routes into its namespace.
   */
  private async waitForDeviceRoute(cidr: string, directVia: string | undefined, deadline: number): Promise<void> {
    for (;;) {
      const r = await execa('ip', ['-n', this.names.device, '-j', 'route', 'show', cidr], { reject: false });
      const routes = r.exitCode === 0 && r.stdout.trim() !== '' ? (JSON.parse(r.stdout) as { gateway?: string; dev?: string }[]) : [];
      const ok = directVia !== undefined ? routes.some((x) => x.gateway === directVia) : routes.length > 0 && routes.every((x) => x.dev !== 'eth0');
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`the device did not route ${cidr} ${directVia ? `via ${directVia}` : 'through the overlay'} in time (routes: ${r.stdout.trim() || 'none'})`);
      await sleep(50);
    }
  }

  /**
   * Waits until the node's agent has followed: its VXLAN device there with `vxlanLocal` as its
   * local address (tunneled), or gone (routed directly). Only then does the old link go: removing
   * the address the agent's API connection uses leaves it deaf until that connection times out.
   */
  private async waitForNodeSide(index: number, vxlanLocal: string | undefined, deadline: number): Promise<void> {
    const dev = DEFAULT_NAMES.vxlanDevice(LAB_VNI);
    for (;;) {
      const r = await execa('ip', ['-n', this.names.node(index), '-d', '-j', 'link', 'show', 'dev', dev], { reject: false });
      const local = r.exitCode === 0 ? (JSON.parse(r.stdout) as { linkinfo?: { info_data?: { local?: string } } }[])[0]?.linkinfo?.info_data?.local : undefined;
      if (vxlanLocal === undefined ? r.exitCode !== 0 : local === vxlanLocal) return;
      if (Date.now() > deadline) throw new Error(`the agent on ${nodeName(index)} did not follow the move in time (${dev}: ${local ?? 'absent'}, want ${vxlanLocal ?? 'absent'})`);
      await sleep(50);
    }
  }

  async removeNode(name: string): Promise<void> {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no lab node named "${name}" (nodes: ${[...this.nodes.keys()].join(', ') || 'none'})`);
    await Promise.all([n.agent?.stop(), n.agentB?.stop()]);
    await this.api().deleteNode({ name }).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
    await removeUnderlayPort(this.names, n.index);
    const namespaces = [this.names.node(n.index)];
    for (let j = 1; j <= n.pods; j++) namespaces.push(this.names.pod(n.index, j));
    await deleteNamespaces(namespaces);
    this.nodes.delete(name);
    this.onChange();
  }

  nodeNames(): string[] {
    return [...this.nodes.entries()].sort((a, b) => a[1].index - b[1].index).map(([name]) => name);
  }

  private nodeDoc(name: string, apiNode: V1Node | undefined): NodeDoc {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no lab node named "${name}"`);
    const pods: PodDoc[] = [];
    for (let j = 1; j <= n.pods; j++) {
      const ip = podIP(n.index, j);
      pods.push({ name: `${name}-pod-${j}`, netns: this.names.pod(n.index, j), ip, ips: this.dualStack ? [ip, podIPv6(n.index, j)] : [ip] });
    }
    const overlayIP = apiNode ? (allocatedOverlayIP(apiNode) ?? null) : null;
    return {
      name, netns: this.names.node(n.index), underlayIP: n.underlayIP, overlayIP,
      overlayIPv6: this.dualStack && overlayIP !== null ? twinAddress(OVERLAY_NETWORK, OVERLAY_NETWORK_IPV6, overlayIP) : null,
      podCIDRs: this.podCIDRsOf(n.index), agentPid: n.agent?.pid ?? null,
      agentHealthURL: `http://${n.healthIP}:${AGENT_HEALTH_PORT}/healthz`, pods,
      path: apiNode?.metadata?.annotations?.[DEFAULT_NAMES.annotationPath] === 'direct' ? 'direct' : 'vxlan',
    };
  }

  /** The lab as JSON (the `lab up --json` contract), with current pids and allocations. */
  async document(): Promise<LabDocument> {
    const apiNodes = new Map<string, V1Node>();
    let deviceOverlayIPs: string[] = [];
    let deviceOverlayIPv6s: string[] = [];
    try {
      for (const n of (await this.api().listNode()).items) apiNodes.set(n.metadata?.name ?? '', n);
      const hub = await this.api().readNamespacedConfigMap({ name: 'chorus-kube-router-hub', namespace: DEFAULT_NAMESPACE }).catch(() => undefined);
      deviceOverlayIPs = (hub?.data?.deviceOverlayIPs ?? '').split(',').filter((s) => s !== '');
      deviceOverlayIPv6s = (hub?.data?.deviceOverlayIPv6s ?? '').split(',').filter((s) => s !== '');
    } catch (err) {
      this.opts.log.warn({ err }, 'API not reachable while building the lab document');
    }
    return {
      prefix: this.opts.prefix,
      kubeconfig: this.kubeconfigPath,
      labKubeconfig: this.labKubeconfigPath,
      dir: this.opts.dir,
      apiServer: { url: this.hostURL, labURL: `https://${CONTROL_PLANE_IP}:${API_PORT}`, pid: this.apiServer?.pid ?? null, auditFile: this.auditFile, caFile: join(this.apiTlsDir, 'ca.crt') },
      supervisorPid: process.pid,
      components: this.opts.components ?? 'sources',
      routing: this.routing,
      ipFamily: this.opts.ipFamily ?? 'ipv4',
      device: {
        type: this.opts.device, netns: this.names.device, underlayIP: this.deviceVTEP, overlayIPs: deviceOverlayIPs, overlayIPv6s: deviceOverlayIPv6s,
        pid: this.gateway?.pid ?? null,
        api: this.deviceApi(),
      },
      coordinators: this.coordinators.map((c, i) => ({ pid: c.pid ?? null, identity: `coordinator-${i + 1}`, healthURL: `http://${CONTROL_PLANE_IP}:${COORDINATOR_HEALTH_PORT + i + 1}/healthz` })),
      nodes: this.nodeNames().map((name) => this.nodeDoc(name, apiNodes.get(name))),
      second: this.opts.secondInstance ? await this.secondDoc() : null,
    };
  }

  private async secondDoc(): Promise<SecondInstanceDoc> {
    const hub = await this.api().readNamespacedConfigMap({ name: instanceNames(INSTANCE_B).hubConfigMap, namespace: DEFAULT_NAMESPACE }).catch(() => undefined);
    const type = this.opts.secondInstance ?? 'citrix';
    const credentials = { username: LAB_DEVICE_USER, password: this.devicePassword, caFile: join(this.tlsDirB, 'ca.crt') };
    return {
      instance: INSTANCE_B, vni: VNI_B, overlayNetwork: OVERLAY_NETWORK_B,
      device: {
        type, netns: this.names.deviceB, underlayIP: DEVICE_B_IP, overlayIPs: (hub?.data?.deviceOverlayIPs ?? '').split(',').filter((s) => s !== ''),
        pid: this.deviceB?.pid ?? null,
        api: type === 'citrix' ? { url: `https://${DEVICE_B_IP}/nitro/v1/config`, kind: 'nitro', ...credentials } : { url: `https://${DEVICE_B_IP}/mgmt/tm`, kind: 'icontrol', ...credentials },
      },
      coordinator: { pid: this.coordinatorB?.pid ?? null, identity: 'coordinator-b-1' },
      agents: Object.fromEntries([...this.nodes.entries()].map(([name, n]) => [name, n.agentB?.pid ?? null])),
    };
  }

  private get tlsDirB(): string { return join(this.opts.dir, 'device-b-tls'); }

  private startCoordinatorB(extraArgs: readonly string[]): SupervisedProcess {
    const type = this.opts.secondInstance ?? 'citrix';
    return this.supervise('coordinator-b-1', this.names.controlPlane, [
      'coordinator', '--identity', 'coordinator-b-1', '--instance', INSTANCE_B, '--vni', String(VNI_B),
      '--overlay-network', OVERLAY_NETWORK_B, '--device-vtep', DEVICE_B_IP,
      '--device-type', type, '--device-address', `https://${DEVICE_B_IP}`, '--ca-file', join(this.tlsDirB, 'ca.crt'), '--credentials-dir', this.credentialsDir,
      '--health-listen', `${CONTROL_PLANE_IP}:${COORDINATOR_HEALTH_PORT + 10}`,
      ...(this.opts.leaseArgs ?? ['--lease-duration', '8s', '--renew-deadline', '5s', '--retry-period', '1s']),
      ...extraArgs,
    ], this.podOf('coordinator-b'));
  }

  /** Instance b's coordinator restarted with more settings (an operator editing its settings ConfigMap). */
  async reconfigureSecond(extraArgs: readonly string[]): Promise<void> {
    if (!this.opts.secondInstance) throw new Error('this lab runs no second instance (lab up --second-instance)');
    await this.coordinatorB?.stop();
    this.coordinatorB = this.startCoordinatorB(extraArgs);
    this.onChange();
  }

  /** Stops instance b's coordinator and agents (the first uninstall steps); its device keeps running. */
  async stopSecond(): Promise<void> {
    if (!this.opts.secondInstance) throw new Error('this lab runs no second instance (lab up --second-instance)');
    await Promise.all([this.coordinatorB?.stop(), ...[...this.nodes.values()].map((n) => n.agentB?.stop())]);
    this.coordinatorB = undefined;
    for (const n of this.nodes.values()) n.agentB = undefined;
    this.onChange();
  }

  /**
   * Instance b: its namespace-scoped and cluster RBAC as `kubectl apply -k deploy/instance-b`
   * renders it (the real kustomize, which applies the overlay's renames and patches), its own
   * device on the underlay, and its coordinator; its agents start with each node.
   */
  private async startSecondInstance(progress: (msg: string) => void): Promise<void> {
    const type = this.opts.secondInstance ?? 'citrix';
    progress(`instance ${INSTANCE_B}: RBAC of deploy/instance-b (kubectl kustomize), the ${type} emulator at ${DEVICE_B_IP}, its coordinator`);
    const rendered = await execa('kubectl', ['kustomize', join(DEPLOY_DIR, 'instance-b')], { reject: false });
    if (rendered.exitCode !== 0) throw new Error(`--second-instance renders deploy/instance-b with \`kubectl kustomize\`, which failed (is kubectl installed?): ${String(rendered.stderr || rendered.message).trim()}`);
    const rbacKinds = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);
    const objects = loadAll(String(rendered.stdout)).filter((d): d is KubernetesObject => typeof d === 'object' && d !== null && rbacKinds.has(String((d as { kind?: unknown }).kind)));
    const client = KubernetesObjectApi.makeApiClient(this.kubeConfig());
    for (const o of objects) await client.create(o).catch(ignoreAlreadyExists);
    await addUnderlayHost(this.names, this.names.deviceB, 'ul-devb', DEVICE_B_IP);
    if (this.routing === 'auto') await routeViaRouter(this.names.deviceB);
    await makeServerCertificate(this.tlsDirB, [DEVICE_B_IP]);
    this.writeDeviceCredentials();
    const command = type === 'citrix' ? 'nitro-emulator' : 'f5-emulator';
    this.deviceB = this.supervise(`${command}-b`, this.names.deviceB, [
      'lab', command, '--listen', `${DEVICE_B_IP}:443`, '--tls-dir', this.tlsDirB, '--credentials-dir', this.credentialsDir,
      ...(type === 'citrix' ? ['--snip', `${DEVICE_B_IP}/${UNDERLAY_PREFIX}`] : ['--self', `${DEVICE_B_IP}/${UNDERLAY_PREFIX}`]),
    ]);
    this.coordinatorB = this.startCoordinatorB([]);
  }

  /** How to reach the device's API: NITRO, iControl REST (lab-only credentials) or the gateway's /status. */
  private deviceApi(): LabDocument['device']['api'] {
    const credentials = { username: LAB_DEVICE_USER, password: this.devicePassword, caFile: join(this.tlsDir, 'ca.crt') };
    switch (this.opts.device) {
      case 'citrix': return { url: `https://${DEVICE_IP}/nitro/v1/config`, kind: 'nitro', ...credentials };
      case 'f5': return { url: `https://${DEVICE_IP}/mgmt/tm`, kind: 'icontrol', ...credentials };
      default: return { url: `http://${DEVICE_IP}:${GATEWAY_STATUS_PORT}/status`, kind: 'gateway-status' };
    }
  }

  /** Pings every address of every pod (both families in a dual-stack lab) from the device (or instance b's) once; rtt in ms by address, or undefined when it did not answer. */
  async reachability(doc: LabDocument, from: string = this.names.device): Promise<Map<string, number | undefined>> {
    const result = new Map<string, number | undefined>();
    const addresses = doc.nodes.flatMap((n) => n.pods.flatMap((p) => p.ips));
    // a few at a time: two cores, and each ping is a process
    for (let i = 0; i < addresses.length; i += 8) {
      const batch = addresses.slice(i, i + 8);
      const rtts = await Promise.all(batch.map((ip) => ping(from, ip)));
      batch.forEach((ip, k) => result.set(ip, rtts[k]));
    }
    return result;
  }

  /** Waits until every node has an overlay IP and every pod answers a ping from the device. */
  async waitConverged(progress: (msg: string) => void, timeoutMs: number): Promise<{ doc: LabDocument; rtt: Map<string, number | undefined> }> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const doc = await this.document();
      const allocated = doc.nodes.filter((n) => n.overlayIP !== null).length;
      const rtt = allocated === doc.nodes.length ? await this.reachability(doc) : new Map<string, number | undefined>();
      const pods = doc.nodes.reduce((s, n) => s + n.pods.reduce((k, p) => k + p.ips.length, 0), 0);
      const reachable = [...rtt.values()].filter((v) => v !== undefined).length;
      // instance b, when there is one: every pod answers from its device too
      const rttB = doc.second && allocated === doc.nodes.length ? await this.reachability(doc, this.names.deviceB) : undefined;
      const reachableB = rttB ? [...rttB.values()].filter((v) => v !== undefined).length : 0;
      const msg = `converging: ${allocated}/${doc.nodes.length} nodes have an overlay IP, ${reachable}/${pods} pod addresses answer from the device${doc.second ? `, ${reachableB}/${pods} from instance ${doc.second.instance}'s` : ''}`;
      if (msg !== last) progress(msg);
      last = msg;
      if (allocated === doc.nodes.length && reachable === pods && (!doc.second || reachableB === pods)) return { doc, rtt };
      if (Date.now() > deadline) {
        const missing = doc.nodes.flatMap((n) => (n.overlayIP === null ? [`${n.name} has no overlay IP`] : n.pods.flatMap((p) => p.ips.filter((ip) => rtt.get(ip) === undefined).map((ip) => `${p.name} (${ip}) on ${n.name} does not answer`))));
        throw new Error(`the overlay did not converge within ${Math.round(timeoutMs / 1000)} s: ${missing.slice(0, 5).join('; ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''} (logs: ${join(this.opts.dir, 'logs')})`);
      }
      await sleep(250);
    }
  }

  /** Stops every process and removes every namespace of this lab; safe to call more than once. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const all = [...[...this.nodes.values()].flatMap((n) => [n.agent, n.agentB]), this.gateway, this.deviceB, ...this.coordinators, this.coordinatorB, this.apiServer].filter((p): p is SupervisedProcess => p !== undefined);
    await Promise.all(all.map((p) => p.stop(3_000)));
    this.forwarder?.close();
    await deleteAllWithPrefix(this.opts.prefix);
    this.opts.log.info({ prefix: this.opts.prefix }, 'lab removed');
  }
}

/** The components that talk to the API, each with its own identity in the lab. */
export const LAB_COMPONENTS = ['agent', 'coordinator', 'gateway'] as const;
export type LabComponent = (typeof LAB_COMPONENTS)[number];
/** The user a component acts as: its ServiceAccount in deploy/base/rbac.yaml. */
/** Instance b's components (deploy/instance-b names its ServiceAccounts *-b). */
export const INSTANCE_B_COMPONENTS = ['agent-b', 'coordinator-b'] as const;
export type LabIdentity = LabComponent | (typeof INSTANCE_B_COMPONENTS)[number];
export const serviceAccountUser = (c: LabIdentity): string => `system:serviceaccount:chorus-system:chorus-kube-router-${c}`;

/** The agent's arguments in the lab; its node name comes in NODE_NAME and its API access from its ServiceAccount, as in deploy/base/agent.yaml. */
export function agentArgs(underlayIP: string): string[] {
  return ['--health-listen', `${underlayIP}:${AGENT_HEALTH_PORT}`];
}

/** Instance b's agent, as deploy/instance-b runs it: its instance and its own ports. */
export function agentArgsB(underlayIP: string): string[] {
  return ['--instance', INSTANCE_B, '--health-listen', `${underlayIP}:${AGENT_B_HEALTH_PORT}`, '--status-listen', `127.0.0.1:${AGENT_B_STATUS_PORT}`];
}

/** The names the lab API server's certificate carries beside its addresses (those of the in-cluster service). */
export const API_DNS_NAMES = ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'];

/** JSON with every object's keys sorted, as Go's encoding/json writes a map. */
function sortedJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${sortedJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

function ignoreAlreadyExists(err: unknown): void {
  if ((err as { code?: number }).code !== 409) throw err;
}

/** Accepts TCP on 127.0.0.1 (a free port) and forwards each connection to a unix socket. */
async function forwardLoopbackTo(socketPath: string): Promise<Server> {
  const server = createServer((client) => {
    const upstream = createConnection(socketPath);
    client.pipe(upstream).pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}
