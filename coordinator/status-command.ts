/**
 * `chorus-kube-router status`: the overlay as the cluster publishes it: hub info, then per node
 * its underlay and overlay addresses, VTEP MAC, pod CIDRs (both families in a dual-stack overlay), its path (vxlan, or direct: the device
 * routes via its underlay address, docs/routing.md), whether its Node carries the
 * allocation (what its agent programs from), and whether it is programmed on the device (as the
 * coordinator, or the Linux gateway, reports in ConfigMap chorus-kube-router-device).
 * Read-only; a table, or JSON with --json.
 */
import type { V1ConfigMap, V1Node } from '@kubernetes/client-node';
import { INSTANCE_SPEC, helpText, instanceNamesFrom, readSettings, type SettingSpec } from '../shared/cli-args.ts';
import { DEFAULT_NAMES, DEFAULT_NAMESPACE, DEVICE_STATUS_SUMMARY_KEY, type InstanceNames } from '../shared/keys.ts';
import { loadKubeConfig, makeClients } from '../shared/kube/client.ts';
import { allocatedOverlayIP, internalIP, underlayFamilyOf } from '../shared/node-facts.ts';
import { decodeHubInfo, decodePeer, pathOf, shardIndexOf, type HubInfo, type Peer, type PeerPath } from '../shared/tables.ts';
import { errorMessage } from '../shared/errors.ts';

export interface StatusRow extends Peer {
  /** Always present here (in the peer table only when direct). */
  readonly path: PeerPath;
  readonly annotated: boolean;
  /** true: programmed on the device; false: it failed (see deviceDetail); null: not reported (yet). */
  readonly programmedOnDevice: boolean | null;
  readonly deviceDetail: string | null;
}
export interface OverlayStatus {
  readonly hub: HubInfo | null;
  /** The device type that reports programming states, or null when none has reported. */
  readonly device: string | null;
  readonly hubError: string | null;
  readonly peers: readonly StatusRow[];
  /** Nodes the table does not list, with why (as far as the table can tell). */
  readonly unallocated: readonly { node: string; reason: string }[];
}

/** Pure: the status from the hub ConfigMap, the peer shards and the Nodes. */
export function overlayStatus(hubCm: V1ConfigMap | undefined, tables: readonly V1ConfigMap[], nodes: readonly V1Node[], deviceCm?: V1ConfigMap, names: InstanceNames = DEFAULT_NAMES): OverlayStatus {
  const deviceData = deviceCm?.data ?? {};
  let hub: HubInfo | null = null;
  let hubError: string | null = null;
  try {
    hub = hubCm ? decodeHubInfo(hubCm.data) : null;
    if (!hubCm) hubError = `no hub info (ConfigMap ${names.hubConfigMap}): is the coordinator running${names.instance ? ` for instance ${names.instance}` : ''}?`;
  } catch (err) {
    hubError = errorMessage(err);
  }
  const byName = new Map(nodes.map((n) => [n.metadata?.name ?? '', n]));
  const peers: StatusRow[] = [];
  for (const cm of tables.filter((c) => shardIndexOf(c.metadata?.name ?? '', names.peersConfigMapPrefix) !== undefined)) {
    for (const [node, value] of Object.entries(cm.data ?? {})) {
      const p = decodePeer(node, value);
      if (p instanceof Error) continue;
      const n = byName.get(node);
      const state = deviceData[node];
      peers.push({
        ...p, path: pathOf(p), annotated: n !== undefined && allocatedOverlayIP(n, names.annotationOverlayIP) === p.overlayIP,
        programmedOnDevice: state === undefined ? null : state === 'programmed',
        deviceDetail: state === undefined ? null : state.replace(/^failed: /, ''),
      });
    }
  }
  peers.sort((a, b) => a.node.localeCompare(b.node));
  const listed = new Set(peers.map((p) => p.node));
  const underlayFamily = underlayFamilyOf(hub?.deviceVTEPs ?? []);
  const unallocated = nodes.filter((n) => !listed.has(n.metadata?.name ?? '')).map((n) => ({
    node: n.metadata?.name ?? '',
    reason: internalIP(n, underlayFamily) ? 'no overlay address yet (see the coordinator\'s /status and Events on the Node)' : `no IPv${underlayFamily} InternalIP`,
  }));
  return { hub, device: deviceData[DEVICE_STATUS_SUMMARY_KEY] ?? null, hubError, peers, unallocated };
}

