/**
 * The kernel state one overlay endpoint needs, as plain data. The node agent and the Linux
 * gateway (hub role) both describe what they want in these terms; diff.ts compares it with what
 * the kernel has, and apply.ts makes the difference. Everything on the VXLAN device is ours.
 */

export interface VxlanSpec {
  readonly name: string;
  readonly vni: number;
  readonly port: number;
  /** Local (underlay) IP the tunnel is sourced from. */
  readonly local: string;
  readonly mtu: number;
  readonly mac: string;
}

export interface FdbEntry { readonly mac: string; readonly dst: string }
export interface NeighbourEntry { readonly ip: string; readonly mac: string }
/**
 * `via` '' routes onto the VXLAN device itself (no gateway). `dev` absent: the route is on the
 * VXLAN device (via an overlay address, onlink); set: a direct route via an underlay neighbour
 * on that interface (DesiredOverlay.directDevice).
 */
export interface RouteEntry { readonly dst: string; readonly via: string; readonly dev?: string }

export interface DesiredOverlay {
  readonly vxlan: VxlanSpec;
  /** CIDR form: overlay IP with the overlay network's prefix length. */
  readonly addresses: readonly string[];
  readonly fdb: readonly FdbEntry[];
  readonly neighbours: readonly NeighbourEntry[];
  readonly routes: readonly RouteEntry[];
  /**
   * The underlay interface direct routes go on (routes with `dev` set): our routes there (our
   * protocol number) are observed and kept to the plan like those on the VXLAN device. Absent:
   * no direct routes.
   */
  readonly directDevice?: string;
}

export interface ObservedVxlan extends VxlanSpec {
  readonly index: number;
  readonly kind: string;
  readonly learning: boolean;
  readonly up: boolean;
}

export interface ObservedNeighbour extends NeighbourEntry { readonly permanent: boolean }

export interface ObservedOverlay {
  readonly vxlan: ObservedVxlan | undefined;
  readonly addresses: readonly string[];
  readonly fdb: readonly FdbEntry[];
  readonly neighbours: readonly ObservedNeighbour[];
  /** Only routes carrying our route protocol number, on the device and on the direct device (those with `dev`). */
  readonly routes: readonly RouteEntry[];
}

/** Routes we install carry this protocol number, so we know which ones are ours to remove. */
export const ROUTE_PROTOCOL = 196;

/** IPv4 underlay: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. Counted here, once. */
export const VXLAN_OVERHEAD_IPV4 = 50;
/** IPv6 underlay: outer IPv6 40 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD_IPV6 = 70;

/** What VXLAN adds to a frame on an underlay whose local (VTEP) address is `local`. */
export const vxlanOverhead = (local: string): number => (local.includes(':') ? VXLAN_OVERHEAD_IPV6 : VXLAN_OVERHEAD_IPV4);

export const EMPTY_OBSERVED: ObservedOverlay = { vxlan: undefined, addresses: [], fdb: [], neighbours: [], routes: [] };

export type Op =
  | { readonly kind: 'link-create'; readonly spec: VxlanSpec }
  | { readonly kind: 'link-delete'; readonly name: string; readonly reason: string }
  | { readonly kind: 'link-set'; readonly name: string; readonly mtu?: number; readonly mac?: string; readonly up?: true; readonly local?: string }
  | { readonly kind: 'addr-add' | 'addr-del'; readonly dev: string; readonly cidr: string }
  | { readonly kind: 'fdb-add' | 'fdb-del'; readonly dev: string; readonly entry: FdbEntry }
  | { readonly kind: 'neigh-replace' | 'neigh-del'; readonly dev: string; readonly entry: NeighbourEntry }
  | { readonly kind: 'route-replace' | 'route-del'; readonly dev: string; readonly entry: RouteEntry };
