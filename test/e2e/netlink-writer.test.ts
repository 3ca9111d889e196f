// The agent and gateway write FDB entries, neighbours and routes as rtnetlink messages encoded by
// hand (agent/overlay/netlink-encode.ts), many to a datagram. They must leave the kernel exactly
// as `bridge` and `ip` (tools nobody here wrote) leave it for the same lines: random entries are
// written both ways into two namespaces built alike, then some removed, and what `ip -d -j` and
// `bridge -d -j` list must be the same, field for field (states, flags, scope, protocol, table).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { execa } from 'execa';
import { ipRoute } from '../../shared/iproute.ts';
import { applyOps } from '../../agent/overlay/apply.ts';
import type { Op } from '../../agent/overlay/state.ts';
import type { EntryOp } from '../../agent/overlay/netlink-encode.ts';
import { IS_ROOT } from '../support/lab.ts';

const run = randomBytes(3).toString('hex').slice(0, 5);
const viaNetlink = `ckr${run}-nlw`;
const viaIproute = `ckr${run}-ipw`;
const HELPER = fileURLToPath(new URL('../support/write-entries.ts', import.meta.url));
const DEV = 'chorus-4096';

async function namespace(ns: string): Promise<void> {
  await execa('ip', ['netns', 'add', ns]);
  await ipRoute(ns).batch('ip', [
    'link set lo up',
    'link add ul0 type veth peer name ul1',
    'addr add 198.18.0.1/24 dev ul0', 'addr add 2001:db8::1/64 dev ul0 nodad',
    'link set ul0 up', 'link set ul1 up',
  ]);
}

/** A fresh overlay device with its addresses, and none of our routes on the underlay: each run starts alike. */
async function freshDevice(ns: string): Promise<void> {
  await execa('ip', ['-n', ns, 'link', 'del', DEV], { reject: false });
  await execa('ip', ['-n', ns, 'route', 'flush', 'dev', 'ul0', 'proto', '196']);
  await ipRoute(ns).batch('ip', [
    `link add ${DEV} address 02:c4:c6:12:10:01 mtu 1450 type vxlan id 4096 local 198.18.0.1 dstport 4789 nolearning`,
    `link set ${DEV} up`,
    `addr add 198.18.16.1/20 dev ${DEV}`, `addr add fd00:c0::1/64 dev ${DEV} nodad`,
  ]);
}

/** Writes the ops with the netlink writer inside the namespace (the helper), or with ip/bridge batches from here. */
async function write(ns: string, ops: readonly Op[], how: 'netlink' | 'iproute'): Promise<{ ok: boolean; error?: string }> {
  if (how === 'iproute') {
    await applyOps(ipRoute(ns), ops);
    return { ok: true };
  }
  const r = await execa('ip', ['netns', 'exec', ns, process.execPath, '--disable-warning=ExperimentalWarning', HELPER], { input: JSON.stringify(ops) });
  return JSON.parse(r.stdout) as { ok: boolean; error?: string };
}

/** What the tools list on the device and our routes on the underlay, sorted, with the namespace-specific numbers taken out. */
async function listing(ns: string): Promise<unknown> {
  const json = async (tool: string, args: string[]): Promise<unknown[]> => {
    const out = String((await execa(tool, ['-n', ns, '-d', '-j', ...args])).stdout).trim();
    return (out === '' ? [] : JSON.parse(out)) as unknown[];
  };
  const sorted = (list: unknown[]): unknown[] => list.map((e) => JSON.stringify(e, (k, v: unknown) => (k === 'ifindex' || k === 'link_netnsid' ? undefined : v))).sort();
  return {
    fdb: sorted(await json('bridge', ['fdb', 'show', 'dev', DEV])),
    neigh: sorted([...await json('ip', ['-4', 'neigh', 'show', 'dev', DEV]), ...await json('ip', ['-6', 'neigh', 'show', 'dev', DEV, 'nud', 'permanent'])]),
    routes: sorted([...await json('ip', ['-4', 'route', 'show', 'table', 'all', 'dev', DEV, 'proto', '196']), ...await json('ip', ['-6', 'route', 'show', 'table', 'all', 'dev', DEV, 'proto', '196'])]),
    direct: sorted(await json('ip', ['-4', 'route', 'show', 'table', 'all', 'dev', 'ul0', 'proto', '196'])),
  };
}

const hex2 = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'));
const mac = fc.tuple(hex2, hex2, hex2, hex2).map((b) => `02:c4:${b.join(':')}`);
// the device's VTEP is IPv4, and so are its remotes (the kernel refuses an IPv6 one: EAFNOSUPPORT)
const vtep = fc.integer({ min: 2, max: 250 }).map((i) => `198.18.0.${i}`);
const overlay4 = fc.integer({ min: 2, max: 4000 }).map((i) => `198.18.${16 + (i >> 8)}.${i & 255}`);
const overlay6 = fc.integer({ min: 2, max: 4000 }).map((i) => `fd00:c0::${i.toString(16)}`);

