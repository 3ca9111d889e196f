/**
 * Writes the overlay's entries (FDB, static neighbours, routes) over an rtnetlink socket kept
 * open, many requests to a datagram (netlink-encode.ts): the gateway programs 5,000 nodes
 * (15,000 entries) in a few dozen system calls, and an agent's pass starts no `bridge` process.
 *
 * Only the last request of each datagram asks for an ACK: the kernel answers every request that
 * fails whatever its flags, in order, so the ACK of the last one means the datagram is done and
 * every failure in it has been reported. A datagram is sent only when the one before is done, so
 * the answers never outgrow the socket's receive buffer. Like the reader, it works in the
 * namespace the process runs in; each exchange has the command deadline, after which the pass
 * fails as a hung command does and a fresh socket is opened on the next write.
 */
import { RawNetlinkSocket } from 'netlink';
import { getSystemErrorMessage, getSystemErrorName } from 'node:util';
import { CommandTimeoutError } from '../../shared/command.ts';
import { DatagramBuilder, encodeEntryOp, encodeGetLink, parseReplies, NLMSG_ERROR, RTM_NEWLINK, type EntryOp, type Reply } from './netlink-encode.ts';

const NETLINK_ROUTE = 0;
/** Requests per datagram: at most ~80 bytes each, so about 32 KiB, well inside the default socket buffers. */
export const REQUESTS_PER_DATAGRAM = 400;

export class NetlinkWriteError extends Error {}

/** One request the kernel refused. */
export interface WriteFailure {
  readonly op: EntryOp;
  readonly errno: number;
  /** "EEXIST: file already exists" */
  readonly reason: string;
}

export interface EntryWriter {
  /** Applies the ops in order; resolves with those the kernel refused (the others are applied). */
  write(ops: readonly EntryOp[]): Promise<WriteFailure[]>;
  close(): void;
}

/** "ENODEV: no such device" for a netlink errno (positive), or the number when Node has no name for it. */
export const reasonOf = (errno: number): string => {
  try {
    return `${getSystemErrorName(-errno)}: ${getSystemErrorMessage(-errno)}`;
  } catch {
    return `errno ${errno}`;
  }
};

/** A netlink socket as the writer (and ethtool-netlink.ts) use it (RawNetlinkSocket; a fake in the unit tests). */
export interface DatagramSocket {
  send(msg: Uint8Array, options?: undefined, callback?: (error?: Error) => void): void;
  on(event: 'message', listener: (msg: Buffer) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  close(): void;
}

const openRoute = (): DatagramSocket => new RawNetlinkSocket(NETLINK_ROUTE, { recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 });

export function netlinkWriter(deadlineMs = 10_000, open: () => DatagramSocket = openRoute): EntryWriter {
  let socket: DatagramSocket | undefined;
  let seq = Math.floor(Math.random() * 0x7fff_0000);
  /** The exchange in flight: its last seq, and what to do with each reply. */
  let waiting: { readonly last: number; readonly onReply: (r: Reply) => void; readonly fail: (err: Error) => void } | undefined;

  const reopen = (): void => {
    socket?.close();
    socket = undefined;
  };
  const current = (): DatagramSocket => {
    if (socket) return socket;
    const fresh = open();
    fresh.on('message', (msg) => {
      if (fresh !== socket || !waiting) return;
      for (const r of parseReplies(msg)) waiting?.onReply(r);
    });
    fresh.on('error', (err) => {
      if (fresh !== socket) return;
      reopen();
      waiting?.fail(new NetlinkWriteError(`netlink: writing failed: ${err.message}`, { cause: err }));
    });
    socket = fresh;
    return fresh;
  };

  /** Sends one datagram; resolves when the reply carrying `last` has come (and `onReply` saw everything before it). */
  function exchange(datagram: Uint8Array, last: number, what: string, onReply: (r: Reply) => void): Promise<void> {
    const s = current();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting = undefined;
        reopen();
        reject(new CommandTimeoutError(`netlink: ${what} got no answer within ${String(deadlineMs)} ms (the command deadline)`));
      }, deadlineMs);
      const done = (err?: Error): void => {
        clearTimeout(timer);
        waiting = undefined;
        if (err) reject(err);
        else resolve();
      };
      waiting = {
        last,
        onReply: (r) => {
          onReply(r);
          if (r.seq === last) done();
        },
        fail: done,
      };
      s.send(datagram, undefined, (err) => {
        if (err) {
          reopen();
          done(new NetlinkWriteError(`netlink: sending ${what} failed: ${err.message}`, { cause: err }));
        }
      });
    });
  }

  async function indexOf(name: string): Promise<number> {
    const n = ++seq;
    let index: number | undefined;
    let errno = 0;
    await exchange(encodeGetLink(name, n), n, `looking up ${name}`, (r) => {
      if (r.seq !== n) return;
      if (r.type === RTM_NEWLINK) index = r.ifindex;
      else if (r.type === NLMSG_ERROR) errno = r.errno ?? 0;
    });
    if (index === undefined) throw new NetlinkWriteError(`netlink: no interface ${name} (${reasonOf(errno)})`);
    return index;
  }

  return {
    async write(ops) {
      if (ops.length === 0) return [];
      const indexes = new Map<string, number>();
      for (const dev of new Set(ops.map((o) => o.dev))) indexes.set(dev, await indexOf(dev));
      const failures: WriteFailure[] = [];
      const builder = new DatagramBuilder();
      for (let start = 0; start < ops.length; start += REQUESTS_PER_DATAGRAM) {
        const chunk = ops.slice(start, start + REQUESTS_PER_DATAGRAM);
        const first = seq + 1;
        for (const [i, op] of chunk.entries()) {
          if (!encodeEntryOp(builder, op, indexes.get(op.dev) ?? 0, ++seq, i === chunk.length - 1)) {
            builder.take();
            throw new NetlinkWriteError(`netlink: cannot encode ${op.kind} ${JSON.stringify(op.entry)} (apply.ts gives such ops to ip)`);
          }
        }
        const datagram = builder.take();
        await exchange(datagram, seq, `${chunk.length} changes`, (r) => {
          const op = r.seq >= first && r.seq <= seq ? chunk[r.seq - first] : undefined;
          if (op && r.type === NLMSG_ERROR && r.errno) failures.push({ op, errno: r.errno, reason: reasonOf(r.errno) });
        });
      }
      return failures;
    },
    close: reopen,
  };
}
