/**
 * rtnetlink requests for the overlay's entries (FDB, static neighbours, routes), encoded by hand
 * (pure: op in, bytes out). They are the messages `bridge` and `ip` send for the lines apply.ts
 * writes (iproute2's bridge/fdb.c fdb_modify, ip/ipneigh.c ipneigh_modify, ip/iproute.c
 * iproute_modify): the same message type, flags, header fields and attributes, so the kernel
 * keeps the same state either way (test/e2e/netlink-writer.test.ts compares the two).
 *
 * Hand-encoded because many go in one datagram: the kernel takes every message of a sendmsg in
 * turn, so 15,000 entries are a few dozen system calls instead of one request and ACK each
 * (`ip -batch`) or a JavaScript encoder per message (netlink@0.3's own, measured slower than
 * `ip -batch`: docs/benchmarks.md).
 */
import { parseIp, type IpAddress } from '../../shared/ip.ts';
import { parseMac } from '../../shared/mac.ts';
import { isFloodEntry } from './diff.ts';
import { ROUTE_PROTOCOL, type Op } from './state.ts';

export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const NLMSG_ERROR = 2;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
const NLM_F_REPLACE = 0x100;
const NLM_F_CREATE = 0x400;
const NLM_F_APPEND = 0x800;

const AF_INET = 2;
const AF_BRIDGE = 7;
const AF_INET6 = 10;
const NUD_NOARP = 0x40;
const NUD_PERMANENT = 0x80;
const NTF_SELF = 0x02;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const IFLA_IFNAME = 3;
const RT_TABLE_MAIN = 254;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255;
const RTN_UNSPEC = 0;
const RTN_UNICAST = 1;
const RTNH_F_ONLINK = 0x4;

const NLMSG_HDRLEN = 16;
const align4 = (n: number): number => (n + 3) & ~3;

/** The kinds of op encoded here; links and addresses stay with `ip` (a few per device, once). */
export type EntryOp = Extract<Op, { kind: 'fdb-add' | 'fdb-del' | 'neigh-replace' | 'neigh-del' | 'route-replace' | 'route-del' }>;

/** Whether an op is one encodeEntryOp writes (an FDB entry, a neighbour, a route with a gateway of its own family). */
export function writableOverNetlink(op: Op): op is EntryOp {
  if (!(op.kind.startsWith('fdb-') || op.kind.startsWith('neigh-') || op.kind.startsWith('route-'))) return false;
  if (op.kind !== 'route-replace' || op.entry.via === '') return true;
  return parseIp(op.entry.via).family === prefixOf(op.entry.dst).address.family;
}

interface Attr { readonly type: number; readonly data: Uint8Array }

function addressBytes(a: IpAddress): Uint8Array {
  const bytes = new Uint8Array(a.family === 4 ? 4 : 16);
  let v = a.value;
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return bytes;
}

const u32 = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};

/** One netlink message: header (length, type, flags, seq, port 0), the family header, the attributes. */
function message(type: number, flags: number, seq: number, head: Uint8Array, attrs: readonly Attr[]): Uint8Array {
  const length = NLMSG_HDRLEN + align4(head.length) + attrs.reduce((sum, a) => sum + align4(4 + a.data.length), 0);
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  view.setUint32(0, length, true);
  view.setUint16(4, type, true);
  view.setUint16(6, flags, true);
  view.setUint32(8, seq, true);
  view.setUint32(12, 0, true);
  out.set(head, NLMSG_HDRLEN);
  let at = NLMSG_HDRLEN + align4(head.length);
  for (const a of attrs) {
    view.setUint16(at, 4 + a.data.length, true);
    view.setUint16(at + 2, a.type, true);
    out.set(a.data, at + 4);
    at += align4(4 + a.data.length);
  }
  return out;
}

/** struct ndmsg: family, pad, pad, ifindex, state, flags, type. */
function ndmsg(family: number, ifindex: number, state: number, flags: number): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint8(0, family);
  v.setInt32(4, ifindex, true);
  v.setUint16(8, state, true);
  v.setUint8(10, flags);
  return b;
}

/** struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags. */
function rtmsg(family: number, dstLen: number, scope: number, type: number, flags: number): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint8(0, family);
  v.setUint8(1, dstLen);
  v.setUint8(4, RT_TABLE_MAIN);
  v.setUint8(5, ROUTE_PROTOCOL);
  v.setUint8(6, scope);
  v.setUint8(7, type);
  v.setUint32(8, flags, true);
  return b;
}

const familyOf = (a: IpAddress): number => (a.family === 4 ? AF_INET : AF_INET6);

/** "address/len" or a bare address (a host route). */
function prefixOf(dst: string): { address: IpAddress; length: number } {
  const slash = dst.indexOf('/');
  const address = parseIp(slash < 0 ? dst : dst.slice(0, slash));
  return { address, length: slash < 0 ? (address.family === 4 ? 32 : 128) : Number(dst.slice(slash + 1)) };
}

