// Coordinators as real processes against the embedded API server: exactly one leader, a leader
// killed with SIGKILL in the middle of a reconcile is replaced by the standby without any
// address given twice, and SIGTERM releases the lease at once.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinationV1Api, CoreV1Api, type V1Node } from '@kubernetes/client-node';
import type { AuditRecord } from '../apiserver/server.ts';
import { CLI_PATH } from '../lab/processes.ts';
import { ANNOTATION_OVERLAY_IP, LEADER_LEASE } from '../../shared/keys.ts';
import { decodePeer } from '../../shared/tables.ts';
import { eventually, startTestApiServer, type TestApiServer } from '../support/apiserver.ts';

let api: TestApiServer;
let core: CoreV1Api;
let kubeconfig: string;
const audit: AuditRecord[] = [];
/** Called with each audited request as the server handles it (in this process, synchronously). */
let onRequest: ((r: AuditRecord) => void) | undefined;
const procs: { name: string; child: ChildProcess; log: string[] }[] = [];

function startProcess(identity: string): { name: string; child: ChildProcess; log: string[] } {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', CLI_PATH, 'coordinator', '--kubeconfig', kubeconfig,
    '--overlay-network', '198.18.16.0/20', '--device-vtep', '198.18.0.3', '--identity', identity, '--health-listen', '127.0.0.1:0',
    // timings that a loaded 2-core machine keeps (a leader that misses its renew deadline steps down, rightly, and
    // the tests would see it lead twice): 4 s to renew, the standby takes over 6 s after a SIGKILL
    '--lease-duration', '6s', '--renew-deadline', '4s', '--retry-period', '250ms', '--pod-cidr-source', 'node'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const p = { name: identity, child, log: [] as string[] };
  child.stderr.on('data', (d: Buffer) => p.log.push(...d.toString().split('\n').filter((l) => l !== '')));
  procs.push(p);
  return p;
}

/** The process has exited and all it wrote has been read ('close' comes after 'exit' and the end of its pipes). */
const exited = (c: ChildProcess): Promise<void> => new Promise((r) => {
  if ((c.exitCode !== null || c.signalCode !== null) && (c.stderr === null || c.stderr.readableEnded)) r();
  else c.once('close', () => r());
});
/** A process's log says it became leader, exactly once: waits for the line (the Lease is written before it is logged). */
async function ledOnce(p: { log: string[] }): Promise<void> {
  await eventually('the "became leader" log line', () => (leaderLines(p) >= 1 ? true : undefined));
  expect(leaderLines(p)).toBe(1);
}
const leaderLines = (p: { log: string[] }): number => p.log.filter((l) => l.includes('"became leader"')).length;

async function holder(): Promise<string | undefined> {
  try {
    return (await api.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: LEADER_LEASE, namespace: 'chorus-system' })).spec?.holderIdentity ?? '';
  } catch {
    return undefined;
  }
}

function nodeBody(i: number): V1Node {
  // a /26 each: distinct for every i (overlapping pod CIDRs leave the later node out)
  return { metadata: { name: `node-${i}` }, spec: { podCIDRs: [`198.19.${Math.floor(i / 4)}.${(i % 4) * 64}/26`] }, status: { addresses: [{ type: 'InternalIP', address: `198.18.${1 + Math.floor(i / 250)}.${1 + (i % 250)}` }] } };
}

async function allocationState(n: number): Promise<{ annotations: Record<string, string>; table: Record<string, string> } | undefined> {
  const nodes = await core.listNode();
  const annotations = Object.fromEntries(nodes.items.map((x) => [x.metadata?.name ?? '', x.metadata?.annotations?.[ANNOTATION_OVERLAY_IP] ?? '']));
  if (Object.values(annotations).filter((v) => v !== '').length < n) return undefined;
  const table: Record<string, string> = {};
  for (const cm of (await core.listNamespacedConfigMap({ namespace: 'chorus-system', labelSelector: 'kube-router.chorus.io/table=peers' })).items) {
    for (const [node, v] of Object.entries(cm.data ?? {})) {
      const p = decodePeer(node, v);
      if (!(p instanceof Error)) table[node] = p.overlayIP;
    }
  }
  return { annotations, table };
}

beforeEach(async () => {
  audit.length = 0;
  onRequest = undefined;
  api = await startTestApiServer({ onAudit: (r) => {
    audit.push(r);
    onRequest?.(r);
  } });
  core = api.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'chorus-system' } } });
  const dir = mkdtempSync(join(tmpdir(), 'ha-'));
  kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, api.kubeconfigYaml());
});

afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.child.kill('SIGKILL');
    await exited(p.child);
  }
  await api.close();
});

describe('coordinator high availability (processes)', () => {
  it('elects exactly one leader among two started together', async () => {
    const a = startProcess('coord-a');
    const b = startProcess('coord-b');
    const leader = await eventually('a lease holder', async () => ((await holder()) ? holder() : undefined));
    await ledOnce(leader === 'coord-a' ? a : b);
    // then a window of several retry periods (250 ms) in which the other must not take over
    await new Promise((r) => setTimeout(r, 1_500));
    expect(leaderLines(a) + leaderLines(b)).toBe(1);
    expect(await holder()).toBe(leader);
  });

  it('replaces a leader killed mid-reconcile, giving no address twice', async () => {
    const n = 300;
    const nodes = api.server.served.find((r) => r.plural === 'nodes')!;
    for (let i = 1; i <= n; i++) api.server.store.create(nodes, undefined, nodeBody(i) as Record<string, unknown>);
    const a = startProcess('coord-a');
    await eventually('a leads', async () => ((await holder()) === 'coord-a' ? true : undefined));
    const b = startProcess('coord-b');
    // freeze the leader the moment the server handles its first node annotation (its reconcile
    // is half done, however fast it runs), then kill it
    let annotatedWhenKilled = -1;
    onRequest = (r) => {
      if (r.verb !== 'patch' || r.resource !== 'nodes' || annotatedWhenKilled >= 0) return;
      a.child.kill('SIGSTOP');
      annotatedWhenKilled = audit.filter((x) => x.verb === 'patch' && x.resource === 'nodes').length;
    };
    await eventually('a is annotating', () => (annotatedWhenKilled >= 0 ? true : undefined), 20_000);
    a.child.kill('SIGKILL');
    expect(annotatedWhenKilled).toBeLessThan(n);
    const state = await eventually('b converges', () => allocationState(n), 30_000);
    expect(await holder()).toBe('coord-b');
    const ips = Object.values(state.annotations);
    expect(new Set(ips).size).toBe(n);
    expect(state.table).toEqual(state.annotations);
    await ledOnce(b);
  });

  it('hands over at once on SIGTERM: the lease is released, not left to expire', async () => {
    await core.createNode({ body: nodeBody(1) });
    const a = startProcess('coord-a');
    await eventually('a leads', async () => ((await holder()) === 'coord-a' ? true : undefined));
    a.child.kill('SIGTERM');
    await exited(a.child);
    expect(a.child.exitCode).toBe(0);
    expect(await holder()).toBe('');
    const b = startProcess('coord-b');
    await eventually('b leads', async () => ((await holder()) === 'coord-b' ? true : undefined), 30_000);
    expect(a.log.some((l) => l.includes('released the lease'))).toBe(true);
    await ledOnce(b);
  });
});
