// The netlink writer's exchange with the kernel, against a fake socket that answers as the kernel
// does (an error for every refused request whatever its flags, an ACK only where one was asked):
// datagrams of at most REQUESTS_PER_DATAGRAM requests with the ACK on the last, each sent after
// the one before is done, failures traced to their op, and a deadline. The encoding itself is
// checked against the real kernel and iproute2 in test/e2e/netlink-writer.test.ts.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { netlinkWriter, REQUESTS_PER_DATAGRAM, type DatagramSocket } from '../../agent/overlay/netlink-writer.ts';
import { NLMSG_ERROR, NLM_F_ACK, RTM_GETLINK, RTM_NEWLINK, type EntryOp } from '../../agent/overlay/netlink-encode.ts';
import { CommandTimeoutError } from '../../shared/command.ts';
import { parseMac } from '../../shared/mac.ts';

interface Sent { type: number; flags: number; seq: number }

function headers(datagram: Uint8Array): Sent[] {
  const v = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const out: Sent[] = [];
  for (let at = 0; at < datagram.byteLength; at += (v.getUint32(at, true) + 3) & ~3) out.push({ type: v.getUint16(at + 4, true), flags: v.getUint16(at + 6, true), seq: v.getUint32(at + 8, true) });
  return out;
}

function reply(type: number, seq: number, body: (v: DataView) => void): Buffer {
  const b = Buffer.alloc(36);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  v.setUint32(0, 36, true);
  v.setUint16(4, type, true);
  v.setUint32(8, seq, true);
  body(v);
  return b;
}

/** A kernel that refuses the requests `refuse` picks (by their position among all entry requests) and answers in order. */
function fakeKernel(refuse: (n: number) => boolean, silent = false): { socket: DatagramSocket; datagrams: Sent[][] } {
  const datagrams: Sent[][] = [];
  let listener: ((msg: Buffer) => void) | undefined;
  let n = 0;
  const socket: DatagramSocket = {
    send(msg, _o, cb) {
      const sent = headers(msg);
      datagrams.push(sent);
      cb?.();
      if (silent) return;
      const answers: Buffer[] = [];
      for (const h of sent) {
        if (h.type === RTM_GETLINK) {
          answers.push(reply(RTM_NEWLINK, h.seq, (v) => v.setInt32(20, 7, true)));
          continue;
        }
        const refused = refuse(n++);
        if (refused || (h.flags & NLM_F_ACK) !== 0) answers.push(reply(NLMSG_ERROR, h.seq, (v) => v.setInt32(16, refused ? -17 : 0, true)));
      }
      // the kernel's answers come in several datagrams, asynchronously
      setImmediate(() => answers.forEach((a) => listener?.(a)));
    },
    on(event: string, l: unknown) {
      if (event === 'message') listener = l as (msg: Buffer) => void;
      return socket;
    },
    close() {},
  };
  return { socket, datagrams };
}

const neigh = (i: number): EntryOp => ({ kind: 'neigh-replace', dev: 'chorus-4096', entry: { ip: `198.18.${16 + (i >> 8)}.${i & 255}`, mac: '02:c4:c6:12:10:02' } });

describe('netlink writer', () => {
  it('sends datagrams of at most REQUESTS_PER_DATAGRAM requests, the ACK asked on the last only, and reports exactly the refused ops', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 2 * REQUESTS_PER_DATAGRAM + 50 }), fc.uniqueArray(fc.nat(900), { maxLength: 20 }), async (count, refusedAt) => {
      const refused = new Set(refusedAt.filter((i) => i < count));
      const kernel = fakeKernel((n) => refused.has(n));
      const writer = netlinkWriter(1000, () => kernel.socket);
      const ops = Array.from({ length: count }, (_, i) => neigh(i));
      const failures = await writer.write(ops);
      expect(failures.map((f) => f.op)).toEqual([...refused].sort((a, b) => a - b).map((i) => ops[i]));
      expect(failures.every((f) => f.reason.startsWith('EEXIST'))).toBe(true);
      const entries = kernel.datagrams.slice(1);
      expect(kernel.datagrams[0]!.map((h) => h.type)).toEqual([RTM_GETLINK]);
      expect(entries.map((d) => d.length)).toEqual(Array.from({ length: Math.ceil(count / REQUESTS_PER_DATAGRAM) }, (_, i) => Math.min(REQUESTS_PER_DATAGRAM, count - i * REQUESTS_PER_DATAGRAM)));
      for (const d of entries) expect(d.map((h) => (h.flags & NLM_F_ACK) !== 0)).toEqual(d.map((_, i) => i === d.length - 1));
      writer.close();
    }), { numRuns: 40 });
  });

  it('fails at the command deadline when the kernel does not answer, and opens a fresh socket for the next write', async () => {
    let opened = 0;
    const writer = netlinkWriter(50, () => {
      opened++;
      return fakeKernel(() => false, opened === 1).socket;
    });
    await expect(writer.write([neigh(1)])).rejects.toThrow(CommandTimeoutError);
    await expect(writer.write([neigh(1)])).resolves.toEqual([]);
    expect(opened).toBe(2);
  });
});

describe('MAC addresses as the kernel takes them', () => {
  it('reads any aa:bb:cc:dd:ee:ff (either case) to its six bytes, and refuses anything else', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), fc.boolean(), (bytes, upper) => {
      const text = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
      expect([...parseMac(upper ? text.toUpperCase() : text)]).toEqual([...bytes]);
      expect(() => parseMac(text.slice(0, -1))).toThrow(/not a MAC address/);
      expect(() => parseMac(`${text}:`)).toThrow(/not a MAC address/);
      expect(() => parseMac(text.replaceAll(':', '-'))).toThrow(/not a MAC address/);
    }));
    expect(() => parseMac('0g:c4:c6:12:10:02')).toThrow('not a MAC address: "0g:c4:c6:12:10:02"');
  });
});
