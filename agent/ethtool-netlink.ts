/**
 * Device features (`ethtool -k` / `ethtool -K`) over ethtool's generic netlink family, from the
 * socket the agent keeps open instead of two processes on every new device: an agent's start, a
 * node's join and the repair of a deleted device each ran `ethtool -k` and `ethtool -K`.
 *
 * The messages are those ethtool 5.x+ sends (Documentation/networking/ethtool-netlink.rst,
 * linux/ethtool_netlink.h): ETHTOOL_MSG_FEATURES_GET with the device name in the request header,
 * answered with the active features as a verbose bitset (each bit nested with its index, name and
 * a VALUE flag when set; a bitset marked NOMASK lists only the bits that are set), and
 * ETHTOOL_MSG_FEATURES_SET with the wanted bits (the named ones only: no NOMASK, so the others
 * are left as they are). Kernels before 5.6 have no ethtool family: the caller falls back to the
 * ethtool command (EthtoolUnavailableError). test/e2e/ethtool-netlink.test.ts compares what this
 * reads and sets with the ethtool command's own listing.
 */
import { RawNetlinkSocket } from 'netlink';
import { CommandTimeoutError } from '../shared/command.ts';
import { reasonOf, type DatagramSocket } from './overlay/netlink-writer.ts';

const NETLINK_GENERIC = 16;
const NLMSG_ERROR = 2;
const NLMSG_HDRLEN = 16;
const GENL_HDRLEN = 4;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;
// linux/genetlink.h
const GENL_ID_CTRL = 16;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;
// linux/ethtool_netlink.h
const ETHTOOL_GENL_NAME = 'ethtool';
const ETHTOOL_GENL_VERSION = 1;
const ETHTOOL_MSG_FEATURES_GET = 11;
const ETHTOOL_MSG_FEATURES_SET = 12;
const ETHTOOL_A_FEATURES_HEADER = 1;
const ETHTOOL_A_FEATURES_WANTED = 3;
const ETHTOOL_A_FEATURES_ACTIVE = 4;
const ETHTOOL_A_HEADER_DEV_NAME = 2;
const ETHTOOL_A_HEADER_FLAGS = 3;
const ETHTOOL_FLAG_OMIT_REPLY = 1 << 1;
const ETHTOOL_A_BITSET_BITS = 3;
const ETHTOOL_A_BITSET_BITS_BIT = 1;
const ETHTOOL_A_BITSET_BIT_NAME = 2;
const ETHTOOL_A_BITSET_BIT_VALUE = 3;
const ETHTOOL_A_BITSET_NOMASK = 1;

const ENOENT = 2;

const align4 = (n: number): number => (n + 3) & ~3;

/** This kernel has no ethtool netlink family (before 5.6, or built without it). */
export class EthtoolUnavailableError extends Error {}

/** The kernel refused an ethtool request. */
export class EthtoolNetlinkError extends Error {
  readonly errno: number;
  constructor(message: string, errno: number) {
    super(message);
    this.errno = errno;
  }
}

/** A netlink attribute to encode: a number is a u16/u32 by `width`, a string is NUL-terminated, an array is nested. */
export type Attr =
  | { readonly type: number; readonly u32: number }
  | { readonly type: number; readonly u16: number }
  | { readonly type: number; readonly string: string }
  | { readonly type: number; readonly flag: true }
  | { readonly type: number; readonly nested: readonly Attr[] };

function attrLength(a: Attr): number {
  if ('u32' in a) return 8;
  if ('u16' in a) return 8;
  if ('flag' in a) return 4;
  if ('string' in a) return align4(4 + Buffer.byteLength(a.string) + 1);
  return 4 + a.nested.reduce((sum, n) => sum + attrLength(n), 0);
}