export function statusTable(s: OverlayStatus): string {
  const head = s.hub
    ? `VNI ${s.hub.vni}, port ${s.hub.port}, overlay ${s.hub.overlayNetwork}${s.hub.overlayNetworkIPv6 !== undefined ? ` and ${s.hub.overlayNetworkIPv6}` : ''}, device ${s.device ?? '(type not reported)'} VTEP ${s.hub.deviceVTEPs.join(',')} overlay ${[...s.hub.deviceOverlayIPs, ...(s.hub.deviceOverlayIPv6s ?? [])].join(',')}`
    : `hub info: ${s.hubError ?? 'missing'}`;
  // a dual-stack overlay shows both families in the address and pod CIDR columns (IPv4 first)
  const overlayIPs = (p: StatusRow): string => [p.overlayIP, ...(p.overlayIPv6 !== undefined ? [p.overlayIPv6] : [])].join(',');
  const onDevice = (p: StatusRow): string => (p.programmedOnDevice === null ? 'not reported yet' : p.programmedOnDevice ? 'yes' : `no: ${p.deviceDetail ?? ''}`);
  const rows = [['NODE', 'UNDERLAY IP', 'OVERLAY IP', 'VTEP MAC', 'POD CIDRS', 'PATH', 'ON NODE', 'ON DEVICE'],
    ...s.peers.map((p) => [p.node, p.underlayIP, overlayIPs(p), p.vtepMAC, [...p.podCIDRs, ...(p.podCIDRsIPv6 ?? [])].join(',') || '-', p.path, p.annotated ? 'yes' : 'no', onDevice(p)]),
    ...s.unallocated.map((u) => [u.node, '-', '-', '-', '-', '-', u.reason, '-'])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return [head, ...rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd())].join('\n');
}

const SPECS: SettingSpec[] = [
  { flag: 'namespace', env: ['CHORUS_NAMESPACE'], help: 'namespace of the published tables', default: DEFAULT_NAMESPACE },
  { flag: 'kubeconfig', env: ['KUBECONFIG'], help: 'kubeconfig file of the cluster' },
  { flag: 'json', help: 'print JSON', bool: true },
  INSTANCE_SPEC,
];

export async function statusMain(argv: readonly string[]): Promise<number> {
  const { settings, help } = readSettings(argv, SPECS, process.env);
  if (help) {
    console.log(helpText('chorus-kube-router status [--json]', 'Prints the overlay as the cluster publishes it: hub info and every node\'s addresses, MAC, pod CIDRs,\nwhether its Node carries the allocation, and whether it is programmed on the device.', SPECS));
    return 0;
  }
  const namespace = settings.namespace ?? DEFAULT_NAMESPACE;
  const names = instanceNamesFrom(settings);
  const { core } = makeClients(loadKubeConfig(settings.kubeconfig));
  const [tables, nodes, device] = await Promise.all([
    core.listNamespacedConfigMap({ namespace, labelSelector: names.labelTable }),
    core.listNode(),
    core.readNamespacedConfigMap({ name: names.deviceStatusConfigMap, namespace }).catch((err: unknown) => {
      if (typeof err === 'object' && err !== null && (err as { code?: number }).code === 404) return undefined;
      throw err;
    }),
  ]);
  const s = overlayStatus(tables.items.find((c) => c.metadata?.name === names.hubConfigMap), tables.items, nodes.items, device, names);
  console.log(settings.json ? JSON.stringify(s, null, 2) : statusTable(s));
  return s.hub ? 0 : 1;
}
