// 5,000 nodes through the embedded API server: every node allocated and published, every
// object well under the 1 MiB limit, and one more node joining writes a bounded number of
// objects (counted by the API server's own audit of requests).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreV1Api, type V1Node } from '@kubernetes/client-node';
import type { Coordinator } from '../../coordinator/coordinator.ts';
import { ANNOTATION_OVERLAY_IP } from '../../shared/keys.ts';
import type { AuditRecord } from '../apiserver/server.ts';
import { eventually, startTestApiServer, type TestApiServer } from '../support/apiserver.ts';
import { TEST_OVERLAY, startCoordinator } from '../support/coordinator.ts';
import { capturingLogger } from '../support/nitro.ts';

const N = 5_000;
let api: TestApiServer;
let coordinator: Coordinator;
const audit: AuditRecord[] = [];
const WRITES = new Set(['create', 'update', 'patch', 'delete']);
/** The coordinator's log, shown when a wait fails (a loaded machine: lease renews, retries). */
const captured = capturingLogger();
const logTail = (): string => captured.lines.filter((l) => !l.includes('"level":20')).slice(-15).join('');

function nodeBody(i: number): V1Node {
  return {
    metadata: { name: `node-${i}` },
    spec: { podCIDRs: [`10.${Math.floor(i / 256)}.${i % 256}.0/24`] },
    status: { addresses: [{ type: 'InternalIP', address: `198.18.${Math.floor(i / 250)}.${1 + (i % 250)}` }] },
  };
}

function allocatedCount(): number {
  const nodes = api.server.store.list(api.server.served.find((r) => r.plural === 'nodes')!, undefined, () => true, () => true).items;
  return nodes.filter((n) => (n.metadata.annotations ?? {})[ANNOTATION_OVERLAY_IP]).length;
}

describe('coordinator at 5,000 nodes', () => {
  beforeAll(async () => {
    api = await startTestApiServer({ onAudit: (r) => audit.push(r) });
    const core = api.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'chorus-system' } } });
    const nodes = api.server.served.find((r) => r.plural === 'nodes')!;
    for (let i = 0; i < N; i++) api.server.store.create(nodes, undefined, nodeBody(i) as Record<string, unknown>);
    coordinator = startCoordinator(api.kubeConfig, 'c1', { ...TEST_OVERLAY, overlayNetwork: '198.18.32.0/19' }, { podCidrSource: 'node', log: captured.log });
    await eventually(`${N} nodes allocated`, () => (allocatedCount() === N ? true : undefined), 120_000);
  }, 180_000);

  afterAll(async () => {
    await coordinator.stop();
    await api.close();
  });

  it('publishes every node in shards that each stay far below 1 MiB', () => {
    const cms = api.server.store.list(api.server.served.find((r) => r.plural === 'configmaps')!, 'chorus-system', () => true, () => true).items;
    const shards = cms.filter((c) => c.metadata.name?.startsWith('chorus-kube-router-peers-'));
    expect(shards).toHaveLength(5);
    const entries = shards.reduce((s, c) => s + Object.keys((c.data as Record<string, string> | undefined) ?? {}).length, 0);
    expect(entries).toBe(N);
    for (const c of cms) expect(Buffer.byteLength(JSON.stringify(c)), c.metadata.name).toBeLessThan(256 * 1024);
  });

  it('gives every node a different address', () => {
    const nodes = api.server.store.list(api.server.served.find((r) => r.plural === 'nodes')!, undefined, () => true, () => true).items;
    expect(new Set(nodes.map((n) => (n.metadata.annotations ?? {})[ANNOTATION_OVERLAY_IP])).size).toBe(N);
  });

  it('writes two objects when one more node joins: its shard (here a new one) and its Node', async () => {
    await coordinator.loop.idle();
    const from = audit.length;
    await api.kubeConfig.makeApiClient(CoreV1Api).createNode({ body: nodeBody(N) });
    await eventually('node joined', () => (allocatedCount() === N + 1 ? true : undefined), 30_000).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; the coordinator's last log lines:\n${logTail()}`);
    });
    await new Promise((r) => setTimeout(r, 500));
    await coordinator.loop.idle();
    const writes = audit.slice(from).filter((r) => WRITES.has(r.verb) && !(r.resource === 'leases'));
    expect(writes.map((w) => `${w.verb} ${w.resource} ${w.name ?? ''}`)).toEqual([
      `create nodes node-${N}`, // the test's own join
      // indexes 0-4999 filled shards 0-4: the 5,001st node opens shard 5
      'create configmaps chorus-kube-router-peers-5',
      `patch nodes node-${N}`,
    ]);
  });
});
