// Fault: the API server is down for the coordinator's first 30 s (issue 13, "start-up never
// wedges"). The coordinator keeps retrying with backoff (capped at 4 s) what it needs before it
// can start (the VNI the install publishes, the cluster identity) instead of starting on a guess
// (the new default VNI, where the install runs 4096) or exiting, and serves once the API answers:
// the Lease taken and the node allocated under the VNI the install runs. The time from the API's
// return to the node in the peer table is printed (not asserted). Run by outages.test.ts, beside
// the other outages.
import { expect } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CoordinationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { EmbeddedApiServer, kubeconfigYaml } from '../apiserver/server.ts';
import { readTls } from '../emulators/tls.ts';
import { eventually, loopbackTls } from '../support/apiserver.ts';
import { CLI_PATH } from '../lab/processes.ts';
import { freePortBelowEphemeral } from '../support/ports.ts';

export async function apiDownAtStart(): Promise<void> {
  let child: ChildProcess | undefined;
  let server: EmbeddedApiServer | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'api-down-'));
  try {
    const token = randomBytes(16).toString('hex');
    const tls = readTls(await loopbackTls());
    // a port that stays free while the API is down (an ephemeral one was taken meanwhile once, on a loaded machine)
    const port = await freePortBelowEphemeral('127.0.0.1');
    const url = `https://127.0.0.1:${port}`;
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, kubeconfigYaml(url, token, tls.ca, 'test'));
    const log: string[] = [];
    child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', CLI_PATH, 'coordinator', '--kubeconfig', kubeconfig,
      '--overlay-network', '198.18.16.0/20', '--device-vtep', '198.18.0.3', '--identity', 'c1', '--health-listen', '127.0.0.1:0',
      '--lease-duration', '3s', '--renew-deadline', '2s', '--retry-period', '250ms', '--pod-cidr-source', 'node'], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => log.push(...d.toString().split('\n').filter((l) => l !== '')));
    await new Promise((r) => setTimeout(r, 30_000));
    expect(child.exitCode).toBeNull();
    expect(log.some((l) => l.includes('retrying'))).toBe(true);
    expect(log.some((l) => l.includes('"coordinator started"'))).toBe(false);
    // the API comes back with what an install from before the default VNI changed has: its hub info publishes VNI 4096
    server = new EmbeddedApiServer({ token, tls });
    const api = server;
    const served = (plural: string) => api.served.find((r) => r.plural === plural)!;
    api.store.create(served('namespaces'), undefined, { metadata: { name: 'chorus-system' } });
    api.store.create(served('configmaps'), 'chorus-system', { metadata: { name: 'chorus-kube-router-hub', labels: { 'kube-router.chorus.io/table': 'hub' } }, data: { schemaVersion: '1', vni: '4096', port: '4789', overlayNetwork: '198.18.16.0/20', deviceVTEPs: '198.18.0.3', deviceOverlayIPs: '198.18.16.1' } });
    api.store.create(served('nodes'), undefined, { metadata: { name: 'node-1' }, spec: { podCIDRs: ['198.19.0.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '198.18.1.1' }] } });
    await api.listen('127.0.0.1', port);
    const back = performance.now();
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigYaml(url, token, tls.ca, 'test'));
    const core = kc.makeApiClient(CoreV1Api);
    // served: the node allocated in the peer table, under the VNI the install runs (not the new default it could not check at start)
    await eventually('node-1 in the peer table', async () => ((await core.readNamespacedConfigMap({ name: 'chorus-kube-router-peers-0', namespace: 'chorus-system' }).catch(() => undefined))?.data?.['node-1'] ? true : undefined), 20_000);
    const servedMs = performance.now() - back;
    const hub = (await core.readNamespacedConfigMap({ name: 'chorus-kube-router-hub', namespace: 'chorus-system' })).data ?? {};
    expect(hub.vni).toBe('4096');
    expect(log.some((l) => l.includes('keeping the VNI this install already publishes'))).toBe(true);
    expect((await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'chorus-kube-router-coordinator', namespace: 'chorus-system' })).spec?.holderIdentity).toBe('c1');
    console.log(`api-down-at-start fault: API back -> node in the peer table in ${Math.round(servedMs)} ms (after 30 s down; retry backoff capped at 4 s)`);
  } finally {
    child?.kill('SIGKILL');
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
