// Device features over ethtool netlink without a kernel: the request bytes as the kernel parses
// them, the active features read from a reply in either bitset form, the exchange against a fake
// socket (family lookup, one request at a time, deadline, a kernel without the family), and the
// fallback to the ethtool command. What the kernel does with the requests is checked against the
// ethtool command in test/e2e/ethtool-netlink.test.ts.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  EthtoolNetlinkError, EthtoolUnavailableError, activeFeaturesOf, attributeList, encodeFeaturesSet, encodeGenlRequest,
  ethtoolNetlink, parseGenlReplies, type Attr, type DeviceFeatures, type GenlSocket,
} from '../../agent/ethtool-netlink.ts';
import { deviceFeatures, ensureTxChecksum } from '../../agent/host.ts';
import { CommandTimeoutError } from '../../shared/command.ts';

const NLA_F_NESTED = 0x8000;
const FAMILY = 23;

/** Raw attributes (type with its flag bits) of a buffer, nested ones expanded. */
function rawAttrs(buf: Buffer): { type: number; value: Buffer }[] {
  const out: { type: number; value: Buffer }[] = [];
  for (let at = 0; at + 4 <= buf.length;) {
    const len = buf.readUInt16LE(at);
    out.push({ type: buf.readUInt16LE(at + 2), value: buf.subarray(at + 4, at + len) });
    at += (len + 3) & ~3;
  }
  return out;
}

const text = (b: Buffer | undefined): string | undefined => b?.toString('utf8');

describe('ethtool netlink requests', () => {
  it('a FEATURES_SET names each wanted bit, flags the ones to turn on, marks nests and asks for an ACK', () => {
    fc.assert(fc.property(
      fc.stringMatching(/^[a-z][a-z0-9-]{0,14}$/),
      fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,30}$/), fc.boolean()), { minLength: 1, maxLength: 8, selector: ([n]) => n }),
      fc.integer({ min: 1, max: 0x7fff_ffff }),
      (dev, wanted, seq) => {
        const msg = encodeFeaturesSet(FAMILY, dev, new Map(wanted), seq);
        expect(msg.readUInt32LE(0)).toBe(msg.length);
        expect(msg.length % 4).toBe(0);
        expect(msg.readUInt16LE(4)).toBe(FAMILY);
        expect(msg.readUInt16LE(6)).toBe(0x1 | 0x4);
        expect(msg.readUInt32LE(8)).toBe(seq);
        expect([msg.readUInt8(16), msg.readUInt8(17)]).toEqual([12, 1]);
        const [head, want] = rawAttrs(msg.subarray(20));
        expect(head?.type).toBe(1 | NLA_F_NESTED);
        const headAttrs = attributeList(head?.value ?? Buffer.alloc(0));
        expect(text(headAttrs.find((a) => a.type === 2)?.value)).toBe(`${dev}\0`);
        expect(headAttrs.find((a) => a.type === 3)?.value.readUInt32LE(0)).toBe(2);
        expect(want?.type).toBe(3 | NLA_F_NESTED);
        const bitset = rawAttrs(want?.value ?? Buffer.alloc(0));
        // no NOMASK: only the named bits change
        expect(bitset.map((a) => a.type)).toEqual([3 | NLA_F_NESTED]);
        const bits = rawAttrs(bitset[0]?.value ?? Buffer.alloc(0));
        expect(bits.every((b) => b.type === (1 | NLA_F_NESTED))).toBe(true);
        const decoded = bits.map((b) => {
          const f = attributeList(b.value);
          return [text(f.find((x) => x.type === 2)?.value)?.replace(/\0$/, ''), f.some((x) => x.type === 3)];
        });
        expect(decoded).toEqual(wanted);
      },
    ));
  });

  it('reads the active features from either bitset form', () => {
    const bit = (name: string, on: boolean): Attr => ({ type: 1, nested: [{ type: 1, u32: 7 }, { type: 2, string: name }, ...(on ? [{ type: 3, flag: true } as const] : [])] });
    const reply = (bitset: Attr[]): Buffer => encodeGenlRequest(FAMILY, 11, 1, 9, [{ type: 1, nested: [{ type: 2, string: 'vx0' }] }, { type: 4, nested: bitset }], false).subarray(20);
    // the kernel's form: NOMASK, only the bits that are set
    expect(activeFeaturesOf(reply([{ type: 1, flag: true }, { type: 2, u32: 64 }, { type: 3, nested: [bit('rx-gro', false), bit('tx-checksum-ip-generic', false)] }])))
      .toEqual(new Map([['rx-gro', true], ['tx-checksum-ip-generic', true]]));
    // with a mask: VALUE says which are on
    expect(activeFeaturesOf(reply([{ type: 2, u32: 64 }, { type: 3, nested: [bit('rx-gro', true), bit('tx-checksum-ip-generic', false)] }])))
      .toEqual(new Map([['rx-gro', true], ['tx-checksum-ip-generic', false]]));
    expect(activeFeaturesOf(Buffer.alloc(0))).toEqual(new Map());
  });
});

