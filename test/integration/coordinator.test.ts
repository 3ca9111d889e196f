// The coordinator against the embedded API server: allocations, the published tables, CAS and
// leader election, observed only through the API as a user or an agent would.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CoordinationV1Api, CoreV1Api, type V1Node } from '@kubernetes/client-node';
import type { Coordinator } from '../../coordinator/coordinator.ts';
import { ANNOTATION_OVERLAY_IP, HUB_CONFIGMAP, LEADER_LEASE } from '../../shared/keys.ts';
import { mergePatch } from '../../shared/kube/client.ts';
import { decodeHubInfo, decodePeer } from '../../shared/tables.ts';
import { eventually, startTestApiServer, type TestApiServer } from '../support/apiserver.ts';
import { TEST_OVERLAY, startCoordinator } from '../support/coordinator.ts';

let api: TestApiServer;
let core: CoreV1Api;
const running: Coordinator[] = [];

function nodeBody(i: number): V1Node {
  return {
    metadata: { name: `node-${i}` },
    spec: { podCIDRs: [`198.19.${i}.0/24`] },
    status: { addresses: [{ type: 'InternalIP', address: `198.18.1.${i}` }] },
  };
}

async function allocations(): Promise<Record<string, string>> {
  const nodes = await core.listNode();
  return Object.fromEntries(nodes.items.map((n) => [n.metadata?.name ?? '', n.metadata?.annotations?.[ANNOTATION_OVERLAY_IP] ?? '']));
}

async function peerTable(): Promise<Record<string, string>> {
  const cms = await core.listNamespacedConfigMap({ namespace: 'chorus-system', labelSelector: 'kube-router.chorus.io/table=peers' });
  const out: Record<string, string> = {};
  for (const cm of cms.items) for (const [node, v] of Object.entries(cm.data ?? {})) {
    const p = decodePeer(node, v);
    if (!(p instanceof Error)) out[node] = p.overlayIP;
  }
  return out;
}

function allAllocated(want: number) {
  return async (): Promise<Record<string, string> | undefined> => {
    const a = await allocations();
    return Object.keys(a).length === want && Object.values(a).every((ip) => ip !== '') ? a : undefined;
  };
}

beforeEach(async () => {
  api = await startTestApiServer();
  core = api.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'chorus-system' } } });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
  await api.close();
});

