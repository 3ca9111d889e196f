/**
 * The emulated ADC's data plane: turns the NITRO configuration into kernel state in the device's
 * network namespace, with the same overlay programmer the agent uses, so traffic proves the
 * driver configured the device right:
 *   vxlan + vxlan_srcip_binding -> a VXLAN device (local = the bound SNIP, dstport = port)
 *   nsip SNIPs not already on an interface -> addresses on the VXLAN device
 *   arp (ip, mac, vtep) -> static neighbour + FDB entry mac -> vtep
 *   bridgetable (mac, vtep) -> FDB entry;  route -> route via gateway (on the underlay interface
 *   when the gateway is on its subnet: a directly routed node)
 *   nsip6 global SNIPs -> IPv6 addresses on the VXLAN device;  nd6 (neighbor, mac, vtep) on the
 *   vxlan -> static NDP neighbour + FDB entry;  route6 -> IPv6 route via gateway
 */
import { parseIPv4, prefixOfNetmask } from '../../../shared/ipv4.ts';
import { mtuOfAddress, type HostInterface } from '../../../agent/overlay/observe.ts';
import { VXLAN_OVERHEAD_IPV4, type DesiredOverlay } from '../../../agent/overlay/state.ts';
import { emulatedMac, placeRoutes, underlayAddresses } from '../dataplane-sync.ts';
import { nsip6Cidr, type NitroStore } from './store.ts';

/** "a.b.c.0-a.b.c.255" -> "a.b.c.0/24" (ranges from PBRs cover whole CIDRs). */
export function rangeToCidr(range: string): string {
  const [first = '', last = ''] = range.split('-');
  const size = parseIPv4(last) - parseIPv4(first) + 1;
  return `${first}/${32 - Math.round(Math.log2(size))}`;
}

/** The desired kernel state for the configuration, or undefined while no bound VXLAN exists. */
export function desiredFromConfig(store: NitroStore, underlayMtu: number, underlayAddresses: readonly string[], interfaces: readonly HostInterface[] = []): DesiredOverlay | undefined {
  const binding = store.list('vxlan_srcip_binding')[0];
  const vxlan = binding ? store.list('vxlan').find((v) => String(v.id) === String(binding.id)) : undefined;
  if (!binding || !vxlan) return undefined;
  const vni = Number(vxlan.id);
  const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
  const local = str(binding.srcip);
  const addresses = store.configured('nsip').filter((n) => n.type === 'SNIP' && !underlayAddresses.includes(str(n.ipaddress))).map((n) => `${str(n.ipaddress)}/${prefixOfNetmask(str(n.netmask))}`);
  const addresses6 = store.configured('nsip6').filter((n) => n.type === 'SNIP' && str(n.scope) !== 'link-local').flatMap((n) => nsip6Cidr(str(n.ipv6address)) ?? []);
  const arps = store.configured('arp').filter((a) => String(a.vxlan) === String(vni));
  const nd6s = store.configured('nd6').filter((n) => String(n.vxlan) === String(vni));
  const fdb = [
    ...[...arps, ...nd6s].filter((a) => a.vtep !== undefined).map((a) => ({ mac: str(a.mac).toLowerCase(), dst: str(a.vtep) })),
    ...store.configured('bridgetable').filter((b) => String(b.vxlan) === String(vni)).map((b) => ({ mac: str(b.mac).toLowerCase(), dst: str(b.vtep) })),
  ];
  return {
    vxlan: { name: `nsvx${vni}`, vni, port: Number(vxlan.port), local, mtu: underlayMtu - VXLAN_OVERHEAD_IPV4, mac: emulatedMac(local) },
    addresses: [...addresses, ...addresses6],
    // a node's arp and nd6 entries name the same MAC and VTEP: one FDB entry
    fdb: [...new Map(fdb.map((f) => [`${f.mac} ${f.dst}`, f])).values()],
    neighbours: [...arps.map((a) => ({ ip: str(a.ipaddress), mac: str(a.mac).toLowerCase() })), ...nd6s.map((n) => ({ ip: str(n.neighbor), mac: str(n.mac).toLowerCase() }))],
    // a gateway on the underlay subnet (a directly routed node) is reached on that interface
    ...placeRoutes(newestPerDestination([
      ...store.configured('route').map((r) => ({ dst: `${str(r.network)}/${prefixOfNetmask(str(r.netmask))}`, via: str(r.gateway) })),
      ...store.configured('route6').map((r) => ({ dst: str(r.network), via: str(r.gateway) })),
      // applied PBRs forward their destination range to their next hop (the emulator's data plane
      // does not match the source, which is always the overlay SNIP for these)
      ...store.appliedPbrs().map((p) => ({ dst: rangeToCidr(str(p.destipval)), via: str(p.nexthopval) })),
    ]), interfaces, local),
  };
}

/**
 * One kernel route per destination: while two routes to the same network coexist on the ADC (a
 * next hop being replaced, the new one added before the old is deleted), the newest is used. A
 * real ADC may balance over both (equal cost); either way both next hops work during the switch.
 */
function newestPerDestination<R extends { readonly dst: string }>(routes: readonly R[]): R[] {
  return [...new Map(routes.map((r) => [r.dst, r])).values()];
}

/** The desired kernel state of the emulated ADC given the namespace's interfaces (for dataPlaneSyncer). */
export function nitroDataPlane(store: NitroStore): (interfaces: readonly HostInterface[]) => DesiredOverlay | undefined {
  return (interfaces) => {
    const binding = store.list('vxlan_srcip_binding')[0];
    const srcip = typeof binding?.srcip === 'string' ? binding.srcip : '';
    return desiredFromConfig(store, mtuOfAddress(interfaces, srcip) ?? 1500, underlayAddresses(interfaces, 'nsvx'), interfaces);
  };
}