function writeAttr(buf: Buffer, at: number, a: Attr): number {
  const len = 'string' in a ? 4 + Buffer.byteLength(a.string) + 1 : attrLength(a);
  buf.writeUInt16LE(len, at);
  buf.writeUInt16LE('nested' in a ? a.type | NLA_F_NESTED : a.type, at + 2);
  if ('u32' in a) buf.writeUInt32LE(a.u32, at + 4);
  else if ('u16' in a) buf.writeUInt16LE(a.u16, at + 4);
  else if ('string' in a) buf.write(`${a.string}\0`, at + 4, 'utf8');
  else if ('nested' in a) {
    let inner = at + 4;
    for (const n of a.nested) inner = writeAttr(buf, inner, n);
  }
  return at + align4(len);
}

/** One generic netlink request: nlmsghdr, genlmsghdr, attributes. */
export function encodeGenlRequest(family: number, cmd: number, version: number, seq: number, attrs: readonly Attr[], ack: boolean): Buffer {
  const length = NLMSG_HDRLEN + GENL_HDRLEN + attrs.reduce((sum, a) => sum + align4(attrLength(a)), 0);
  const buf = Buffer.alloc(length);
  buf.writeUInt32LE(length, 0);
  buf.writeUInt16LE(family, 4);
  buf.writeUInt16LE(NLM_F_REQUEST | (ack ? NLM_F_ACK : 0), 6);
  buf.writeUInt32LE(seq, 8);
  buf.writeUInt32LE(0, 12);
  buf.writeUInt8(cmd, NLMSG_HDRLEN);
  buf.writeUInt8(version, NLMSG_HDRLEN + 1);
  let at = NLMSG_HDRLEN + GENL_HDRLEN;
  for (const a of attrs) at = writeAttr(buf, at, a);
  return buf;
}

/** The controller's request for a family's id by name. */
export const encodeGetFamily = (name: string, seq: number): Buffer =>
  encodeGenlRequest(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, seq, [{ type: CTRL_ATTR_FAMILY_NAME, string: name }], false);

const header = (dev: string, flags: number): Attr => ({
  type: ETHTOOL_A_FEATURES_HEADER,
  nested: [{ type: ETHTOOL_A_HEADER_DEV_NAME, string: dev }, ...(flags ? [{ type: ETHTOOL_A_HEADER_FLAGS, u32: flags }] : [])],
});

export const encodeFeaturesGet = (family: number, dev: string, seq: number): Buffer =>
  encodeGenlRequest(family, ETHTOOL_MSG_FEATURES_GET, ETHTOOL_GENL_VERSION, seq, [header(dev, 0)], false);

/** Sets the named features on or off and leaves every other one as it is (a bitset with a mask: no NOMASK). */
export function encodeFeaturesSet(family: number, dev: string, wanted: ReadonlyMap<string, boolean>, seq: number): Buffer {
  const bits: Attr[] = [...wanted].map(([name, on]) => ({
    type: ETHTOOL_A_BITSET_BITS_BIT,
    nested: [{ type: ETHTOOL_A_BITSET_BIT_NAME, string: name }, ...(on ? [{ type: ETHTOOL_A_BITSET_BIT_VALUE, flag: true } as const] : [])],
  }));
  return encodeGenlRequest(family, ETHTOOL_MSG_FEATURES_SET, ETHTOOL_GENL_VERSION, seq, [
    header(dev, ETHTOOL_FLAG_OMIT_REPLY),
    { type: ETHTOOL_A_FEATURES_WANTED, nested: [{ type: ETHTOOL_A_BITSET_BITS, nested: bits }] },
  ], true);
}

/** Every attribute in order, repeated types included (a bitset's bits are many of one type). */
export function attributeList(buf: Uint8Array): { type: number; value: Buffer }[] {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: { type: number; value: Buffer }[] = [];
  let at = 0;
  while (at + 4 <= view.length) {
    const len = view.readUInt16LE(at);
    if (len < 4 || at + len > view.length) break;
    out.push({ type: view.readUInt16LE(at + 2) & NLA_TYPE_MASK, value: view.subarray(at + 4, at + len) });
    at += align4(len);
  }
  return out;
}

