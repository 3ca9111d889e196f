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
import { parseIp } from '../../shared/ip.ts';
import { parseIPv4 } from '../../shared/ipv4.ts';
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

/** Address families (linux/socket.h), shared with netlink-reader.ts. */
export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;
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

/**
 * Messages written one after another into one buffer (a datagram): no allocation per message,
 * which at 15,000 entries was most of the encoding time.
 */
export class DatagramBuilder {
  private buf: Uint8Array;
  private view: DataView;
  private at = 0;
  private start = 0;

  constructor(capacity = 1 << 16) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.at;
  }

  /** The messages written so far, and a fresh start. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.at);
    this.at = 0;
    return out;
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.at + n));
    bigger.set(this.buf.subarray(0, this.at));
    this.buf = bigger;
    this.view = new DataView(bigger.buffer);
  }

  /** Starts a message: header (length set by end), then `head` bytes of family header, zeroed; returns where that header starts in `view`. */
  begin(type: number, flags: number, seq: number, head: number): number {
    const size = NLMSG_HDRLEN + align4(head);
    this.room(size);
    this.start = this.at;
    this.buf.fill(0, this.at, this.at + size);
    this.view.setUint16(this.at + 4, type, true);
    this.view.setUint16(this.at + 6, flags, true);
    this.view.setUint32(this.at + 8, seq, true);
    this.at += size;
    return this.start + NLMSG_HDRLEN;
  }

  /** The buffer's view, for writing a family header where begin said (valid until the next write). */
  get headers(): DataView {
    return this.view;
  }

  /** An attribute with these bytes as its payload. */
  bytes(type: number, payload: Uint8Array): void {
    this.buf.set(payload, this.header(type, payload.length));
  }

  /** An attribute's header, its payload zeroed; returns where the payload starts. */
  private header(type: number, size: number): number {
    const padded = align4(4 + size);
    this.room(padded);
    const at = this.at;
    this.view.setUint16(at, 4 + size, true);
    this.view.setUint16(at + 2, type, true);
    if (padded !== 4 + size) this.buf.fill(0, at + 4 + size, at + padded);
    this.at += padded;
    return at + 4;
  }

  address(type: number, a: Address): void {
    if (a.v4 !== undefined) {
      this.view.setUint32(this.header(type, 4), a.v4, false);
      return;
    }
    const v6 = a.v6 ?? 0n;
    const at = this.header(type, 16);
    this.view.setBigUint64(at, v6 >> 64n, false);
    this.view.setBigUint64(at + 8, v6 & 0xffff_ffff_ffff_ffffn, false);
  }

  mac(type: number, mac: string): void {
    this.buf.set(parseMac(mac), this.header(type, 6));
  }

  u32(type: number, n: number): void {
    this.view.setUint32(this.header(type, 4), n, true);
  }

  /** Ends the message: its length. */
  end(): void {
    this.view.setUint32(this.start, this.at - this.start, true);
  }
}

/** An address as the kernel takes it: IPv4 as a number (no bigint on the hot path), IPv6 as a bigint. */
interface Address { readonly v4?: number; readonly v6?: bigint; readonly family: 4 | 6 }

function addressOf(text: string): Address {
  if (!text.includes(':')) return { family: 4, v4: parseIPv4(text) };
  return { family: 6, v6: parseIp(text).value };
}

/** struct ndmsg (12 bytes): family, pad, pad, ifindex, state, flags, type. */
function ndmsg(out: DatagramBuilder, at: number, family: number, ifindex: number, state: number, flags: number): void {
  const v = out.headers;
  v.setUint8(at, family);
  v.setInt32(at + 4, ifindex, true);
  v.setUint16(at + 8, state, true);
  v.setUint8(at + 10, flags);
}

/** struct rtmsg (12 bytes): family, dst_len, src_len, tos, table, protocol, scope, type, flags. */
function rtmsg(out: DatagramBuilder, at: number, family: number, dstLen: number, scope: number, type: number, flags: number): void {
  const v = out.headers;
  v.setUint8(at, family);
  v.setUint8(at + 1, dstLen);
  v.setUint8(at + 4, RT_TABLE_MAIN);
  v.setUint8(at + 5, ROUTE_PROTOCOL);
  v.setUint8(at + 6, scope);
  v.setUint8(at + 7, type);
  v.setUint32(at + 8, flags, true);
}

const familyOf = (a: { family: 4 | 6 }): number => (a.family === 4 ? AF_INET : AF_INET6);

/** "address/len" or a bare address (a host route). */
function prefixOf(dst: string): { address: Address; length: number } {
  const slash = dst.indexOf('/');
  const address = addressOf(slash < 0 ? dst : dst.slice(0, slash));
  return { address, length: slash < 0 ? (address.family === 4 ? 32 : 128) : Number(dst.slice(slash + 1)) };
}

