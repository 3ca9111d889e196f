// The pure half of the netlink reader (netlink-parse.ts) and its failure handling. That it reads
// a real kernel as iproute2 does is test/e2e/kernel-readers.test.ts.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { RtNetlinkSocket, rt } from 'netlink';
import { addressesOf, neighboursOf, parseAttributes, parseLinkInfo, routesOf } from '../../agent/overlay/netlink-parse.ts';
import { netlinkReader, NetlinkReadError } from '../../agent/overlay/netlink-reader.ts';
import { CommandTimeoutError } from '../../shared/command.ts';

/** struct nlattr: u16 length (header included), u16 type, value, padded to 4 bytes. */
function attr(type: number, value: Uint8Array): Buffer {
  const len = 4 + value.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  Buffer.from(value).copy(out, 4);
  return out;
}
const u32le = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
const u16be = (v: number): Buffer => { const b = Buffer.alloc(2); b.writeUInt16BE(v); return b; };
const NESTED = 0x8000;

function vxlanLinkInfo(vni: number, local: number[] | undefined, port: number, learning: boolean): Buffer {
  const data = Buffer.concat([
    attr(1, u32le(vni)),
    ...(local ? [attr(4, Uint8Array.from(local))] : []),
    attr(7, Uint8Array.of(learning ? 1 : 0)),
    attr(15, u16be(port)),
  ]);
  return Buffer.concat([attr(1, Buffer.from('vxlan\0')), attr(2 | NESTED, data)]);
}

describe('netlink attributes', () => {
  it('reads back every attribute it is given, whatever their sizes (last one of a type wins)', () => {
    fc.assert(fc.property(fc.array(fc.record({ type: fc.integer({ min: 0, max: 0x3fff }), value: fc.uint8Array({ maxLength: 40 }) }), { maxLength: 20 }), (attrs) => {
      const parsed = parseAttributes(Buffer.concat(attrs.map((a) => attr(a.type, a.value))));
      const expected = new Map(attrs.map((a) => [a.type, Buffer.from(a.value)]));
      expect(new Map([...parsed].map(([k, v]) => [k, Buffer.from(v)]))).toEqual(expected);
    }));
  });

  it('keeps the whole attributes of a truncated buffer and never throws', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (junk) => {
      expect(() => parseAttributes(junk)).not.toThrow();
    }));
    const whole = Buffer.concat([attr(1, Uint8Array.of(1, 2, 3, 4)), attr(2, Uint8Array.of(5, 6, 7, 8))]);
    expect([...parseAttributes(whole.subarray(0, whole.length - 2)).keys()]).toEqual([1]);
  });

  it('masks the nested and byte-order flags out of the type', () => {
    expect([...parseAttributes(attr(2 | NESTED | 0x4000, Uint8Array.of(0))).keys()]).toEqual([2]);
  });
});

describe('link info', () => {
  it('decodes a VXLAN link: VNI, local address, port in network byte order, learning', () => {
    expect(parseLinkInfo(vxlanLinkInfo(16_777_215, [198, 18, 0, 1], 4789, false))).toEqual({ kind: 'vxlan', vxlan: { vni: 16_777_215, local: '198.18.0.1', port: 4789, learning: false } });
    expect(parseLinkInfo(vxlanLinkInfo(1, undefined, 8472, true))).toEqual({ kind: 'vxlan', vxlan: { vni: 1, local: '', port: 8472, learning: true } });
  });

  it('gives other kinds without VXLAN data, and "unknown" without link info', () => {
    expect(parseLinkInfo(attr(1, Buffer.from('veth\0')))).toEqual({ kind: 'veth' });
    expect(parseLinkInfo(undefined)).toEqual({ kind: 'unknown' });
  });
});

describe('routes', () => {
  // netlink@0.3 gives protocols it has no name for as plain numbers (196 is ours)
  const route = (protocol: number | 'KERNEL' | 'STATIC', table: number, oif: number): rt.RouteMessage => ({
    kind: 'route', data: { family: 2, dstLen: 24, table, protocol }, attrs: { dst: Buffer.from([198, 19, 0, 0]), oif, gateway: Buffer.from([198, 18, 16, 1]) },
  });

  it('keeps only main-table routes out of the device with our protocol, named or numbered', () => {
    const msgs = [route(196, 254, 4), route('KERNEL', 254, 4), route(196, 100, 4), route(196, 254, 5), route('STATIC', 254, 4)];
    expect(routesOf(msgs, 4, 196)).toEqual([{ dst: '198.19.0.0/24', via: '198.18.16.1' }]);
    expect(routesOf(msgs, 4, 4)).toEqual([{ dst: '198.19.0.0/24', via: '198.18.16.1' }]); // RTPROT_STATIC is 4
  });
});

