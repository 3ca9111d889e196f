// Fault: the address record is damaged (issue 13, "the address record survives"): a peer-table
// entry corrupted, the shard ConfigMap deleted, a node's InternalIP gone for a while. No overlay
// address changes, no two nodes ever share one, no device entry of a live node is deleted. A node
// whose InternalIP stays gone past the grace is left out, and gets its address back when it returns.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CoreV1Api, type V1Node } from '@kubernetes/client-node';
import type { Coordinator } from '../../coordinator/coordinator.ts';
import type { DeviceChange } from '../../coordinator/drivers/driver.ts';
import { ANNOTATION_OVERLAY_IP } from '../../shared/keys.ts';
import { decodePeer } from '../../shared/tables.ts';
import { mergePatch } from '../../shared/kube/client.ts';
import { eventually, startTestApiServer, type TestApiServer } from '../support/apiserver.ts';
import { startCoordinator } from '../support/coordinator.ts';
import { MemoryDevice } from '../support/memory-device.ts';

let api: TestApiServer;
let core: CoreV1Api;
let coordinator: Coordinator | undefined;
const SHARD = 'chorus-kube-router-peers-0';

const nodeBody = (i: number): V1Node => ({ metadata: { name: `node-${i}` }, spec: { podCIDRs: [`198.19.${i}.0/24`] }, status: { addresses: [{ type: 'InternalIP', address: `198.18.1.${i}` }] } });

async function annotations(): Promise<Record<string, string>> {
  return Object.fromEntries((await core.listNode()).items.map((n) => [n.metadata?.name ?? '', n.metadata?.annotations?.[ANNOTATION_OVERLAY_IP] ?? '']));
}

async function peerTable(): Promise<Record<string, string> | undefined> {
  const cm = await core.readNamespacedConfigMap({ name: SHARD, namespace: 'chorus-system' }).catch(() => undefined);
  if (!cm) return undefined;
  const out: Record<string, string> = {};
  for (const [node, v] of Object.entries(cm.data ?? {})) {
    const p = decodePeer(node, v);
    out[node] = p instanceof Error ? `malformed: ${v}` : p.overlayIP;
  }
  return out;
}

const setAddress = (name: string, ip: string | undefined): Promise<unknown> =>
  core.patchNodeStatus({ name, body: { status: { addresses: ip ? [{ type: 'InternalIP', address: ip }] : [] } } }, mergePatch());

beforeEach(async () => {
  api = await startTestApiServer();
  core = api.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'chorus-system' } } });
});

afterEach(async () => {
  await coordinator?.stop();
  await api.close();
});

describe('fault: the address record damaged', () => {
  it('keeps every address through a corrupted entry, a deleted shard and an InternalIP gone within the grace; a node gone past it comes back to its address', async () => {
    for (let i = 1; i <= 3; i++) await core.createNode({ body: nodeBody(i) });
    const device = new MemoryDevice();
    const driver = device.driver('c');
    const deletes: DeviceChange[] = [];
    const apply = driver.apply.bind(driver);
    driver.apply = (changes, desired) => {
      deletes.push(...changes.filter((c) => c.op === 'delete'));
      return apply(changes, desired);
    };
    coordinator = startCoordinator(api.kubeConfig, 'c1', undefined, { driver, podCidrSource: 'node', underlayGraceMs: 3_000 });
    const first = await eventually('3 nodes allocated', async () => {
      const a = await annotations();
      const t = await peerTable();
      return Object.values(a).every((ip) => ip !== '') && t && Object.keys(t).length === 3 ? a : undefined;
    });
    expect(new Set(Object.values(first)).size).toBe(3);
    const same = async (): Promise<boolean> => JSON.stringify(await peerTable()) === JSON.stringify(first) && JSON.stringify(await annotations()) === JSON.stringify(first);

    // 1. one entry corrupted: rewritten with the address the Node still carries
    await core.patchNamespacedConfigMap({ name: SHARD, namespace: 'chorus-system', body: { data: { 'node-1': '{not json' } } }, mergePatch());
    await eventually('the entry rewritten', async () => ((await same()) ? true : undefined));
    // 2. the whole shard deleted: recreated with every address as it was
    await core.deleteNamespacedConfigMap({ name: SHARD, namespace: 'chorus-system' });
    await eventually('the shard recreated', async () => ((await same()) ? true : undefined));
    // 3. node-2's InternalIP gone for less than the grace: nothing moves
    await setAddress('node-2', undefined);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await same()).toBe(true);
    await setAddress('node-2', '198.18.1.2');
    await coordinator.loop.idle();
    expect(await same()).toBe(true);
    await coordinator.device.loop.idle();
    expect(deletes.filter((c) => c.entry.node !== undefined)).toEqual([]);

    // 4. node-3's InternalIP gone past the grace: left out (its device entries go), then back at its old address
    await setAddress('node-3', undefined);
    await eventually('node-3 left out', async () => ((await peerTable())?.['node-3'] === undefined ? true : undefined), 10_000);
    expect(coordinator.status().problems).toEqual([{ node: 'node-3', reason: 'no IPv4 InternalIP in status.addresses yet' }]);
    await setAddress('node-3', '198.18.1.3');
    await eventually('node-3 back', async () => ((await same()) ? true : undefined));
    const ips = Object.values((await peerTable()) ?? {});
    expect(new Set(ips).size).toBe(ips.length);
    expect(deletes.filter((c) => c.entry.node !== undefined && c.entry.node !== 'node-3')).toEqual([]);
  }, 60_000);
});
