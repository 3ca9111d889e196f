/**
 * Where a node's pod CIDRs come from, by IPAM mode (pure):
 * - node:   spec.podCIDRs (kube-controller-manager allocation: flannel, kube-router, kubeadm
 *           defaults, Cilium with Kubernetes IPAM);
 * - calico: Calico IPAM blocks, BlockAffinity (crd.projectcalico.org/v1) objects with
 *           spec.node = the node and spec.state = confirmed; a node can own several blocks,
 *           which come and go;
 * - cilium: Cilium cluster-pool IPAM, CiliumNode (cilium.io/v2) named like the node,
 *           spec.ipam.podCIDRs.
 * `auto` picks calico when the cluster serves crd.projectcalico.org, else cilium when it serves
 * cilium.io, else node.
 */
import type { V1Node } from '@kubernetes/client-node';
import { cidrTextFamily } from '../shared/ip.ts';
import { podCIDRsOf } from '../shared/node-facts.ts';

export type PodCidrSource = 'node' | 'calico' | 'cilium';
export const POD_CIDR_SOURCES = ['auto', 'node', 'calico', 'cilium'] as const;

export interface CustomResourceRef { readonly group: string; readonly version: string; readonly plural: string }

export const CALICO_BLOCK_AFFINITIES: CustomResourceRef = { group: 'crd.projectcalico.org', version: 'v1', plural: 'blockaffinities' };
export const CILIUM_NODES: CustomResourceRef = { group: 'cilium.io', version: 'v2', plural: 'ciliumnodes' };

export interface BlockAffinity { metadata?: { name?: string }; spec?: { node?: string; cidr?: string; state?: string; deleted?: string | boolean } }
export interface CiliumNode { metadata?: { name?: string }; spec?: { ipam?: { podCIDRs?: string[] } } }

/** The CIDRs of either family, once each: IPv4 first, each family sorted as text. */
function podCidrList(list: readonly (string | undefined)[]): string[] {
  const cidrs = [...new Set(list.filter((c): c is string => typeof c === 'string' && cidrTextFamily(c) !== undefined))];
  return cidrs.sort((a, b) => (cidrTextFamily(a) ?? 0) - (cidrTextFamily(b) ?? 0) || (a < b ? -1 : a > b ? 1 : 0));
}

export function detectSource(servedGroups: readonly string[]): PodCidrSource {
  if (servedGroups.includes(CALICO_BLOCK_AFFINITIES.group)) return 'calico';
  if (servedGroups.includes(CILIUM_NODES.group)) return 'cilium';
  return 'node';
}

function fromNodes(nodes: readonly V1Node[]): Map<string, string[]> {
  return new Map(nodes.map((n) => [n.metadata?.name ?? '', podCIDRsOf(n)]));
}

/**
 * The node source's pod CIDRs of every node, kept from pass to pass for a caller that asks every
 * pass (the coordinator): a Node is read once per object (a changed Node is a new object), and the
 * map is the same one, changed where a node changed, so a node event does not rebuild it.
 */
export class NodePodCidrs {
  private readonly read = new WeakMap<V1Node, string[]>();
  private readonly byName = new Map<string, string[]>();

  of(nodes: readonly V1Node[]): ReadonlyMap<string, readonly string[]> {
    for (const n of nodes) {
      let cidrs = this.read.get(n);
      if (cidrs === undefined) {
        cidrs = podCIDRsOf(n);
        this.read.set(n, cidrs);
      }
      const name = n.metadata?.name ?? '';
      if (this.byName.get(name) !== cidrs) this.byName.set(name, cidrs);
    }
    // every listed node is in the map: more entries than nodes means some left
    if (this.byName.size > nodes.length) {
      const present = new Set(nodes.map((n) => n.metadata?.name ?? ''));
      for (const name of [...this.byName.keys()]) if (!present.has(name)) this.byName.delete(name);
    }
    return this.byName;
  }
}

function isLiveBlock(b: BlockAffinity): boolean {
  const s = b.spec;
  return !!s?.node && s.state === 'confirmed' && s.deleted !== true && s.deleted !== 'true';
}

function fromCalicoBlocks(nodes: readonly V1Node[], blocks: readonly BlockAffinity[]): Map<string, string[]> {
  const byNode = new Map<string, (string | undefined)[]>();
  for (const b of blocks.filter(isLiveBlock)) {
    const node = b.spec?.node ?? '';
    byNode.set(node, [...(byNode.get(node) ?? []), b.spec?.cidr]);
  }
  return new Map(nodes.map((n) => [n.metadata?.name ?? '', podCidrList(byNode.get(n.metadata?.name ?? '') ?? [])]));
}

function fromCiliumNodes(nodes: readonly V1Node[], cn: readonly CiliumNode[]): Map<string, string[]> {
  const byName = new Map(cn.map((c) => [c.metadata?.name ?? '', c.spec?.ipam?.podCIDRs ?? []]));
  return new Map(nodes.map((n) => [n.metadata?.name ?? '', podCidrList(byName.get(n.metadata?.name ?? '') ?? [])]));
}

/**
 * The pod CIDRs of every node under the given source. `kept` keeps what the node source read from
 * one pass to the next (NodePodCidrs), for a caller that asks every pass.
 */
export function podCIDRsBySource(source: PodCidrSource, nodes: readonly V1Node[], custom: readonly (BlockAffinity | CiliumNode)[], kept?: NodePodCidrs): ReadonlyMap<string, readonly string[]> {
  if (source === 'calico') return fromCalicoBlocks(nodes, custom as BlockAffinity[]);
  if (source === 'cilium') return fromCiliumNodes(nodes, custom as CiliumNode[]);
  return kept ? kept.of(nodes) : fromNodes(nodes);
}
