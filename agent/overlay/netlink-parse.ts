/**
 * rtnetlink dump messages -> the same observations the iproute2 reader makes (observe.ts), as
 * pure functions. netlink@0.3 decodes the fixed headers and most attributes but leaves a link's
 * IFLA_LINKINFO as raw bytes, so the VXLAN attributes are decoded here (linux/if_link.h).
 *
 * What each function mirrors, so both readers agree on the same kernel (test/e2e/kernel-readers):
 * - links: `ip -d link show` (kind, VNI, local, port, learning, MTU, MAC, UP);
 * - addresses: `ip addr show` (IFA_LOCAL, else IFA_ADDRESS, with the prefix length; IPv4, and
 *   for the overlay device IPv6 too, without link-local addresses, which the kernel makes itself);
 * - FDB: `bridge fdb show dev D` entries that carry a remote (NDA_DST);
 * - neighbours: `ip neigh show dev D` entries of either family that have a link-layer address;
 * - routes: `ip -4 route show dev D` and `ip -6 route show dev D` (table main) with our protocol number.
 */
import { rt } from 'netlink';
import { formatIPv4 } from '../../shared/ipv4.ts';
import { formatIPv6 } from '../../shared/ip.ts';
import type { FdbEntry, ObservedNeighbour, ObservedVxlan, RouteEntry } from './state.ts';
import type { HostInterface } from './observe.ts';

const AF_INET = 2;
const AF_INET6 = 10;
const RT_TABLE_MAIN = 254;

// linux/if_link.h
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_VXLAN_ID = 1;
const IFLA_VXLAN_LOCAL = 4;
const IFLA_VXLAN_LEARNING = 7;
const IFLA_VXLAN_PORT = 15;
const IFLA_VXLAN_LOCAL6 = 17;
/** The top bit of nla_type (NLA_F_NESTED) and the next (NLA_F_NET_BYTEORDER) are flags, not type. */
const NLA_TYPE_MASK = 0x3fff;

/** Netlink attributes (struct nlattr: u16 length, u16 type, value, padded to 4 bytes) by type. */
export function parseAttributes(buf: Uint8Array): Map<number, Buffer> {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out = new Map<number, Buffer>();
  let at = 0;
  while (at + 4 <= view.length) {
    const len = view.readUInt16LE(at);
    if (len < 4 || at + len > view.length) break; // truncated: keep what was whole
    out.set(view.readUInt16LE(at + 2) & NLA_TYPE_MASK, view.subarray(at + 4, at + len));
    at += (len + 3) & ~3;
  }
  return out;
}

export interface LinkInfo {
  readonly kind: string;
  readonly vxlan?: { readonly vni: number; readonly local: string; readonly port: number; readonly learning: boolean };
}

/** IFLA_LINKINFO: the link's kind and, for a VXLAN link, its VNI, local address, port and learning. */
export function parseLinkInfo(raw: Uint8Array | undefined): LinkInfo {
  if (!raw) return { kind: 'unknown' };
  const info = parseAttributes(raw);
  const kindBytes = info.get(IFLA_INFO_KIND);
  const kind = kindBytes ? kindBytes.toString('latin1').replace(/\0.*$/s, '') : 'unknown';
  const dataBytes = info.get(IFLA_INFO_DATA);
  if (kind !== 'vxlan' || !dataBytes) return { kind };
  const data = parseAttributes(dataBytes);
  const id = data.get(IFLA_VXLAN_ID);
  const local = data.get(IFLA_VXLAN_LOCAL) ?? data.get(IFLA_VXLAN_LOCAL6);
  const port = data.get(IFLA_VXLAN_PORT);
  const learning = data.get(IFLA_VXLAN_LEARNING);
  return {
    kind,
    vxlan: {
      vni: id && id.length >= 4 ? id.readUInt32LE(0) : -1,
      local: ipOf(local) ?? '',
      port: port && port.length >= 2 ? port.readUInt16BE(0) : -1, // network byte order
      learning: learning && learning.length >= 1 ? learning[0] !== 0 : true,
    },
  };
}

function ipv4Of(bytes: Uint8Array | undefined): string | undefined {
  return bytes?.length === 4 ? formatIPv4(Buffer.from(bytes).readUInt32BE(0)) : undefined;
}

/** An address attribute of either family (4 or 16 bytes), in canonical text. */
function ipOf(bytes: Uint8Array | undefined): string | undefined {
  if (bytes?.length !== 16) return ipv4Of(bytes);
  const b = Buffer.from(bytes);
  return formatIPv6((b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8));
}

/** fe80::/10: the kernel gives every IPv6 interface one; not ours to keep or remove. */
const isLinkLocalIPv6 = (bytes: Uint8Array | undefined): boolean => bytes?.length === 16 && bytes[0] === 0xfe && ((bytes[1] ?? 0) & 0xc0) === 0x80;