export interface GenlReply {
  readonly seq: number;
  /** The message type: NLMSG_ERROR (2) for an error or ACK, else the family id. */
  readonly type: number;
  /** For NLMSG_ERROR: 0 for an ACK, else the positive errno. */
  readonly errno?: number;
  /** The attributes after the genlmsghdr (not for NLMSG_ERROR). */
  readonly attrs?: Buffer;
}

export function parseGenlReplies(datagram: Uint8Array): GenlReply[] {
  const view = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const out: GenlReply[] = [];
  let at = 0;
  while (at + NLMSG_HDRLEN <= view.length) {
    const length = view.readUInt32LE(at);
    if (length < NLMSG_HDRLEN || at + length > view.length) break;
    const type = view.readUInt16LE(at + 4);
    const seq = view.readUInt32LE(at + 8);
    if (type === NLMSG_ERROR) out.push({ seq, type, errno: -view.readInt32LE(at + NLMSG_HDRLEN) });
    else out.push({ seq, type, attrs: view.subarray(at + NLMSG_HDRLEN + GENL_HDRLEN, at + length) });
    at += align4(length);
  }
  return out;
}

/** The family id in the controller's answer to CTRL_CMD_GETFAMILY. */
export function familyIdOf(attrs: Buffer): number | undefined {
  const id = attributeList(attrs).find((a) => a.type === CTRL_ATTR_FAMILY_ID);
  return id && id.value.length >= 2 ? id.value.readUInt16LE(0) : undefined;
}

/**
 * The active features in a FEATURES_GET reply, by name: true when on. A NOMASK bitset (the
 * kernel's form for these) lists only the bits that are set; otherwise a bit is on when it carries
 * the VALUE flag.
 */
export function activeFeaturesOf(attrs: Buffer): Map<string, boolean> {
  const active = attributeList(attrs).find((a) => a.type === ETHTOOL_A_FEATURES_ACTIVE);
  const out = new Map<string, boolean>();
  if (!active) return out;
  const bitset = attributeList(active.value);
  const listOnly = bitset.some((a) => a.type === ETHTOOL_A_BITSET_NOMASK);
  const bits = bitset.find((a) => a.type === ETHTOOL_A_BITSET_BITS);
  for (const bit of bits ? attributeList(bits.value) : []) {
    if (bit.type !== ETHTOOL_A_BITSET_BITS_BIT) continue;
    const fields = attributeList(bit.value);
    const name = fields.find((f) => f.type === ETHTOOL_A_BITSET_BIT_NAME)?.value.toString('utf8').replace(/\0.*$/s, '');
    if (name !== undefined) out.set(name, listOnly || fields.some((f) => f.type === ETHTOOL_A_BITSET_BIT_VALUE));
  }
  return out;
}

/** The socket as used here (RawNetlinkSocket; a fake in the unit tests). */
export type GenlSocket = DatagramSocket;

export interface DeviceFeatures {
  /** The device's active features by name (`ethtool -k`: on / off). */
  get(dev: string): Promise<Map<string, boolean>>;
  /** Turns the named features on or off (`ethtool -K dev name on|off ...`). */
  set(dev: string, wanted: ReadonlyMap<string, boolean>): Promise<void>;
  close(): void;
}

const openGeneric = (): GenlSocket => new RawNetlinkSocket(NETLINK_GENERIC, { recvBufferSize: 1 << 18, sendBufferSize: 1 << 16 });

/**
 * Features over one generic netlink socket, opened at first use in the namespace the process runs
 * in. One request in flight at a time, each with the command deadline; a socket that failed or
 * timed out is replaced at the next request.
 */