const nameIn = (nest: Buffer | undefined): string => text(attributeList(nest ?? Buffer.alloc(0)).find((a) => a.type === 2)?.value)?.replace(/\0$/, '') ?? '';

function getReply(seq: number, features: Map<string, boolean>): Buffer {
  const on = [...features].filter(([, v]) => v).map(([name]): Attr => ({ type: 1, nested: [{ type: 2, string: name }] }));
  return encodeGenlRequest(FAMILY, 11, 1, seq, [{ type: 4, nested: [{ type: 1, flag: true }, { type: 3, nested: on }] }], false);
}

/** FEATURES_SET as the kernel does it, except that `fixed-feature` cannot change (and no error says so). */
function setFeatures(features: Map<string, boolean>, attrs: { type: number; value: Buffer }[]): void {
  const bits = attributeList(attributeList(attrs.find((a) => a.type === 3)?.value ?? Buffer.alloc(0))[0]?.value ?? Buffer.alloc(0));
  for (const b of bits) {
    const f = attributeList(b.value);
    const name = nameIn(b.value);
    if (name !== 'fixed-feature') features.set(name, f.some((x) => x.type === 3));
  }
}

/** A kernel behind a fake socket: the ethtool family under FAMILY (or none), features per device. */
function fakeKernel(o: { family?: boolean; silent?: boolean; devices?: Map<string, Map<string, boolean>> } = {}): { open: () => GenlSocket; opened: () => number; sent: number[] } {
  const devices = o.devices ?? new Map([['vx0', new Map([['tx-checksum-ip-generic', true], ['rx-gro', true]])]]);
  const sent: number[] = [];
  let opened = 0;
  const open = (): GenlSocket => {
    opened++;
    let listener: ((msg: Buffer) => void) | undefined;
    const answer = (b: Buffer): void => {
      setImmediate(() => listener?.(b));
    };
    const error = (seq: number, errno: number): Buffer => {
      const b = Buffer.alloc(36);
      b.writeUInt32LE(36, 0);
      b.writeUInt16LE(2, 4);
      b.writeUInt32LE(seq, 8);
      b.writeInt32LE(-errno, 16);
      return b;
    };
    return {
      send(msg, _o, cb) {
        cb?.();
        const [req] = parseGenlReplies(msg);
        if (!req?.attrs) return;
        const cmd = Buffer.from(msg).readUInt8(16);
        sent.push(cmd);
        if (o.silent) return;
        const attrs = attributeList(req.attrs);
        if (req.type === 16) return answer(o.family === false ? error(req.seq, 2) : encodeGenlRequest(16, 1, 2, req.seq, [{ type: 1, u16: FAMILY }, { type: 2, string: 'ethtool' }], false));
        const features = devices.get(nameIn(attrs.find((a) => a.type === 1)?.value));
        if (!features) return answer(error(req.seq, 19));
        if (cmd === 11) return answer(getReply(req.seq, features));
        setFeatures(features, attrs);
        answer(error(req.seq, 0));
      },
      on(event: string, l: (x: never) => void) {
        if (event === 'message') listener = l as (msg: Buffer) => void;
        return undefined;
      },
      close() {
        listener = undefined;
      },
    };
  };
  return { open, opened: () => opened, sent };
}

