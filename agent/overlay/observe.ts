/**
 * Reads the overlay's actual kernel state with iproute2 JSON output: one listing of the VXLAN
 * links (our device and any stale one of ours), then the device's addresses, FDB, neighbours and
 * routes (both families) in parallel. Six short-lived processes per observation (seven with a
 * direct device), whatever the number of entries;
 * it reads any namespace (`ip -n`). The agent and gateway read their own namespace over netlink
 * instead (netlink-reader.ts), which gives the same answer without a process.
 */
import { DEFAULT_NAMES } from '../../shared/keys.ts';
import type { IpRoute } from '../../shared/iproute.ts';
import { normalizeMac } from '../../shared/mac.ts';
import { canonicalIpText } from '../../shared/ip.ts';
import { EMPTY_OBSERVED, ROUTE_PROTOCOL, type FdbEntry, type ObservedNeighbour, type ObservedOverlay, type ObservedVxlan, type RouteEntry } from './state.ts';

interface IpLinkJson {
  ifindex: number; ifname: string; mtu: number; address?: string; flags?: string[];
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; local6?: string; port?: number; learning?: boolean } };
}
interface IpAddrJson { ifname: string; mtu: number; addr_info?: { family: string; local: string; prefixlen: number; scope?: string }[]; linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number } } }
interface FdbJson { mac: string; dst?: string }
interface NeighJson { dst: string; lladdr?: string; state?: string[] }
interface RouteJson { dst: string; gateway?: string; protocol?: string }


export function toObservedVxlan(link: IpLinkJson): ObservedVxlan {
  const data = link.linkinfo?.info_data ?? {};
  return {
    name: link.ifname,
    index: link.ifindex,
    kind: link.linkinfo?.info_kind ?? 'unknown',
    vni: data.id ?? -1,
    local: data.local ?? (data.local6 !== undefined ? canonicalIpText(data.local6) : ''),
    port: data.port ?? -1,
    learning: data.learning ?? true,
    mtu: link.mtu,
    mac: normalizeMac(link.address ?? ''),
    up: (link.flags ?? []).includes('UP'),
  };
}

export interface OverlayObservation {
  readonly observed: ObservedOverlay;
  /** Other VXLAN devices of ours (named chorus-<vni>), e.g. left from a previous VNI. */
  readonly staleDevices: readonly string[];
}

/**
 * How the agent and gateway read the kernel: iproute2 processes (any namespace, via `ip -n`) or
 * one rtnetlink socket (the process's own namespace; netlink-reader.ts). Both give the same answer.
 */
export interface KernelReader {
  /**
   * The overlay device `dev` with its addresses, FDB, neighbours and our routes, and other devices
   * of ours; with `directDevice`, our routes on that interface too (with `dev` set).
   */
  overlay(dev: string, owns?: (name: string) => boolean, directDevice?: string): Promise<OverlayObservation>;
  /** The VXLAN device `dev` alone (after a pass changed it), or undefined when there is none. */
  vxlan(dev: string): Promise<ObservedVxlan | undefined>;
  /** Every interface with its MTU, IPv4 addresses and (VXLAN devices) VNI and port. */
  interfaces(): Promise<HostInterface[]>;
}

export function iprouteReader(ip: IpRoute): KernelReader {
  return {
    overlay: (dev, owns, directDevice) => observeOverlay(ip, dev, owns, directDevice),
    vxlan: async (dev) => {
      const link = ((await ip.json('ip', ['-d', 'link', 'show', 'type', 'vxlan'])) as IpLinkJson[]).find((l) => l.ifname === dev);
      return link ? toObservedVxlan(link) : undefined;
    },
    interfaces: () => readInterfaces(ip),
  };
}

/** The reader given, else iproute2 through `ip` (the default of every endpoint that is given none). */
export function readerOf(k: { readonly ip: IpRoute; readonly reader?: KernelReader | undefined }): KernelReader {
  return k.reader ?? iprouteReader(k.ip);
}