describe('IPv6 (a dual-stack overlay)', () => {
  const v6 = (text: string): Buffer => {
    const [head = '', tail = ''] = text.split('::');
    const groups = (x: string): number[] => (x === '' ? [] : x.split(':').map((g) => Number.parseInt(g, 16)));
    const all = [...groups(head), ...Array<number>(8 - groups(head).length - groups(tail).length).fill(0), ...groups(tail)];
    const b = Buffer.alloc(16);
    all.forEach((g, i) => b.writeUInt16BE(g, 2 * i));
    return b;
  };

  it('reads IPv6 routes and neighbours in canonical text', () => {
    const route = { kind: 'route', data: { family: 10, dstLen: 64, table: 254, protocol: 196 }, attrs: { dst: v6('fd00:10::'), oif: 4, gateway: v6('fd00:c0::2') } } as unknown as rt.RouteMessage;
    expect(routesOf([route], 4, 196)).toEqual([{ dst: 'fd00:10::/64', via: 'fd00:c0::2' }]);
    const neigh = { kind: 'neighbor', data: { family: 10, ifindex: 4, state: { permanent: true } }, attrs: { dst: v6('fd00:c0::1'), lladdr: Buffer.from([2, 0xc4, 0xc6, 0x12, 0x10, 1]) } } as unknown as rt.NeighborMessage;
    expect(neighboursOf([neigh], 4)).toEqual([{ ip: 'fd00:c0::1', mac: '02:c4:c6:12:10:01', permanent: true }]);
    // the kernel's own entries on an IPv6 interface (all-MLDv2-routers multicast, a link-local peer) are not listed (found on the real kernel: test/e2e/kernel-readers)
    const kernels = [v6('ff02::16'), v6('fe80::1')].map((dst) => ({ ...neigh, attrs: { ...neigh.attrs, dst } }));
    expect(neighboursOf(kernels, 4)).toEqual([]);
  });

  it('lists a device\'s IPv6 addresses only when asked, and never the link-local one the kernel makes', () => {
    const addr = (family: number, local: Buffer, prefixlen: number): rt.AddressMessage => ({ kind: 'address', data: { family, index: 4, prefixlen }, attrs: { local } } as unknown as rt.AddressMessage);
    const msgs = [addr(2, Buffer.from([198, 18, 16, 2]), 20), addr(10, v6('fd00:c0::2'), 64), addr(10, v6('fe80::c4:c6ff:fe12:1002'), 64)];
    expect(addressesOf(msgs, 4)).toEqual(['198.18.16.2/20']);
    expect(addressesOf(msgs, 4, true)).toEqual(['198.18.16.2/20', 'fd00:c0::2/64']);
  });
});

describe('netlink reader failures', () => {
  function fakeSocket(getLinks: () => Promise<rt.LinkMessage[]>): { socket: RtNetlinkSocket; closed: () => boolean } {
    let closed = false;
    const s = {
      getLinks, getAddresses: () => Promise.resolve([]),
      socket: { on: () => s.socket, close: () => { closed = true; } },
    };
    return { socket: s as unknown as RtNetlinkSocket, closed: () => closed };
  }

  it('turns an unanswered request into a command timeout, closes the socket and opens a fresh one next time', async () => {
    const sockets = [
      fakeSocket(() => Promise.reject(new Error('Timeout has been reached'))),
      fakeSocket(() => Promise.resolve([{ kind: 'link', data: { index: 7 }, attrs: { ifname: 'ul0', mtu: 9000 } }])),
    ];
    let opened = 0;
    const reader = netlinkReader(250, () => {
      const next = sockets[opened++];
      if (!next) throw new Error('no more sockets');
      return next.socket;
    });
    const err = await reader.interfaces().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandTimeoutError);
    expect((err as Error).message).toBe('netlink: reading interfaces got no answer within 250 ms (the command deadline)');
    expect(sockets[0]?.closed()).toBe(true);
    expect(await reader.interfaces()).toEqual([{ name: 'ul0', mtu: 9000, cidrs: [], cidrs6: [] }]);
    expect(await reader.interfaces()).toHaveLength(1);
    expect(opened).toBe(2); // the healthy socket is kept
  });

  it('names what it was reading when the kernel refuses', async () => {
    const reader = netlinkReader(1000, () => fakeSocket(() => Promise.reject(new Error('EPERM'))).socket);
    await expect(reader.overlay('chorus-4096')).rejects.toThrow(new NetlinkReadError('netlink: reading overlay device chorus-4096 failed: EPERM'));
  });
});