/**
 * Writes the request for one entry op into `out`, as `bridge` or `ip` would send it; false (and
 * nothing written) for one this encoder does not write the way `ip` would (a route whose gateway
 * is of the other family: apply.ts gives those to `ip`). `ifindex`: the index of the op's device.
 * `ack`: ask for an ACK (errors are always answered).
 */
export function encodeEntryOp(out: DatagramBuilder, op: EntryOp, ifindex: number, seq: number, ack: boolean): boolean {
  const req = NLM_F_REQUEST | (ack ? NLM_F_ACK : 0);
  switch (op.kind) {
    case 'fdb-add':
    case 'fdb-del':
      return encodeFdb(out, op, ifindex, seq, req);
    case 'neigh-replace':
    case 'neigh-del':
      return encodeNeighbour(out, op, ifindex, seq, req);
    case 'route-replace':
    case 'route-del':
      return encodeRoute(out, op, ifindex, seq, req);
  }
}

/** bridge fdb {append|replace|del} MAC dev D dst IP self permanent: AF_BRIDGE, NTF_SELF, NOARP|PERMANENT. */
function encodeFdb(out: DatagramBuilder, op: Extract<EntryOp, { kind: 'fdb-add' | 'fdb-del' }>, ifindex: number, seq: number, req: number): boolean {
  const flags = op.kind === 'fdb-del' ? req : req | NLM_F_CREATE | (isFloodEntry(op.entry.mac) ? NLM_F_APPEND : NLM_F_REPLACE);
  const dst = addressOf(op.entry.dst);
  ndmsg(out, out.begin(op.kind === 'fdb-del' ? RTM_DELNEIGH : RTM_NEWNEIGH, flags, seq, 12), AF_BRIDGE, ifindex, NUD_NOARP | NUD_PERMANENT, NTF_SELF);
  out.mac(NDA_LLADDR, op.entry.mac);
  out.address(NDA_DST, dst);
  out.end();
  return true;
}

/** ip neigh replace IP lladdr MAC dev D nud permanent / ip neigh del IP dev D. */
function encodeNeighbour(out: DatagramBuilder, op: Extract<EntryOp, { kind: 'neigh-replace' | 'neigh-del' }>, ifindex: number, seq: number, req: number): boolean {
  const ip = addressOf(op.entry.ip);
  const del = op.kind === 'neigh-del';
  ndmsg(out, out.begin(del ? RTM_DELNEIGH : RTM_NEWNEIGH, del ? req : req | NLM_F_CREATE | NLM_F_REPLACE, seq, 12), familyOf(ip), ifindex, NUD_PERMANENT, 0);
  out.address(NDA_DST, ip);
  if (!del) out.mac(NDA_LLADDR, op.entry.mac);
  out.end();
  return true;
}

function encodeRoute(out: DatagramBuilder, op: Extract<EntryOp, { kind: 'route-replace' | 'route-del' }>, ifindex: number, seq: number, req: number): boolean {
  const { address, length } = prefixOf(op.entry.dst);
  const via = op.kind === 'route-replace' && op.entry.via !== '' ? addressOf(op.entry.via) : undefined;
  if (via && via.family !== address.family) return false;
  if (op.kind === 'route-del') {
    // ip route del DST dev D proto 196: type unspecified, scope nowhere
    rtmsg(out, out.begin(RTM_DELROUTE, req, seq, 12), familyOf(address), length, RT_SCOPE_NOWHERE, RTN_UNSPEC, 0);
  } else if (!via) {
    // ip route replace DST dev D proto 196: onto the link itself, scope link
    rtmsg(out, out.begin(RTM_NEWROUTE, req | NLM_F_CREATE | NLM_F_REPLACE, seq, 12), familyOf(address), length, RT_SCOPE_LINK, RTN_UNICAST, 0);
  } else {
    // ip route replace DST via GW dev D proto 196 [onlink]: onlink on the VXLAN device, not toward an underlay neighbour
    rtmsg(out, out.begin(RTM_NEWROUTE, req | NLM_F_CREATE | NLM_F_REPLACE, seq, 12), familyOf(address), length, RT_SCOPE_UNIVERSE, RTN_UNICAST, op.entry.dev === undefined ? RTNH_F_ONLINK : 0);
  }
  out.address(RTA_DST, address);
  if (via) out.address(RTA_GATEWAY, via);
  out.u32(RTA_OIF, ifindex);
  out.end();
  return true;
}

/** RTM_GETLINK for one interface by name (the answer is an RTM_NEWLINK carrying its index). */
export function encodeGetLink(name: string, seq: number): Uint8Array {
  const out = new DatagramBuilder(64);
  out.begin(RTM_GETLINK, NLM_F_REQUEST, seq, 16);
  const ifname = new TextEncoder().encode(`${name}\0`);
  out.bytes(IFLA_IFNAME, ifname);
  out.end();
  return out.take();
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