/** `owns`: whether a device name is this instance's (InstanceNames.ownsDevice). */
export async function observeOverlay(ip: IpRoute, dev: string, owns: (name: string) => boolean = DEFAULT_NAMES.ownsDevice, directDevice?: string): Promise<OverlayObservation> {
  const links = (await ip.json('ip', ['-d', 'link', 'show', 'type', 'vxlan'])) as IpLinkJson[];
  const staleDevices = links.map((l) => l.ifname).filter((n) => owns(n) && n !== dev);
  const link = links.find((l) => l.ifname === dev);
  if (!link) return { observed: EMPTY_OBSERVED, staleDevices };
  const [addrs, fdb, neigh, routes, routes6, directRoutes] = await Promise.all([
    ip.json('ip', ['addr', 'show', 'dev', dev]) as Promise<IpAddrJson[]>,
    ip.json('bridge', ['fdb', 'show', 'dev', dev]) as Promise<FdbJson[]>,
    ip.json('ip', ['neigh', 'show', 'dev', dev]) as Promise<NeighJson[]>,
    ip.json('ip', ['-4', 'route', 'show', 'dev', dev]) as Promise<RouteJson[]>,
    ip.json('ip', ['-6', 'route', 'show', 'dev', dev]) as Promise<RouteJson[]>,
    directDevice === undefined ? Promise.resolve([]) : (ip.json('ip', ['-4', 'route', 'show', 'dev', directDevice]) as Promise<RouteJson[]>),
  ]);
  // IPv4, and IPv6 but for the link-local address the kernel gives every IPv6 interface
  const addresses = (addrs[0]?.addr_info ?? []).filter((a) => a.family === 'inet' || (a.family === 'inet6' && a.scope !== 'link')).map((a) => `${a.local}/${a.prefixlen}`);
  const fdbEntries: FdbEntry[] = fdb.filter((e) => e.dst !== undefined).map((e) => ({ mac: normalizeMac(e.mac), dst: e.dst ?? '' }));
  const neighbours: ObservedNeighbour[] = neigh
    // the kernel's own IPv6 entries (multicast ff00::/8, link-local fe80::/10) are never ours
    .filter((n) => n.lladdr !== undefined && !/^(ff|fe[89ab])/i.test(n.dst))
    .map((n) => ({ ip: n.dst, mac: normalizeMac(n.lladdr ?? ''), permanent: (n.state ?? []).includes('PERMANENT') }));
  const oursOn = (list: readonly RouteJson[], on?: string): RouteEntry[] => list
    .filter((r) => r.protocol === String(ROUTE_PROTOCOL))
    .map((r) => ({ dst: r.dst.includes('/') ? r.dst : `${r.dst}/${r.dst.includes(':') ? 128 : 32}`, via: r.gateway ?? '', ...(on !== undefined ? { dev: on } : {}) }));
  const ours = [...oursOn(routes), ...oursOn(routes6), ...oursOn(directRoutes, directDevice)];
  return { observed: { vxlan: toObservedVxlan(link), addresses, fdb: fdbEntries, neighbours, routes: ours }, staleDevices };
}

export interface HostInterface {
  readonly name: string;
  readonly mtu: number;
  readonly cidrs: readonly string[];
  /** Its IPv6 addresses but for link-local ones (an IPv6 underlay's VTEP is one of these). */
  readonly cidrs6?: readonly string[];
  /** For a VXLAN device: its VNI and UDP port. */
  readonly vxlan?: { readonly vni: number; readonly port: number };
}

/** Every interface with its MTU, IPv4 addresses and (VXLAN devices) VNI and port, from one `ip -d addr` listing. */
export async function readInterfaces(ipr: IpRoute): Promise<HostInterface[]> {
  const links = (await ipr.json('ip', ['-d', 'addr', 'show'])) as IpAddrJson[];
  return links.map((l) => {
    const data = l.linkinfo?.info_kind === 'vxlan' ? l.linkinfo.info_data : undefined;
    return {
      name: l.ifname, mtu: l.mtu, cidrs: (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
      cidrs6: (l.addr_info ?? []).filter((a) => a.family === 'inet6' && a.scope !== 'link').map((a) => `${canonicalIpText(a.local)}/${a.prefixlen}`),
      ...(data?.id !== undefined ? { vxlan: { vni: data.id, port: data.port ?? 0 } } : {}),
    };
  });
}

/** VXLAN devices this agent does not own (a CNI's, another instance's, anyone's). */
export function foreignVxlans(interfaces: readonly HostInterface[], owns: (name: string) => boolean = DEFAULT_NAMES.ownsDevice): { dev: string; vni: number; port: number }[] {
  return interfaces.flatMap((i) => (i.vxlan && !owns(i.name) ? [{ dev: i.name, ...i.vxlan }] : []));
}

/** The MTU of the interface that holds `ip` (the underlay), or undefined if none has it. */
export function mtuOfAddress(interfaces: readonly HostInterface[], ip: string): number | undefined {
  return interfaceOfAddress(interfaces, ip)?.mtu;
}

/** The interface holding an address (IPv4, or IPv6 in any spelling). */
export function interfaceOfAddress(interfaces: readonly HostInterface[], ip: string): HostInterface | undefined {
  if (!ip.includes(':')) return interfaces.find((i) => i.cidrs.some((c) => c.split('/')[0] === ip));
  const want = canonicalIpText(ip);
  return interfaces.find((i) => (i.cidrs6 ?? []).some((c) => c.split('/')[0] === want));
}

/** IPv4 networks on the host's interfaces other than loopback and `exceptDev`. */
export function otherNetworks(interfaces: readonly HostInterface[], exceptDev: string): { dev: string; cidr: string }[] {
  return interfaces.filter((i) => i.name !== exceptDev && i.name !== 'lo').flatMap((i) => i.cidrs.map((cidr) => ({ dev: i.name, cidr })));
}
