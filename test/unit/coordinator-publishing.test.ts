// The coordinator's publishing parts without an API server: the published-tables store (our
// writes newer than the watch cache, echo suppression, decode once per resourceVersion), the
// publisher (CAS writes, bounded and fenced annotation writes, echo of its own annotations) and
// the underlay grace (a fake clock).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { CoreV1Api, V1ConfigMap, V1Node } from '@kubernetes/client-node';
import { PublishedTables, type TableCache } from '../../coordinator/published-tables.ts';
import { Publisher } from '../../coordinator/publisher.ts';
import { UnderlayGrace } from '../../coordinator/underlay-grace.ts';
import type { CoordinatorPlan } from '../../coordinator/plan.ts';
import { DEFAULT_NAMES } from '../../shared/keys.ts';
import { encodePeer, shardName, type Peer } from '../../shared/tables.ts';
import { macFromOverlayIP } from '../../shared/mac.ts';
import { silentLogger } from '../../shared/log.ts';

const NS = 'chorus-system';

function peer(i: number): Peer {
  const overlayIP = `198.18.16.${i + 2}`;
  return { node: `node-${i}`, underlayIP: `198.18.1.${i + 1}`, overlayIP, vtepMAC: macFromOverlayIP(overlayIP), podCIDRs: [`198.19.${i}.0/24`] };
}

function shard(index: number, rv: string, data: Record<string, string>): V1ConfigMap {
  return { metadata: { name: shardName(index), namespace: NS, resourceVersion: rv, annotations: { [DEFAULT_NAMES.annotationHighWater]: '9' } }, data };
}

/** A watch cache the test moves by hand. */
function fakeCache(): TableCache & { objects: Map<string, V1ConfigMap> } {
  const objects = new Map<string, V1ConfigMap>();
  return { objects, get: (name) => objects.get(name), list: () => [...objects.values()] };
}

describe('published tables store', () => {
  it('sees its own write before the watch does, recognises the echo, then follows the cache again', () => {
    const cache = fakeCache();
    const tables = new PublishedTables(NS);
    tables.attach(cache);
    cache.objects.set(shardName(0), shard(0, '1', { 'node-0': encodePeer(peer(0)) }));
    expect(tables.allocations().held).toEqual(new Map([['node-0', '198.18.16.2']]));

    const ours = shard(0, '2', { 'node-0': encodePeer(peer(0)), 'node-1': encodePeer(peer(1)) });
    tables.wrote(ours);
    // the cache still has rv 1; a pass right now plans from what the server holds
    expect([...tables.allocations().held.keys()]).toEqual(['node-0', 'node-1']);
    cache.objects.set(shardName(0), ours);
    expect(tables.observed(ours)).toBe(true);

    // someone else's later change arrives through the cache and is not taken for ours
    const theirs = shard(0, '3', { 'node-1': encodePeer(peer(1)) });
    cache.objects.set(shardName(0), theirs);
    expect(tables.observed(theirs)).toBe(false);
    expect([...tables.allocations().held.keys()]).toEqual(['node-1']);
  });

  it('leaves a malformed entry out of the allocations (the plan falls back on the annotation)', () => {
    const cache = fakeCache();
    const tables = new PublishedTables(NS);
    tables.attach(cache);
    cache.objects.set(shardName(0), shard(0, '1', { 'node-0': '{garbled', 'node-1': encodePeer(peer(1)) }));
    const { held, highWater } = tables.allocations();
    expect(held).toEqual(new Map([['node-1', '198.18.16.3']]));
    expect(highWater).toEqual(new Map([[0, 9]]));
  });

  it('keeps one decoded copy per existing shard, and re-decodes only on a new resourceVersion', () => {
    const cache = fakeCache();
    const tables = new PublishedTables(NS);
    tables.attach(cache);
    const a = shard(0, '1', { 'node-0': encodePeer(peer(0)) });
    cache.objects.set(shardName(0), a);
    cache.objects.set(shardName(1), shard(1, '1', { 'node-1': encodePeer(peer(1)) }));
    tables.allocations();
    expect(tables.decodedShards).toBe(2);
    // same resourceVersion, different data: the cached decode is used (a resourceVersion names one content)
    cache.objects.set(shardName(0), { ...a, data: {} });
    expect(tables.allocations().held.has('node-0')).toBe(true);
    cache.objects.set(shardName(0), { ...a, metadata: { ...a.metadata, resourceVersion: '2' }, data: {} });
    expect(tables.allocations().held.has('node-0')).toBe(false);
    cache.objects.delete(shardName(1));
    tables.allocations();
    expect(tables.decodedShards).toBe(1);
  });

  it('allocations are the union of the well-formed entries of every shard (property)', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 200 }), fc.boolean()), { maxLength: 40 }),
      (entries) => {
        const cache = fakeCache();
        const tables = new PublishedTables(NS);
        tables.attach(cache);
        const want = new Map<string, string>();
        const byShard = new Map<number, Record<string, string>>();
        for (const [s, i, good] of entries) {
          const data = byShard.get(s) ?? {};
          // one node per index: later entries for the same node in the same shard overwrite
          data[`node-${i}`] = good ? encodePeer(peer(i)) : 'not json';
          byShard.set(s, data);
        }
        for (const [s, data] of byShard) {
          cache.objects.set(shardName(s), shard(s, '1', data));
          for (const [node, v] of Object.entries(data)) if (v !== 'not json') want.set(node, peer(Number(node.slice(5))).overlayIP);
        }
        expect(tables.allocations().held).toEqual(want);
      },
    ));
  });
});

