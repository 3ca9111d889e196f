// End to end: real kernel VXLAN between network namespaces, driven through the lab CLI.
// The device (Linux, running `gateway`) must reach every pod by ping and TCP; nodes joining and
// leaving, agent crashes and coordinator restarts must do what an operator expects.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { LabDocument } from '../lab/lab.ts';
import { ANNOTATION_OVERLAY_IP } from '../../shared/keys.ts';
import { eventually } from '../support/apiserver.ts';
import { CLI, E2E_SKIP_REASON, IS_ROOT, LAB_DIR, cli, inNetns, labNamespaces, labStatus, labUp, pingOnce, labDown, labCore } from '../support/lab.ts';

let doc: LabDocument;
let core: CoreV1Api;

async function allocations(): Promise<Record<string, string>> {
  const nodes = await core.listNode();
  return Object.fromEntries(nodes.items.map((n) => [n.metadata?.name ?? '', n.metadata?.annotations?.[ANNOTATION_OVERLAY_IP] ?? '']));
}

async function deviceState(): Promise<{ routes: string; fdb: string; neigh: string }> {
  const dev = doc.device.netns;
  const [routes, fdb, neigh] = await Promise.all([
    inNetns(dev, ['ip', 'route', 'show', 'dev', 'chorus-100000'], true),
    inNetns(dev, ['bridge', 'fdb', 'show', 'dev', 'chorus-100000'], true),
    inNetns(dev, ['ip', 'neigh', 'show', 'dev', 'chorus-100000'], true),
  ]);
  return { routes: String(routes.stdout), fdb: String(fdb.stdout), neigh: String(neigh.stdout) };
}