describe('coordinator', () => {
  it('allocates every node an address, publishes hub info and the peer table, and annotates nodes', async () => {
    for (let i = 1; i <= 3; i++) await core.createNode({ body: nodeBody(i) });
    running.push(startCoordinator(api.kubeConfig, 'c1'));
    const alloc = await eventually('3 nodes allocated', allAllocated(3));
    expect(new Set(Object.values(alloc)).size).toBe(3);
    const hub = decodeHubInfo((await core.readNamespacedConfigMap({ name: HUB_CONFIGMAP, namespace: 'chorus-system' })).data);
    expect(hub).toMatchObject({ vni: 4096, port: 4789, deviceVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.16.1'] });
    expect(Object.values(alloc)).not.toContain('198.18.16.1');
    expect(await peerTable()).toEqual(alloc);
  });

  it('frees a deleted node\'s address and reuses it last, once every never-used address is taken', async () => {
    // /29: 6 usable addresses, the device takes the first, 5 are for nodes
    const small = { ...TEST_OVERLAY, overlayNetwork: '198.18.16.0/29' };
    for (let i = 1; i <= 3; i++) await core.createNode({ body: nodeBody(i) });
    running.push(startCoordinator(api.kubeConfig, 'c1', small));
    const before = await eventually('3 allocated', allAllocated(3));
    await core.deleteNode({ name: 'node-1' });
    await eventually('node-1 gone from the peer table', async () => ((await peerTable())['node-1'] === undefined ? true : undefined));
    await core.createNode({ body: nodeBody(4) });
    await core.createNode({ body: nodeBody(5) });
    const fresh = await eventually('node-4 and node-5 allocated', allAllocated(4));
    expect([fresh['node-4'], fresh['node-5']]).toEqual(['198.18.16.5', '198.18.16.6']);
    expect(fresh['node-2']).toBe(before['node-2']);
    await core.createNode({ body: nodeBody(6) });
    const reused = await eventually('node-6 allocated', allAllocated(5));
    expect(reused['node-6']).toBe(before['node-1']);
    // the pool is full now: a further node is not served, and says why
    await core.createNode({ body: nodeBody(7) });
    const c = running[0]!;
    const problems = await eventually('exhaustion reported', () => {
      const p = c.status().problems as { node: string; reason: string }[];
      return p.length > 0 ? p : undefined;
    });
    expect(problems).toEqual([{ node: 'node-7', reason: 'overlay network exhausted: all 5 node addresses are in use' }]);
    const events = await eventually('Event on node-7', async () => (await core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=node-7' })).items.find((e) => e.reason === 'OverlayNotServed'));
    expect(events.message).toContain('exhausted');
  });

  it('keeps every allocation across a coordinator restart', async () => {
    for (let i = 1; i <= 4; i++) await core.createNode({ body: nodeBody(i) });
    const first = startCoordinator(api.kubeConfig, 'c1');
    const before = await eventually('4 allocated', allAllocated(4));
    await first.stop();
    // a node that joins while no coordinator runs must not disturb the others either
    await core.createNode({ body: nodeBody(5) });
    running.push(startCoordinator(api.kubeConfig, 'c2'));
    const after = await eventually('5 allocated', allAllocated(5));
    for (const [node, ip] of Object.entries(before)) expect(after[node]).toBe(ip);
  });

  it('runs one leader among two replicas; a stopped leader hands over at once', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const a = startCoordinator(api.kubeConfig, 'a');
    await eventually('a leads', () => (a.elector.canWrite() ? true : undefined));
    const b = startCoordinator(api.kubeConfig, 'b');
    running.push(b);
    await eventually('2 allocated', allAllocated(2));
    await new Promise((r) => setTimeout(r, 600));
    expect(b.elector.canWrite()).toBe(false);
    expect(b.status()).toMatchObject({ leader: false, leaseHolder: 'a' });
    const leases = api.kubeConfig.makeApiClient(CoordinationV1Api);
    await a.stop();
    // released on shutdown, not left to expire: the holder is cleared (or b already took it)
    const released = await leases.readNamespacedLease({ name: LEADER_LEASE, namespace: 'chorus-system' });
    expect(['', 'b']).toContain(released.spec?.holderIdentity ?? '');
    await eventually('b leads', () => (b.elector.canWrite() ? true : undefined));
    const lease = await leases.readNamespacedLease({ name: LEADER_LEASE, namespace: 'chorus-system' });
    expect(lease.spec?.holderIdentity).toBe('b');
    expect(lease.spec?.leaseTransitions).toBe(1);
    await core.createNode({ body: nodeBody(3) });
    await eventually('b allocates node-3', allAllocated(3));
  });

  it('survives a concurrent write to its table without losing or duplicating an address', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const c = startCoordinator(api.kubeConfig, 'c1');
    running.push(c);
    const before = await eventually('2 allocated', allAllocated(2));
    // someone else edits the shard: our cached resourceVersion is now stale
    await core.patchNamespacedConfigMap({ name: 'chorus-kube-router-peers-0', namespace: 'chorus-system', body: { metadata: { annotations: { touched: 'yes' } } } }, mergePatch());
    await core.createNode({ body: nodeBody(3) });
    const after = await eventually('3 allocated', allAllocated(3));
    expect(after['node-1']).toBe(before['node-1']);
    expect(new Set(Object.values(after)).size).toBe(3);
    expect(await peerTable()).toEqual(after);
  });

  it('serves only the Nodes that match --node-selector', async () => {
    await core.createNode({ body: { ...nodeBody(1), metadata: { name: 'node-1', labels: { 'overlay': 'yes' } } } });
    await core.createNode({ body: nodeBody(2) });
    running.push(startCoordinator(api.kubeConfig, 'c1', TEST_OVERLAY, { nodeSelector: 'overlay=yes' }));
    await eventually('node-1 allocated', async () => ((await allocations())['node-1'] ? true : undefined));
    await running[0]!.loop.idle();
    expect(await peerTable()).toEqual({ 'node-1': (await allocations())['node-1'] });
    expect((await allocations())['node-2']).toBe('');
  });

  it('leaves out a node whose address lies inside the overlay network, with an Event, and serves the others', async () => {
    await core.createNode({ body: { ...nodeBody(1), status: { addresses: [{ type: 'InternalIP', address: '198.18.16.77' }] } } });
    await core.createNode({ body: nodeBody(2) });
    const c = startCoordinator(api.kubeConfig, 'c1');
    running.push(c);
    await eventually('node-2 allocated', async () => ((await allocations())['node-2'] ? true : undefined));
    expect(await peerTable()).toEqual({ 'node-2': (await allocations())['node-2'] });
    expect((await allocations())['node-1']).toBe('');
    const problem = { node: 'node-1', reason: 'left out of the overlay: its address 198.18.16.77 lies in the overlay network 198.18.16.0/20' };
    expect(c.status().problems).toEqual([problem]);
    await eventually('an Event on node-1', async () => {
      const events = await core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=node-1' });
      return events.items.some((e) => e.reason === 'OverlayNotServed' && e.message === problem.reason) ? true : undefined;
    });
  });

  it('reports nodes, pool usage and leadership in /metrics', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const c = startCoordinator(api.kubeConfig, 'c1');
    running.push(c);
    await eventually('2 allocated', allAllocated(2));
    await c.loop.idle();
    const text = await c.metricsText();
    expect(text).toMatch(/^chorus_coordinator_leader 1$/m);
    expect(text).toMatch(/^chorus_coordinator_allocations 2$/m);
    expect(text).toMatch(/^chorus_coordinator_pool_capacity 4093$/m);
    expect(text).toMatch(/^chorus_coordinator_api_writes_total \d+$/m);
  });

  it('status shows every node as the cluster publishes it, and the ones not served', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    await core.createNode({ body: { metadata: { name: 'node-x' }, status: { addresses: [] } } });
    running.push(startCoordinator(api.kubeConfig, 'c1'));
    const alloc = await eventually('2 allocated', async () => {
      const a = await allocations();
      return a['node-1'] && a['node-2'] ? a : undefined;
    });
    const { overlayStatus, statusTable } = await import('../../coordinator/status-command.ts');
    const tables = await core.listNamespacedConfigMap({ namespace: 'chorus-system', labelSelector: 'kube-router.chorus.io/table' });
    const s = overlayStatus(tables.items.find((c) => c.metadata?.name === 'chorus-kube-router-hub'), tables.items, (await core.listNode()).items);
    expect(s.hub?.vni).toBe(4096);
    expect(s.peers.map((p) => [p.node, p.overlayIP, p.annotated])).toEqual([['node-1', alloc['node-1'], true], ['node-2', alloc['node-2'], true]]);
    expect(s.unallocated).toEqual([{ node: 'node-x', reason: 'no IPv4 InternalIP' }]);
    expect(statusTable(s)).toMatch(/^node-1\s+198\.18\.1\.1\s+198\.18\.16\.\d+\s+02:c4:/m);
  });
});