interface FakeCore {
  api: CoreV1Api;
  calls: string[];
  inFlight: () => number;
  maxInFlight: () => number;
  release: () => void;
}

/**
 * A CoreV1Api whose node patches wait until released (to see how many run at once); a ConfigMap
 * patch applies to `held`, what the test says the server holds.
 */
function fakeCore(holdPatches: boolean, held: ReadonlyMap<string, V1ConfigMap> = new Map()): FakeCore {
  const calls: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let waiting: (() => void)[] = [];
  let rv = 10;
  const api = {
    createNamespacedConfigMap: ({ body }: { body: V1ConfigMap }) => {
      calls.push(`create ${body.metadata?.name ?? ''}`);
      return Promise.resolve({ ...body, metadata: { ...body.metadata, resourceVersion: String(rv++) } });
    },
    // a merge patch on the object the caller says it holds (the fake keeps no store of its own)
    patchNamespacedConfigMap: ({ name, body }: { name: string; body: { metadata?: V1ConfigMap['metadata']; data?: Record<string, string | null> } }) => {
      calls.push(`patch ${name} rv=${body.metadata?.resourceVersion ?? '-'} ${JSON.stringify(body.data ?? {})}`);
      const have = held.get(name);
      const data = { ...have?.data };
      for (const [k, v] of Object.entries(body.data ?? {})) if (v === null) delete data[k]; else data[k] = v;
      const annotations = { ...have?.metadata?.annotations, ...body.metadata?.annotations };
      return Promise.resolve({ metadata: { name, namespace: NS, resourceVersion: String(rv++), annotations }, data });
    },
    patchNode: async ({ name }: { name: string }) => {
      calls.push(`annotate ${name}`);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      if (holdPatches) await new Promise<void>((r) => waiting.push(r));
      inFlight--;
      return {};
    },
  } as unknown as CoreV1Api;
  return {
    api, calls, inFlight: () => inFlight, maxInFlight: () => maxInFlight,
    release: () => {
      const w = waiting;
      waiting = [];
      for (const r of w) r();
    },
  };
}