/**
 * The request for one entry op, or undefined for one this encoder does not write the way `ip`
 * would (a route whose gateway is of the other family): apply.ts gives that one to `ip`.
 * `ifindex`: the index of the op's device. `ack`: ask for an ACK (errors are always answered).
 */
export function encodeEntryOp(op: EntryOp, ifindex: number, seq: number, ack: boolean): Uint8Array | undefined {
  const req = NLM_F_REQUEST | (ack ? NLM_F_ACK : 0);
  switch (op.kind) {
    case 'fdb-add':
    case 'fdb-del': {
      // bridge fdb {append|replace|del} MAC dev D dst IP self permanent: AF_BRIDGE, NTF_SELF, NOARP|PERMANENT
      const attrs = [{ type: NDA_LLADDR, data: parseMac(op.entry.mac) }, { type: NDA_DST, data: addressBytes(parseIp(op.entry.dst)) }];
      const head = ndmsg(AF_BRIDGE, ifindex, NUD_NOARP | NUD_PERMANENT, NTF_SELF);
      if (op.kind === 'fdb-del') return message(RTM_DELNEIGH, req, seq, head, attrs);
      return message(RTM_NEWNEIGH, req | NLM_F_CREATE | (isFloodEntry(op.entry.mac) ? NLM_F_APPEND : NLM_F_REPLACE), seq, head, attrs);
    }
    case 'neigh-replace':
    case 'neigh-del': {
      // ip neigh replace IP lladdr MAC dev D nud permanent / ip neigh del IP dev D
      const ip = parseIp(op.entry.ip);
      const head = ndmsg(familyOf(ip), ifindex, NUD_PERMANENT, 0);
      if (op.kind === 'neigh-del') return message(RTM_DELNEIGH, req, seq, head, [{ type: NDA_DST, data: addressBytes(ip) }]);
      return message(RTM_NEWNEIGH, req | NLM_F_CREATE | NLM_F_REPLACE, seq, head, [{ type: NDA_DST, data: addressBytes(ip) }, { type: NDA_LLADDR, data: parseMac(op.entry.mac) }]);
    }
    case 'route-replace':
    case 'route-del': {
      const { address, length } = prefixOf(op.entry.dst);
      const dst = { type: RTA_DST, data: addressBytes(address) };
      const oif = { type: RTA_OIF, data: u32(ifindex) };
      // ip route del DST dev D proto 196: type unspecified, scope nowhere
      if (op.kind === 'route-del') return message(RTM_DELROUTE, req, seq, rtmsg(familyOf(address), length, RT_SCOPE_NOWHERE, RTN_UNSPEC, 0), [dst, oif]);
      const flags = req | NLM_F_CREATE | NLM_F_REPLACE;
      // ip route replace DST dev D proto 196: onto the link itself, scope link
      if (op.entry.via === '') return message(RTM_NEWROUTE, flags, seq, rtmsg(familyOf(address), length, RT_SCOPE_LINK, RTN_UNICAST, 0), [dst, oif]);
      const via = parseIp(op.entry.via);
      if (via.family !== address.family) return undefined;
      // ip route replace DST via GW dev D proto 196 [onlink]: onlink on the VXLAN device, not toward an underlay neighbour
      const head = rtmsg(familyOf(address), length, RT_SCOPE_UNIVERSE, RTN_UNICAST, op.entry.dev === undefined ? RTNH_F_ONLINK : 0);
      return message(RTM_NEWROUTE, flags, seq, head, [dst, { type: RTA_GATEWAY, data: addressBytes(via) }, oif]);
    }
  }
}

/** RTM_GETLINK for one interface by name (the answer is an RTM_NEWLINK carrying its index). */
export function encodeGetLink(name: string, seq: number): Uint8Array {
  const ifname = new TextEncoder().encode(`${name}\0`);
  return message(RTM_GETLINK, NLM_F_REQUEST, seq, new Uint8Array(16), [{ type: IFLA_IFNAME, data: ifname }]);
}

/** One reply message: its type and seq, the errno of an NLMSG_ERROR (0: an ACK), the index of an RTM_NEWLINK. */
export interface Reply { readonly type: number; readonly seq: number; readonly errno?: number; readonly ifindex?: number }

/** The messages of one datagram from the kernel. */
export function parseReplies(datagram: Uint8Array): Reply[] {
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const replies: Reply[] = [];
  let at = 0;
  while (at + NLMSG_HDRLEN <= datagram.byteLength) {
    const length = view.getUint32(at, true);
    if (length < NLMSG_HDRLEN || at + length > datagram.byteLength) break;
    const type = view.getUint16(at + 4, true);
    const seq = view.getUint32(at + 8, true);
    if (type === NLMSG_ERROR) replies.push({ type, seq, errno: -view.getInt32(at + NLMSG_HDRLEN, true) });
    else if (type === RTM_NEWLINK) replies.push({ type, seq, ifindex: view.getInt32(at + NLMSG_HDRLEN + 4, true) });
    else replies.push({ type, seq });
    at += align4(length);
  }
  return replies;
}