/** Random entries as diff.ts would produce them: ops over FDB, neighbours and routes of both families. */
const entryOps = fc.record({
  flood: fc.uniqueArray(vtep, { maxLength: 6 }),
  unicast: fc.uniqueArray(fc.tuple(mac, vtep), { maxLength: 8, selector: ([m]) => m }),
  neigh: fc.uniqueArray(fc.tuple(fc.oneof(overlay4, overlay6), mac), { maxLength: 10, selector: ([ip]) => ip }),
  routes4: fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.oneof(overlay4, fc.constant(''))), { maxLength: 10, selector: ([n]) => n }),
  hosts4: fc.uniqueArray(fc.integer({ min: 1, max: 250 }), { maxLength: 3 }),
  routes6: fc.uniqueArray(fc.tuple(fc.integer({ min: 1, max: 4000 }), overlay6), { maxLength: 5, selector: ([n]) => n }),
  direct: fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 2, max: 250 })), { maxLength: 4, selector: ([n]) => n }),
}).map((r): EntryOp[] => [
  ...r.flood.map((dst): EntryOp => ({ kind: 'fdb-add', dev: DEV, entry: { mac: '00:00:00:00:00:00', dst } })),
  ...r.unicast.map(([m, dst]): EntryOp => ({ kind: 'fdb-add', dev: DEV, entry: { mac: m, dst } })),
  ...r.neigh.map(([ip, m]): EntryOp => ({ kind: 'neigh-replace', dev: DEV, entry: { ip, mac: m } })),
  ...r.routes4.map(([n, via]): EntryOp => ({ kind: 'route-replace', dev: DEV, entry: { dst: `198.19.${n}.0/24`, via } })),
  ...r.hosts4.map((n): EntryOp => ({ kind: 'route-replace', dev: DEV, entry: { dst: `198.20.0.${n}/32`, via: '' } })),
  ...r.routes6.map(([n, via]): EntryOp => ({ kind: 'route-replace', dev: DEV, entry: { dst: `fd01:${n.toString(16)}::/64`, via } })),
  ...r.direct.map(([n, gw]): EntryOp => ({ kind: 'route-replace', dev: 'ul0', entry: { dst: `198.21.${n}.0/24`, via: `198.18.0.${gw}`, dev: 'ul0' } })),
]);

/** The removal of an added entry, as diff.ts writes it. */
function removal(op: EntryOp): EntryOp {
  switch (op.kind) {
    case 'fdb-add': return { ...op, kind: 'fdb-del' };
    case 'neigh-replace': return { ...op, kind: 'neigh-del' };
    case 'route-replace': return { ...op, kind: 'route-del' };
    default: throw new Error(`no removal for ${op.kind}`);
  }
}

describe.skipIf(!IS_ROOT)('the netlink writer leaves the kernel as ip and bridge do', () => {
  beforeAll(async () => {
    await namespace(viaNetlink);
    await namespace(viaIproute);
    await freshDevice(viaNetlink);
  });

  afterAll(async () => {
    await execa('ip', ['netns', 'del', viaNetlink], { reject: false });
    await execa('ip', ['netns', 'del', viaIproute], { reject: false });
  });

  it('random FDB entries, neighbours and routes of both families, written then partly removed: the same listings', async () => {
    await fc.assert(fc.asyncProperty(entryOps, fc.infiniteStream(fc.boolean()), async (ops, keep) => {
      await freshDevice(viaNetlink);
      await freshDevice(viaIproute);
      expect(await write(viaNetlink, ops, 'netlink')).toEqual({ ok: true });
      await write(viaIproute, ops, 'iproute');
      const written = await listing(viaIproute);
      expect(await listing(viaNetlink)).toEqual(written);
      // some removed (routes first, as diff.ts orders removals), then everything left removed
      const gone = ops.filter(() => !keep.next().value).map(removal).reverse();
      expect(await write(viaNetlink, gone, 'netlink')).toEqual({ ok: true });
      await write(viaIproute, gone, 'iproute');
      expect(await listing(viaNetlink)).toEqual(await listing(viaIproute));
      const rest = ops.filter((o) => !gone.some((g) => JSON.stringify(g.entry) === JSON.stringify(o.entry) && g.dev === o.dev)).map(removal).reverse();
      expect(await write(viaNetlink, rest, 'netlink')).toEqual({ ok: true });
      await write(viaIproute, rest, 'iproute');
      const empty = await listing(viaNetlink);
      expect(empty).toEqual(await listing(viaIproute));
      expect(empty).toMatchObject({ fdb: [], routes: [], direct: [] });
    }), { numRuns: 8 });
  }, 180_000);

  it('a refused change is reported with its line and the kernel\'s reason; the changes around it are made', async () => {
    const ops: EntryOp[] = [
      { kind: 'neigh-replace', dev: DEV, entry: { ip: '198.18.16.7', mac: '02:c4:c6:12:10:07' } },
      // no such route: the kernel answers ESRCH
      { kind: 'route-del', dev: DEV, entry: { dst: '198.19.250.0/24', via: '' } },
      { kind: 'neigh-replace', dev: DEV, entry: { ip: '198.18.16.8', mac: '02:c4:c6:12:10:08' } },
    ];
    const r = await write(viaNetlink, ops, 'netlink');
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/netlink: 1 of 3 changes failed:\n {2}route del 198\.19\.250\.0\/24 dev chorus-4096 proto 196: ESRCH/);
    const neigh = String((await execa('ip', ['-n', viaNetlink, 'neigh', 'show', 'dev', DEV])).stdout);
    expect(neigh).toContain('198.18.16.7 lladdr 02:c4:c6:12:10:07 PERMANENT');
    expect(neigh).toContain('198.18.16.8 lladdr 02:c4:c6:12:10:08 PERMANENT');
    expect(await write(viaNetlink, ops.filter((o) => o.kind !== 'route-del').map(removal), 'netlink')).toEqual({ ok: true });
  });

  it('writes to a device that does not exist fail with its name', async () => {
    const r = await write(viaNetlink, [{ kind: 'fdb-add', dev: 'chorus-missing', entry: { mac: '00:00:00:00:00:00', dst: '198.18.0.9' } }], 'netlink');
    expect(r).toEqual({ ok: false, error: expect.stringMatching(/netlink: no interface chorus-missing \(ENODEV/) as unknown });
  });
});