function planOf(peers: Peer[], shards: Map<string, Record<string, string>>): CoordinatorPlan {
  return {
    hub: { vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.16.1'] },
    peers, problems: [], incomplete: [], capacity: 4093, ipv6NotRouted: [],
    shards: new Map([...shards].map(([k, data]) => [k, { data, highWater: peers.length }])),
  };
}

function node(name: string, annotations: Record<string, string> = {}): V1Node {
  return { metadata: { name, annotations } };
}

describe('publisher', () => {
  it('annotates at most writeConcurrency nodes at once, each once, and counts every write', async () => {
    const core = fakeCore(true);
    const tables = new PublishedTables(NS);
    tables.attach(fakeCache());
    let writes = 0;
    const pub = new Publisher({ core: core.api, namespace: NS, names: DEFAULT_NAMES, tables, node: () => undefined, fence: () => undefined, onWrites: (n) => (writes += n), writeConcurrency: 4 });
    const peers = Array.from({ length: 10 }, (_, i) => peer(i));
    const done = pub.annotate(planOf(peers, new Map()));
    while (core.calls.length < 10) {
      await new Promise((r) => setImmediate(r));
      expect(core.inFlight()).toBeLessThanOrEqual(4);
      core.release();
    }
    core.release();
    await done;
    expect(core.maxInFlight()).toBe(4);
    expect(core.calls.toSorted()).toEqual(peers.map((p) => `annotate ${p.node}`).toSorted());
    expect(writes).toBe(10);
    expect(pub.counter.writes).toBe(10);
  });

  it('does not annotate a node that already carries its address, nor one whose write is waiting for its echo', async () => {
    const core = fakeCore(false);
    const tables = new PublishedTables(NS);
    tables.attach(fakeCache());
    const p0 = peer(0);
    const p1 = peer(1);
    const nodes = new Map([[p0.node, node(p0.node, { [DEFAULT_NAMES.annotationOverlayIP]: p0.overlayIP, [DEFAULT_NAMES.annotationVtepMAC]: p0.vtepMAC })], [p1.node, node(p1.node)]]);
    const pub = new Publisher({ core: core.api, namespace: NS, names: DEFAULT_NAMES, tables, node: (n) => nodes.get(n), fence: () => undefined, onWrites: () => undefined });
    await pub.annotate(planOf([p0, p1], new Map()));
    await pub.annotate(planOf([p0, p1], new Map()));
    expect(core.calls).toEqual(['annotate node-1']);
    // the echo is recognised once, and only with the value written
    const echo = node(p1.node, { [DEFAULT_NAMES.annotationOverlayIP]: p1.overlayIP, [DEFAULT_NAMES.annotationVtepMAC]: p1.vtepMAC });
    expect(pub.isOwnAnnotationEcho(node(p1.node, { [DEFAULT_NAMES.annotationOverlayIP]: '198.18.16.99' }))).toBe(false);
    expect(pub.isOwnAnnotationEcho(echo)).toBe(true);
    expect(pub.isOwnAnnotationEcho(echo)).toBe(false);
  });

  it('stops at the fence: no write after it throws', async () => {
    const core = fakeCore(false);
    const tables = new PublishedTables(NS);
    tables.attach(fakeCache());
    let allowed = 3;
    const pub = new Publisher({
      core: core.api, namespace: NS, names: DEFAULT_NAMES, tables, node: () => undefined, onWrites: () => undefined, writeConcurrency: 1,
      fence: () => {
        if (allowed-- <= 0) throw new Error('lost the lease');
      },
    });
    await expect(pub.annotate(planOf(Array.from({ length: 6 }, (_, i) => peer(i)), new Map()))).rejects.toThrow('lost the lease');
    expect(core.calls).toHaveLength(3);
  });

  it('writes hub info and shards with the resourceVersion it holds, and empties a shard the plan no longer has', async () => {
    const cache = fakeCache();
    const tables = new PublishedTables(NS);
    tables.attach(cache);
    cache.objects.set(shardName(1), shard(1, '7', { 'node-5': encodePeer(peer(5)) }));
    const core = fakeCore(false, cache.objects);
    const pub = new Publisher({ core: core.api, namespace: NS, names: DEFAULT_NAMES, tables, node: () => undefined, fence: () => undefined, onWrites: () => undefined });
    await pub.publishTables(planOf([peer(0)], new Map([[shardName(0), { 'node-0': encodePeer(peer(0)) }]])));
    expect(core.calls).toEqual([
      `create ${DEFAULT_NAMES.hubConfigMap}`,
      `create ${shardName(0)}`,
      `patch ${shardName(1)} rv=7 {"node-5":null}`,
    ]);
    // what it wrote is what the next pass plans from: nothing more to write
    core.calls.length = 0;
    await pub.publishTables(planOf([peer(0)], new Map([[shardName(0), { 'node-0': encodePeer(peer(0)) }]])));
    expect(core.calls).toEqual([]);
  });
});

describe('underlay grace', () => {
  const withIP = (name: string, ip?: string): V1Node => ({ metadata: { name }, status: { addresses: ip ? [{ type: 'InternalIP', address: ip }] : [] } });
  const ipOf = (n: V1Node | undefined): string | undefined => n?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;

  it('keeps a node\'s last InternalIP for the grace, asks for a pass when it ends, then lets it go', () => {
    let now = 0;
    const scheduled: number[] = [];
    const grace = new UnderlayGrace({ graceMs: 30_000, log: silentLogger(), expired: () => undefined, now: () => now, schedule: (_fn, ms) => scheduled.push(ms) });
    expect(ipOf(grace.apply([withIP('a', '198.18.1.1')])[0])).toBe('198.18.1.1');
    now = 1_000;
    expect(ipOf(grace.apply([withIP('a')])[0])).toBe('198.18.1.1');
    expect(scheduled).toEqual([30_010]);
    now = 30_999;
    expect(ipOf(grace.apply([withIP('a')])[0])).toBe('198.18.1.1');
    now = 31_000;
    expect(ipOf(grace.apply([withIP('a')])[0])).toBeUndefined();
    expect(scheduled).toHaveLength(1);
  });

  it('restarts the grace when the address comes back, and forgets deleted nodes', () => {
    let now = 0;
    const grace = new UnderlayGrace({ graceMs: 10_000, log: silentLogger(), expired: () => undefined, now: () => now, schedule: () => undefined });
    grace.apply([withIP('a', '198.18.1.1')]);
    now = 9_000;
    grace.apply([withIP('a')]);
    now = 10_000;
    grace.apply([withIP('a', '198.18.1.2')]);
    now = 15_000;
    expect(ipOf(grace.apply([withIP('a')])[0])).toBe('198.18.1.2');
    grace.apply([]);
    // deleted and recreated without an address: nothing to keep
    expect(ipOf(grace.apply([withIP('a')])[0])).toBeUndefined();
  });

  it('never invents an address for a node that never had one', () => {
    const grace = new UnderlayGrace({ graceMs: 10_000, log: silentLogger(), expired: () => undefined, now: () => 0, schedule: () => undefined });
    expect(ipOf(grace.apply([withIP('b')])[0])).toBeUndefined();
  });
});