describe.skipIf(!IS_ROOT)('overlay end to end (lab: 3 nodes x 2 pods, Linux device)', () => {
  beforeAll(async () => {
    doc = await labUp(['--nodes', '3', '--pods-per-node', '2']);
    core = labCore(doc);
  }, 180_000);

  afterAll(async () => {
    await labDown(doc);
  }, 60_000);

  it('prints the lab document with every contracted field', () => {
    expect(doc).toMatchObject({ prefix: expect.stringMatching(/^ckr[0-9a-f]{5}$/), kubeconfig: expect.any(String), supervisorPid: expect.any(Number) });
    expect(doc.apiServer).toMatchObject({ url: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+$/), labURL: 'https://198.18.0.2:6443', caFile: expect.stringMatching(/ca\.crt$/), pid: expect.any(Number) });
    expect(doc.device).toMatchObject({ type: 'linux', netns: `${doc.prefix}-dev`, underlayIP: '198.18.0.3', overlayIPs: ['198.18.16.1'], pid: expect.any(Number) });
    expect(doc.coordinators).toEqual([expect.objectContaining({ pid: expect.any(Number), identity: 'coordinator-1' })]);
    expect(doc.nodes).toHaveLength(3);
    for (const n of doc.nodes) {
      expect(n).toMatchObject({ netns: expect.stringContaining(doc.prefix), overlayIP: expect.stringMatching(/^198\.18\.1[6-9]\./), agentPid: expect.any(Number) });
      expect(n.pods).toHaveLength(2);
    }
    const ips = [...doc.nodes.map((n) => n.underlayIP), ...doc.nodes.map((n) => n.overlayIP ?? ''), ...doc.nodes.flatMap((n) => n.pods.map((p) => p.ip))];
    for (const ip of ips) expect(ip).toMatch(/^198\.(18|19)\./);
  });

  it('shows the published overlay with `chorus-kube-router status`', async () => {
    // the gateway (the Linux device) reports what it has programmed
    const s = await eventually('every node reported programmed on the device', async () => {
      const r = await cli(['status', '--kubeconfig', doc.kubeconfig, '--json']);
      const st = JSON.parse(String(r.stdout)) as { hub: { vni: number }; device: string | null; peers: { node: string; overlayIP: string; annotated: boolean; programmedOnDevice: boolean | null }[] };
      return st.peers.length === doc.nodes.length && st.peers.every((p) => p.programmedOnDevice === true) ? st : undefined;
    });
    expect(s.hub.vni).toBe(100000);
    expect(s.device).toBe('linux');
    expect(s.peers.map((p) => [p.node, p.overlayIP, p.annotated, p.programmedOnDevice])).toEqual(doc.nodes.map((n) => [n.name, n.overlayIP, true, true]));
    const table = String((await cli(['status', '--kubeconfig', doc.kubeconfig])).stdout);
    expect(table).toMatch(/^VNI 100000, port 4789, overlay 198\.18\.16\.0\/20, device linux/);
    expect(table).toMatch(/^NODE +UNDERLAY IP +OVERLAY IP +VTEP MAC +POD CIDRS +PATH +ON NODE +ON DEVICE$/m);
    expect(table).toMatch(/^node-1 +198\.18\.1\.1 +198\.18\.16\.\d+ +02:c4:c6:\S+ +198\.19\.0\.0\/24 +vxlan +yes +yes$/m);
  });

  it('reaches every pod from the device by ping through the VXLAN overlay', async () => {
    for (const n of doc.nodes) for (const p of n.pods) expect(await pingOnce(doc.device.netns, p.ip), `${p.name} ${p.ip}`).toBe(true);
  });

  it('carries TCP from the device to a pod, with the pod seeing the device overlay address', async () => {
    const pod = doc.nodes[1]!.pods[0]!;
    const server = spawn('ip', ['netns', 'exec', pod.netns, process.execPath, '-e',
      `require('net').createServer(s => s.end('hello from ${pod.name} to ' + s.remoteAddress + '\\n')).listen(8080, '0.0.0.0', () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => server.stdout.once('data', () => resolve()));
      const r = await inNetns(doc.device.netns, ['bash', '-c', `exec 3<>/dev/tcp/${pod.ip}/8080; cat <&3`], true);
      expect(String(r.stdout).trim()).toBe(`hello from ${pod.name} to ${doc.device.overlayIPs[0]!}`);
    } finally {
      server.kill();
    }
  });

  it('serves agent health from inside the node namespace', async () => {
    const n = doc.nodes[0]!;
    const ready = n.agentHealthURL.replace('/healthz', '/readyz');
    const r = await inNetns(n.netns, [process.execPath, '-e', `fetch(${JSON.stringify(ready)}).then(async r => { console.log(r.status, await r.text()) })`], true);
    expect(String(r.stdout)).toContain('200 {"status":"ready"}');
  });

  it('makes a node added to the cluster reachable', async () => {
    const r = await cli(['lab', 'add-node', '--pods', '1']);
    const added = JSON.parse(String(r.stdout)) as LabDocument['nodes'][number];
    expect(added).toMatchObject({ name: 'node-4', overlayIP: expect.any(String), pods: [expect.objectContaining({ ip: '198.19.3.2' })] });
    expect(await pingOnce(doc.device.netns, '198.19.3.2')).toBe(true);
  });

  it('removes a deleted node\'s route, FDB and neighbour from the device and frees its address', async () => {
    const before = await labStatus();
    const victim = before.nodes.find((n) => n.name === 'node-2')!;
    const mac = `02:c4:${victim.overlayIP!.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`;
    expect((await deviceState()).fdb).toContain(mac);
    await cli(['lab', 'remove-node', 'node-2']);
    const state = await eventually('device forgets node-2', async () => {
      const s = await deviceState();
      return s.routes.includes(victim.podCIDRs[0]!) || s.fdb.includes(mac) || s.neigh.includes(`${victim.overlayIP!} `) ? undefined : s;
    });
    expect(state.routes).not.toContain(victim.podCIDRs[0]);
    expect(await labNamespaces(doc.prefix)).not.toContain(victim.netns);
    // the address is free again: no Node holds it and the peer table no longer lists it
    // (it is handed out again last, once every never-used address is taken)
    expect(Object.values(await allocations())).not.toContain(victim.overlayIP);
    const shards = await core.listNamespacedConfigMap({ namespace: 'chorus-system', labelSelector: 'kube-router.chorus.io/table=peers' });
    expect(JSON.stringify(shards.items.map((c) => c.data))).not.toContain(`"overlayIP":"${victim.overlayIP!}"`);
    const r = await cli(['lab', 'add-node', '--pods', '1']);
    expect((JSON.parse(String(r.stdout)) as { overlayIP: string }).overlayIP).not.toBe(victim.overlayIP);
  });

  it('restarts a killed agent within seconds, and traffic keeps flowing', async () => {
    const n = (await labStatus()).nodes[0]!;
    process.kill(n.agentPid!, 'SIGKILL');
    const restarted = await eventually('agent restarted', async () => {
      const pid = (await labStatus()).nodes[0]!.agentPid;
      return pid !== null && pid !== n.agentPid ? pid : undefined;
    }, 10_000);
    expect(restarted).not.toBe(n.agentPid);
    expect(await pingOnce(doc.device.netns, n.pods[0]!.ip)).toBe(true);
  });

  it('changes no allocation when the coordinator restarts', async () => {
    const before = await allocations();
    const pid = (await labStatus()).coordinators[0]!.pid!;
    process.kill(pid, 'SIGTERM');
    await eventually('coordinator restarted', async () => {
      const now = (await labStatus()).coordinators[0]!.pid;
      return now !== null && now !== pid ? now : undefined;
    }, 15_000);
    const added = JSON.parse(String((await cli(['lab', 'add-node', '--pods', '1'])).stdout)) as { name: string; overlayIP: string };
    const after = await allocations();
    for (const [node, ip] of Object.entries(before)) expect(after[node], node).toBe(ip);
    expect(Object.values(before)).not.toContain(added.overlayIP);
  });

  it('a sweep of leftover labs from another lab root (another test run beside this one) leaves this live lab alone', async () => {
    const otherRoot = mkdtempSync(join(tmpdir(), 'chorus-other-run-'));
    try {
      const r = await execa(CLI, ['lab', 'down', '--all'], { env: { CHORUS_LAB_DIR: otherRoot }, reject: false });
      expect(r.exitCode).toBe(0);
      expect(String(r.stderr)).not.toContain(doc.prefix);
      expect((await labNamespaces(doc.prefix)).length).toBeGreaterThan(0);
      expect(await pingOnce(doc.device.netns, doc.nodes[0]!.pods[0]!.ip)).toBe(true);
    } finally {
      rmSync(otherRoot, { recursive: true, force: true });
    }
  });

  it('lab down removes every namespace, process and file of the lab', async () => {
    const status = await labStatus();
    const pids = [status.supervisorPid, status.apiServer.pid, status.device.pid, ...status.coordinators.map((c) => c.pid), ...status.nodes.map((n) => n.agentPid)];
    await cli(['lab', 'down', '--prefix', doc.prefix]);
    expect(await labNamespaces(doc.prefix)).toEqual([]);
    expect(existsSync(join(LAB_DIR, doc.prefix))).toBe(false);
    for (const pid of pids) expect(() => process.kill(pid!, 0), `pid ${pid}`).toThrow();
  });
});

describe.skipIf(!IS_ROOT)('make run ONCE=1 equivalent (lab run --once)', () => {
  it('prints the reachability table and exits 0 when every pod answers', async () => {
    const r = await cli(['lab', 'run', '--once', '--nodes', '2', '--pods-per-node', '1']);
    expect(r.exitCode).toBe(0);
    expect(String(r.stdout)).toMatch(/NODE\s+UNDERLAY IP\s+OVERLAY IP\s+PATH\s+POD CIDR/);
    expect(String(r.stdout)).toMatch(/^node-1\s+\S+\s+\S+\s+vxlan\s/m);
    expect(String(r.stdout)).toContain('2/2 pods reachable from the device through the VXLAN overlay');
    // its own namespaces are gone (other labs on the machine, another run's, are not its business)
    const prefix = /prefix (ckr[0-9a-f]{5})/.exec(String(r.stderr))?.[1];
    expect(prefix).toBeDefined();
    expect(await labNamespaces(prefix ?? '')).toEqual([]);
  });
});

if (!IS_ROOT) {
  console.warn(E2E_SKIP_REASON);
  describe(E2E_SKIP_REASON, () => {
    it.skip('overlay end to end', () => undefined);
  });
}
