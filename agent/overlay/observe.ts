/** Reads the overlay's actual kernel state with iproute2 JSON output. */
import { IpRouteError, type IpRoute } from '../../shared/iproute.ts';
import { normalizeMac } from '../../shared/mac.ts';
import { EMPTY_OBSERVED, ROUTE_PROTOCOL, type FdbEntry, type ObservedNeighbour, type ObservedOverlay, type ObservedVxlan, type RouteEntry } from './state.ts';

interface IpLinkJson {
  ifname: string; mtu: number; address?: string; flags?: string[];
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; port?: number; learning?: boolean } };
}
interface IpAddrJson { addr_info?: { family: string; local: string; prefixlen: number }[] }
interface FdbJson { mac: string; dst?: string }
interface NeighJson { dst: string; lladdr?: string; state?: string[] }
interface RouteJson { dst: string; gateway?: string; protocol?: string }

async function linkOf(ip: IpRoute, name: string): Promise<IpLinkJson | undefined> {
  try {
    return ((await ip.json('ip', ['-d', 'link', 'show', 'dev', name])) as IpLinkJson[])[0];
  } catch (err) {
    if (err instanceof IpRouteError && /does not exist/.test(err.message)) return undefined;
    throw err;
  }
}

export function toObservedVxlan(link: IpLinkJson): ObservedVxlan {
  const data = link.linkinfo?.info_data ?? {};
  return {
    name: link.ifname,
    kind: link.linkinfo?.info_kind ?? 'unknown',
    vni: data.id ?? -1,
    local: data.local ?? '',
    port: data.port ?? -1,
    learning: data.learning ?? true,
    mtu: link.mtu,
    mac: normalizeMac(link.address ?? ''),
    up: (link.flags ?? []).includes('UP'),
  };
}

export async function observeOverlay(ip: IpRoute, dev: string): Promise<ObservedOverlay> {
  const link = await linkOf(ip, dev);
  if (!link) return EMPTY_OBSERVED;
  const [addrs, fdb, neigh, routes] = await Promise.all([
    ip.json('ip', ['addr', 'show', 'dev', dev]) as Promise<IpAddrJson[]>,
    ip.json('bridge', ['fdb', 'show', 'dev', dev]) as Promise<FdbJson[]>,
    ip.json('ip', ['-4', 'neigh', 'show', 'dev', dev]) as Promise<NeighJson[]>,
    ip.json('ip', ['-4', 'route', 'show', 'dev', dev]) as Promise<RouteJson[]>,
  ]);
  const addresses = (addrs[0]?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
  const fdbEntries: FdbEntry[] = fdb.filter((e) => e.dst !== undefined).map((e) => ({ mac: normalizeMac(e.mac), dst: e.dst ?? '' }));
  const neighbours: ObservedNeighbour[] = neigh
    .filter((n) => n.lladdr !== undefined)
    .map((n) => ({ ip: n.dst, mac: normalizeMac(n.lladdr ?? ''), permanent: (n.state ?? []).includes('PERMANENT') }));
  const ours: RouteEntry[] = routes
    .filter((r) => r.protocol === String(ROUTE_PROTOCOL) && r.gateway !== undefined)
    .map((r) => ({ dst: r.dst.includes('/') ? r.dst : `${r.dst}/32`, via: r.gateway ?? '' }));
  return { vxlan: toObservedVxlan(link), addresses, fdb: fdbEntries, neighbours, routes: ours };
}

/** The MTU of the interface that holds `ip` (the underlay), or undefined if none has it. */
export async function underlayMtuOf(ipr: IpRoute, ip: string): Promise<number | undefined> {
  const links = (await ipr.json('ip', ['addr', 'show'])) as (IpAddrJson & { mtu: number })[];
  return links.find((l) => (l.addr_info ?? []).some((a) => a.family === 'inet' && a.local === ip))?.mtu;
}