export function ethtoolNetlink(deadlineMs = 10_000, open: () => GenlSocket = openGeneric): DeviceFeatures {
  let socket: GenlSocket | undefined;
  let family: Promise<number> | undefined;
  let seq = Math.floor(Math.random() * 0x7fff_0000);
  let waiting: { readonly seq: number; readonly done: (r: GenlReply | Error) => void } | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  const reopen = (): void => {
    socket?.close();
    socket = undefined;
  };
  const current = (): GenlSocket => {
    if (socket) return socket;
    const fresh = open();
    fresh.on('message', (msg) => {
      if (fresh !== socket) return;
      for (const r of parseGenlReplies(msg)) if (waiting && r.seq === waiting.seq) waiting.done(r);
    });
    fresh.on('error', (err) => {
      if (fresh !== socket) return;
      reopen();
      waiting?.done(new EthtoolNetlinkError(`ethtool netlink: ${err.message}`, 0));
    });
    socket = fresh;
    return fresh;
  };

  /** Sends one request and resolves with its one answer (a reply, or the error/ACK message). */
  function exchange(build: (seq: number) => Buffer, what: string): Promise<GenlReply> {
    const run = (): Promise<GenlReply> => new Promise<GenlReply>((resolve, reject) => {
      const n = ++seq;
      const s = current();
      const timer = setTimeout(() => {
        waiting = undefined;
        reopen();
        reject(new CommandTimeoutError(`ethtool netlink: ${what} got no answer within ${String(deadlineMs)} ms (the command deadline)`));
      }, deadlineMs);
      waiting = {
        seq: n,
        done: (r) => {
          clearTimeout(timer);
          waiting = undefined;
          if (r instanceof Error) reject(r);
          else resolve(r);
        },
      };
      s.send(build(n), undefined, (err) => {
        if (err) {
          reopen();
          waiting?.done(new EthtoolNetlinkError(`ethtool netlink: sending ${what} failed: ${err.message}`, 0));
        }
      });
    });
    const next = queue.then(run, run);
    queue = next.catch(() => undefined);
    return next;
  }

  async function lookUpFamily(): Promise<number> {
    const r = await exchange((n) => encodeGetFamily(ETHTOOL_GENL_NAME, n), 'looking up the ethtool family');
    if (r.type === NLMSG_ERROR) {
      if (r.errno === ENOENT) throw new EthtoolUnavailableError('this kernel has no ethtool netlink family (Linux 5.6 or later has it)');
      throw new EthtoolNetlinkError(`ethtool netlink: looking up the ethtool family: ${reasonOf(r.errno ?? 0)}`, r.errno ?? 0);
    }
    const id = r.attrs ? familyIdOf(r.attrs) : undefined;
    if (id === undefined) throw new EthtoolNetlinkError('ethtool netlink: the controller answered without a family id', 0);
    return id;
  }

  /** The family id, looked up once (requests that come together share the lookup; a failed one is tried again). */
  function familyId(): Promise<number> {
    family ??= lookUpFamily().catch((err: unknown) => {
      family = undefined;
      throw err;
    });
    return family;
  }

  return {
    async get(dev) {
      const id = await familyId();
      const r = await exchange((n) => encodeFeaturesGet(id, dev, n), `reading the features of ${dev}`);
      if (r.type === NLMSG_ERROR) throw new EthtoolNetlinkError(`ethtool -k ${dev} (netlink) failed: ${reasonOf(r.errno ?? 0)}`, r.errno ?? 0);
      return activeFeaturesOf(r.attrs ?? Buffer.alloc(0));
    },
    async set(dev, wanted) {
      const id = await familyId();
      const r = await exchange((n) => encodeFeaturesSet(id, dev, wanted, n), `setting features of ${dev}`);
      const words = [...wanted].map(([name, on]) => `${name} ${on ? 'on' : 'off'}`).join(' ');
      if (r.type !== NLMSG_ERROR) throw new EthtoolNetlinkError(`ethtool -K ${dev} ${words} (netlink): unexpected answer (type ${String(r.type)})`, 0);
      if (r.errno) throw new EthtoolNetlinkError(`ethtool -K ${dev} ${words} (netlink) failed: ${reasonOf(r.errno)}`, r.errno);
    },
    close: reopen,
  };
}
