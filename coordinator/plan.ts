/**
 * Coordinator planning, pure: (Nodes, held allocations, config) -> hub info, peers and the
 * desired content of every peer-table shard, plus what could not be served and why.
 */
import type { V1Node } from '@kubernetes/client-node';
import { parseCidr, type Cidr } from '../shared/ipv4.ts';
import { macFromOverlayIP } from '../shared/mac.ts';
import { internalIPv4, podCIDRsOf } from '../shared/node-facts.ts';
import { PEERS_PER_SHARD, encodePeer, shardName, type ConfigMapData, type HubInfo, type Peer } from '../shared/tables.ts';
import { allocate, hostIndex } from './ipam.ts';

export interface OverlayConfig {
  readonly vni: number;
  readonly port: number;
  readonly overlayNetwork: string;
  readonly deviceVTEPs: readonly string[];
  readonly mtu?: number;
}

export interface CoordinatorPlan {
  readonly hub: HubInfo;
  readonly peers: readonly Peer[];
  /** Desired data of every shard that should have entries, by ConfigMap name. */
  readonly shards: ReadonlyMap<string, ConfigMapData>;
  readonly problems: readonly { node: string; reason: string }[];
}

export function planCoordinator(config: OverlayConfig, nodes: readonly V1Node[], held: ReadonlyMap<string, string>): CoordinatorPlan {
  const network: Cidr = parseCidr(config.overlayNetwork);
  const problems: { node: string; reason: string }[] = [];
  const eligible: V1Node[] = [];
  for (const n of [...nodes].sort(byCreationThenName)) {
    const name = n.metadata?.name ?? '';
    if (!internalIPv4(n)) problems.push({ node: name, reason: 'no IPv4 InternalIP in status.addresses yet' });
    else eligible.push(n);
  }
  const ipam = allocate({ network, deviceCount: config.deviceVTEPs.length, nodes: eligible.map((n) => n.metadata?.name ?? ''), held });
  for (const r of ipam.rejected) problems.push({ node: r.node, reason: `held overlay IP ${r.ip} dropped: ${r.reason}` });
  problems.push(...ipam.unallocated);
  const peers: Peer[] = [];
  const shards = new Map<string, ConfigMapData>();
  for (const n of eligible) {
    const node = n.metadata?.name ?? '';
    const overlayIP = ipam.allocations.get(node);
    if (overlayIP === undefined) continue;
    const peer: Peer = { node, underlayIP: internalIPv4(n) ?? '', overlayIP, vtepMAC: macFromOverlayIP(overlayIP), podCIDRs: podCIDRsOf(n) };
    peers.push(peer);
    const shard = shardName(Math.floor(hostIndex(network, config.deviceVTEPs.length, overlayIP) / PEERS_PER_SHARD));
    const data = shards.get(shard) ?? {};
    data[node] = encodePeer(peer);
    shards.set(shard, data);
  }
  const hub: HubInfo = {
    vni: config.vni, port: config.port, overlayNetwork: config.overlayNetwork,
    deviceVTEPs: config.deviceVTEPs, deviceOverlayIPs: ipam.deviceIPs,
    ...(config.mtu !== undefined ? { mtu: config.mtu } : {}),
  };
  return { hub, peers, shards, problems };
}

function byCreationThenName(a: V1Node, b: V1Node): number {
  const ta = a.metadata?.creationTimestamp ? new Date(a.metadata.creationTimestamp).getTime() : 0;
  const tb = b.metadata?.creationTimestamp ? new Date(b.metadata.creationTimestamp).getTime() : 0;
  return ta - tb || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');
}

/** The merge patch that turns `have` into `want` (null removes a key), or undefined if equal. */
export function dataPatch(have: ConfigMapData, want: ConfigMapData): Record<string, string | null> | undefined {
  const patch: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(want)) if (have[k] !== v) patch[k] = v;
  for (const k of Object.keys(have)) if (!(k in want)) patch[k] = null;
  return Object.keys(patch).length === 0 ? undefined : patch;
}
