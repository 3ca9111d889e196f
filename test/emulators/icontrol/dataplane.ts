/**
 * The emulated BIG-IP's data plane: turns the iControl configuration into kernel state in the
 * device's network namespace (through dataplane-sync.ts, with the agent's own programmer):
 *   tunnel (key, localAddress, profile port) -> a VXLAN device `f5vx<key>`
 *   self IPs on the tunnel                   -> addresses on it
 *   FDB records (MAC -> endpoint)            -> FDB entries
 *   static ARP and NDP (ip -> MAC)           -> permanent neighbours (IPv4, IPv6)
 *   routes: gw -> route via the gateway (on the underlay interface when the gateway is on its
 *           subnet: a directly routed node);  tmInterface = the tunnel -> route onto the device
 * One tunnel is emulated (the first with a local address).
 */
import { mtuOfAddress, type HostInterface } from '../../../agent/overlay/observe.ts';
import { vxlanOverhead, type DesiredOverlay } from '../../../agent/overlay/state.ts';
import { emulatedMac, placeRoutes } from '../dataplane-sync.ts';
import type { IControlStore } from './store.ts';

const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
const stripRd = (v: string): string => v.replace(/%\d+/, '');

export function desiredFromBigIp(store: IControlStore, interfaces: readonly HostInterface[]): DesiredOverlay | undefined {
  const tunnel = store.list('net/tunnels/tunnel').find((t) => t.localAddress !== undefined && t.localAddress !== 'any');
  if (!tunnel) return undefined;
  const path = str(tunnel.fullPath);
  const profile = store.list('net/tunnels/vxlan').find((p) => p.fullPath === tunnel.profile);
  const local = stripRd(str(tunnel.localAddress));
  const vni = Number(tunnel.key);
  return {
    vxlan: { name: `f5vx${vni}`, vni, port: Number(profile?.port ?? 4789), local, mtu: (mtuOfAddress(interfaces, local) ?? 1500) - vxlanOverhead(local), mac: emulatedMac(local) },
    addresses: store.list('net/self').filter((s) => s.vlan === path).map((s) => stripRd(str(s.address))),
    fdb: [...(store.records.get(path) ?? new Map<string, string>())].map(([mac, endpoint]) => ({ mac, dst: stripRd(endpoint) })),
    neighbours: [...store.list('net/arp'), ...store.list('net/ndp')].map((a) => ({ ip: stripRd(str(a.ipAddress)), mac: str(a.macAddress).toLowerCase() })),
    // a gateway on the underlay subnet (a directly routed node) is reached on that interface
    ...placeRoutes(store.list('net/route').flatMap((r) => {
      const dst = stripRd(str(r.network));
      if (r.gw !== undefined) return [{ dst, via: stripRd(str(r.gw)) }];
      return r.tmInterface === path ? [{ dst, via: '' }] : [];
    }), interfaces, local),
  };
}

/** For dataPlaneSyncer: reads the emulator's current store each time (a transaction swaps content, not the store). */
export function bigIpDataPlane(store: () => IControlStore): (interfaces: readonly HostInterface[]) => DesiredOverlay | undefined {
  return (interfaces) => desiredFromBigIp(store(), interfaces);
}