function macOf(bytes: Uint8Array | undefined): string {
  return [...(bytes ?? [])].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function vxlanLinkOf(m: rt.LinkMessage): ObservedVxlan | undefined {
  const info = parseLinkInfo(m.attrs.linkinfo);
  if (!info.vxlan) return undefined;
  return {
    name: m.attrs.ifname ?? '', index: m.data.index ?? -1, kind: info.kind,
    vni: info.vxlan.vni, local: info.vxlan.local, port: info.vxlan.port, learning: info.vxlan.learning,
    mtu: m.attrs.mtu ?? 0, mac: macOf(m.attrs.address), up: m.data.flags?.up === true,
  };
}

/** The IPv4 addresses (CIDR form) of one interface; with `ipv6`, its IPv6 addresses too, but for link-local ones. */
export function addressesOf(msgs: readonly rt.AddressMessage[], index: number, ipv6 = false): string[] {
  return msgs.flatMap((m) => {
    if (m.data.index !== index || !(m.data.family === AF_INET || (ipv6 && m.data.family === AF_INET6))) return [];
    const raw = m.attrs.local ?? m.attrs.address;
    if (isLinkLocalIPv6(raw)) return [];
    const ip = ipOf(raw);
    return ip ? [`${ip}/${String(m.data.prefixlen ?? (m.data.family === AF_INET6 ? 128 : 32))}`] : [];
  });
}

/** FDB entries of one device that point at a remote VTEP (AF_BRIDGE neighbours with NDA_DST). */
export function fdbOf(msgs: readonly rt.NeighborMessage[], index: number): FdbEntry[] {
  return msgs.flatMap((m) => {
    // an IPv4 or (IPv6 underlay) IPv6 VTEP
    const dst = m.data.ifindex === index ? ipOf(m.attrs.dst) : undefined;
    return dst ? [{ mac: macOf(m.attrs.lladdr), dst }] : [];
  });
}

/** Neighbours (ARP and NDP) of one device that have a link-layer address. */
export function neighboursOf(msgs: readonly rt.NeighborMessage[], index: number): ObservedNeighbour[] {
  return msgs.flatMap((m) => {
    if ((m.data.family !== AF_INET && m.data.family !== AF_INET6) || m.data.ifindex !== index || !m.attrs.lladdr) return [];
    // the kernel's own IPv6 entries (multicast, link-local) are never ours
    if (m.data.family === AF_INET6 && (m.attrs.dst?.[0] === 0xff || isLinkLocalIPv6(m.attrs.dst))) return [];
    const ip = ipOf(m.attrs.dst);
    return ip ? [{ ip, mac: macOf(m.attrs.lladdr), permanent: m.data.state?.permanent === true }] : [];
  });
}

/** netlink@0.3 names the protocols it knows (KERNEL, BOOT, ...) and leaves others as numbers. */
function protocolNumber(p: rt.Route['protocol']): number {
  return typeof p === 'string' ? rt.RouteProtocol[p] : Number(p ?? -1);
}

/** Routes of the main table out of one device that carry `protocol`. */
export function routesOf(msgs: readonly rt.RouteMessage[], index: number, protocol: number): RouteEntry[] {
  return msgs.flatMap((m) => {
    const table = m.attrs.table ?? m.data.table;
    if ((m.data.family !== AF_INET && m.data.family !== AF_INET6) || table !== RT_TABLE_MAIN || m.attrs.oif !== index || protocolNumber(m.data.protocol) !== protocol) return [];
    return [{ dst: `${ipOf(m.attrs.dst) ?? (m.data.family === AF_INET6 ? '::' : '0.0.0.0')}/${String(m.data.dstLen ?? 0)}`, via: ipOf(m.attrs.gateway) ?? '' }];
  });
}

/** Every interface with its MTU, IPv4 addresses and (VXLAN) VNI and port, as `ip -d addr show` gives them. */
export function interfacesOf(links: readonly rt.LinkMessage[], addrs: readonly rt.AddressMessage[]): HostInterface[] {
  return links.map((l) => {
    const index = l.data.index ?? -1;
    const vxlan = parseLinkInfo(l.attrs.linkinfo).vxlan;
    return {
      name: l.attrs.ifname ?? '', mtu: l.attrs.mtu ?? 0, cidrs: addressesOf(addrs, index),
      cidrs6: addressesOf(addrs, index, true).filter((c) => c.includes(':')),
      ...(vxlan && vxlan.vni >= 0 ? { vxlan: { vni: vxlan.vni, port: vxlan.port } } : {}),
    };
  });
}
