// The coordinator's device reconcile loop against an in-memory device: only differences are
// written, drift made by hand is repaired at the next resync, entries of nodes deleted while no
// coordinator ran are collected, other owners' entries are never touched, and a failing entry
// becomes an Event on its Node without blocking the others.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CoreV1Api, type V1Node } from '@kubernetes/client-node';
import type { Coordinator } from '../../coordinator/coordinator.ts';
import { eventually, startTestApiServer, type TestApiServer } from '../support/apiserver.ts';
import { TEST_OVERLAY, startCoordinator } from '../support/coordinator.ts';
import { MemoryDevice } from '../support/memory-device.ts';
import { fieldsText } from '../../coordinator/drivers/driver.ts';

let api: TestApiServer;
let core: CoreV1Api;
let device: MemoryDevice;
const running: Coordinator[] = [];

function nodeBody(i: number): V1Node {
  return { metadata: { name: `node-${i}` }, spec: { podCIDRs: [`198.19.${i}.0/24`] }, status: { addresses: [{ type: 'InternalIP', address: `198.18.1.${i}` }] } };
}

function start(): Coordinator {
  const c = startCoordinator(api.kubeConfig, 'c1', TEST_OVERLAY, { driver: device.driver('cluster-a'), deviceResyncMs: 300, podCidrSource: 'node' });
  running.push(c);
  return c;
}

const routes = (): string[] => device.owned('cluster-a').filter((e) => e.kind === 'route').map((e) => `${e.key} ${fieldsText(e)}`).sort();

beforeEach(async () => {
  api = await startTestApiServer();
  core = api.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'chorus-system' } } });
  device = new MemoryDevice();
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
  await api.close();
});

describe('device reconcile loop', () => {
  it('programs every node, repairs a route deleted by hand at the next resync, and leaves other owners alone', async () => {
    device.put({ kind: 'route', key: '10.99.0.0/16', fields: { via: '10.0.0.1' }, owner: 'cluster-b' });
    device.put({ kind: 'route', key: '192.0.2.0/24', fields: { via: '192.0.2.1' }, owner: 'hand-made' });
    for (let i = 1; i <= 3; i++) await core.createNode({ body: nodeBody(i) });
    start();
    await eventually('3 routes', () => (routes().length === 3 ? true : undefined));
    expect(device.owned('cluster-a').filter((e) => e.kind === 'arp')).toHaveLength(3);
    device.entries.delete('route|198.19.2.0/24');
    await eventually('route back after resync', () => (routes().some((r) => r.startsWith('198.19.2.0/24')) ? true : undefined));
    expect(device.entries.get('route|10.99.0.0/16')?.owner).toBe('cluster-b');
    expect(device.entries.get('route|192.0.2.0/24')?.owner).toBe('hand-made');
  });

  it('calls the device not at all on an event with nothing to change, and only reads it on a resync', async () => {
    await core.createNode({ body: nodeBody(1) });
    const c = start();
    await eventually('programmed', () => (routes().length === 1 ? true : undefined));
    await c.device.loop.idle();
    const writes = () => device.owned('cluster-a').length;
    const before = writes();
    const callsBefore = device.calls;
    // an event with nothing to change costs no call at all (the loop diffs against what it knows)
    c.device.loop.trigger('test');
    await c.device.loop.idle();
    expect(device.calls - callsBefore).toBe(0);
    // a resync reads the device once and writes nothing
    c.device.loop.trigger('timer');
    await c.device.loop.idle();
    expect(writes()).toBe(before);
    expect(device.calls - callsBefore).toBe(1);
  });

  it('removes the entries of a node deleted while no coordinator was running', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const first = start();
    await eventually('2 routes', () => (routes().length === 2 ? true : undefined));
    await first.stop();
    running.splice(running.indexOf(first), 1);
    await core.deleteNode({ name: 'node-2' });
    start();
    await eventually('node-2 entries collected', () => (routes().length === 1 && device.owned('cluster-a').filter((e) => e.kind === 'arp').length === 1 ? true : undefined));
    expect(routes()).toEqual([expect.stringMatching(/^198\.19\.1\.0\/24 via=/)]);
  });

  it('turns a failing entry into an Event on its Node, serves the others, and retries', async () => {
    device.failKeys.add('198.19.2.0/24');
    for (let i = 1; i <= 3; i++) await core.createNode({ body: nodeBody(i) });
    start();
    await eventually('the other routes', () => (routes().length === 2 ? true : undefined));
    const ev = await eventually('Event on node-2', async () => (await core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=node-2' })).items.find((e) => e.reason === 'DeviceProgrammingFailed'));
    expect(ev.message).toContain('injected failure for 198.19.2.0/24');
    device.failKeys.clear();
    await eventually('retried and converged', () => (routes().length === 3 ? true : undefined), 20_000);
  });
});