describe('ethtoolNetlink', () => {
  it('looks the family up once, then reads and sets features one request at a time', async () => {
    const k = fakeKernel();
    const f = ethtoolNetlink(1_000, k.open);
    const [a, b] = await Promise.all([f.get('vx0'), f.get('vx0')]);
    expect(a).toEqual(new Map([['tx-checksum-ip-generic', true], ['rx-gro', true]]));
    expect(b).toEqual(a);
    await f.set('vx0', new Map([['tx-checksum-ip-generic', false]]));
    expect(await f.get('vx0')).toEqual(new Map([['rx-gro', true]]));
    expect(k.sent).toEqual([3, 11, 11, 12, 11]);
    expect(k.opened()).toBe(1);
    f.close();
  });

  it('names the device and the kernel reason when a request is refused', async () => {
    const f = ethtoolNetlink(1_000, fakeKernel().open);
    await expect(f.get('chorus-404')).rejects.toThrow(new EthtoolNetlinkError('ethtool -k chorus-404 (netlink) failed: ENODEV: no such device', 19));
    await expect(f.set('chorus-404', new Map([['rx-gro', false]]))).rejects.toThrow('ethtool -K chorus-404 rx-gro off (netlink) failed: ENODEV: no such device');
    f.close();
  });

  it('says when the kernel has no ethtool family', async () => {
    const f = ethtoolNetlink(1_000, fakeKernel({ family: false }).open);
    await expect(f.get('vx0')).rejects.toBeInstanceOf(EthtoolUnavailableError);
    f.close();
  });

  it('fails a request unanswered by the deadline, and opens a fresh socket for the next', async () => {
    const k = fakeKernel({ silent: true });
    const f = ethtoolNetlink(30, k.open);
    await expect(f.get('vx0')).rejects.toThrow(new CommandTimeoutError('ethtool netlink: looking up the ethtool family got no answer within 30 ms (the command deadline)'));
    await expect(f.get('vx0')).rejects.toBeInstanceOf(CommandTimeoutError);
    expect(k.opened()).toBe(2);
    f.close();
  });
});

describe('device features and tx-checksum-ip-generic', () => {
  const recording = (features: Map<string, boolean>, calls: string[], name: string): DeviceFeatures => ({
    get: (dev) => {
      calls.push(`${name} get ${dev}`);
      return Promise.resolve(new Map(features));
    },
    set: (dev, wanted) => {
      calls.push(`${name} set ${dev} ${[...wanted].map(([n, on]) => `${n}=${String(on)}`).join(',')}`);
      for (const [n, on] of wanted) if (n !== 'fixed-feature') features.set(n, on);
      return Promise.resolve();
    },
    close: () => undefined,
  });

  it('falls back to the ethtool command, once and for good, when the kernel has no ethtool family', async () => {
    const calls: string[] = [];
    const logged: unknown[] = [];
    const netlink = ethtoolNetlink(1_000, fakeKernel({ family: false }).open);
    const f = deviceFeatures(1_000, { info: (obj: unknown) => logged.push(obj) }, netlink, recording(new Map([['tx-checksum-ip-generic', true]]), calls, 'command'));
    expect(await ensureTxChecksum('vx0', 'off', f)).toBe(true);
    expect(await ensureTxChecksum('vx0', 'off', f)).toBe(false);
    expect(calls).toEqual(['command get vx0', 'command set vx0 tx-checksum-ip-generic=false', 'command get vx0', 'command get vx0']);
    expect(logged).toEqual([{ reason: 'this kernel has no ethtool netlink family (Linux 5.6 or later has it)' }]);
  });

  it('does not fall back on any other failure', async () => {
    const calls: string[] = [];
    const f = deviceFeatures(1_000, { info: () => undefined }, ethtoolNetlink(1_000, fakeKernel().open), recording(new Map(), calls, 'command'));
    await expect(ensureTxChecksum('chorus-404', 'off', f)).rejects.toThrow('ENODEV');
    expect(calls).toEqual([]);
  });

  it('turns the checksum offload off only when on, leaves it under keep, and fails when it stays on', async () => {
    const calls: string[] = [];
    expect(await ensureTxChecksum('vx0', 'keep', recording(new Map([['tx-checksum-ip-generic', true]]), calls, 'k'))).toBe(false);
    expect(calls).toEqual([]);
    expect(await ensureTxChecksum('vx0', 'off', recording(new Map([['rx-gro', true]]), calls, 'k'))).toBe(false);
    const fixed: DeviceFeatures = { ...recording(new Map([['tx-checksum-ip-generic', true]]), calls, 'k'), set: () => Promise.resolve() };
    await expect(ensureTxChecksum('vx0', 'off', fixed)).rejects.toThrow('tx-checksum-ip-generic stays on on vx0: the kernel did not turn it off (set --tx-checksum-offload keep to leave it)');
  });
});
