// Fault: the leader is frozen (SIGSTOP: a long GC pause, a VM stalled, a process cut off from the
// API but not from the device) in the middle of a 300-node apply to a slow ADC, and a leader whose
// device pass hangs (issue 13, "fencing that holds" and "start-up never wedges"). Two coordinator
// processes against the embedded API server and the NITRO emulator; each holds its own token, so
// the API server's audit and the emulator's sessions say who wrote what and when.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinationV1Api, CoreV1Api, RbacAuthorizationV1Api, type V1Node } from '@kubernetes/client-node';
import type { AuditRecord } from '../apiserver/server.ts';
import type { NitroEmulator } from '../emulators/nitro/server.ts';
import { CLI_PATH } from '../lab/processes.ts';
import { decodePeer, type Peer } from '../../shared/tables.ts';
import { ANNOTATION_OVERLAY_IP } from '../../shared/keys.ts';
import { eventually, startTestApiServer, type TestApiServer } from '../support/apiserver.ts';
import { NITRO_PASSWORD, NITRO_USER, startNitroEmulator } from '../support/nitro.ts';

interface Coord { readonly id: string; readonly child: ChildProcess; readonly log: string[] }

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
/** How soon after the thaw a request handed over before the freeze reaches the API (a loaded machine schedules the thawed process late). */
const IN_FLIGHT_MS = 1_000;
/** Node annotations the coordinator writes in parallel at most (coordinator/publisher.ts default). */
const ANNOTATION_PARALLELISM = 16;
let api: TestApiServer;
let core: CoreV1Api;
let device: { emulator: NitroEmulator; url: string; caFile: string };
let dir: string;
const tokens = { 'coord-a': randomBytes(16).toString('hex'), 'coord-b': randomBytes(16).toString('hex') };
const audit: (AuditRecord & { at: number })[] = [];
const coords: Coord[] = [];

function startCoordinator(id: 'coord-a' | 'coord-b', extra: string[] = []): Coord {
  const kubeconfig = join(dir, `${id}.kubeconfig`);
  writeFileSync(kubeconfig, api.kubeconfigYaml(tokens[id]));
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', CLI_PATH, 'coordinator', '--kubeconfig', kubeconfig,
    '--overlay-network', '198.18.16.0/20', '--device-vtep', '198.18.0.4', '--device-type', 'citrix', '--device-address', device.url, '--ca-file', device.caFile,
    '--identity', id, '--cluster-id', 'cluster-a', '--health-listen', '127.0.0.1:0', '--save-config', 'off', '--pod-cidr-source', 'node',
    '--lease-duration', '3s', '--renew-deadline', '2s', '--retry-period', '250ms', ...extra],
  { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CHORUS_DEVICE_USERNAME: NITRO_USER, CHORUS_DEVICE_PASSWORD: NITRO_PASSWORD } });
  const c = { id, child, log: [] as string[] };
  child.stderr?.on('data', (d: Buffer) => c.log.push(...d.toString().split('\n').filter((l) => l !== '')));
  coords.push(c);
  return c;
}

const exited = (c: ChildProcess): Promise<void> => new Promise((r) => {
  if (c.exitCode !== null || c.signalCode !== null) r();
  else c.once('exit', () => r());
});

async function holder(): Promise<string> {
  const lease = await api.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'chorus-kube-router-coordinator', namespace: 'chorus-system' }).catch(() => undefined);
  return lease?.spec?.holderIdentity ?? '';
}

function nodeBody(i: number): V1Node {
  return { metadata: { name: `node-${i}` }, spec: { podCIDRs: [`198.19.${Math.floor(i / 4)}.${(i % 4) * 64}/26`] }, status: { addresses: [{ type: 'InternalIP', address: `198.18.${1 + Math.floor(i / 250)}.${1 + (i % 250)}` }] } };
}

async function peerTable(): Promise<Peer[]> {
  const out: Peer[] = [];
  for (const cm of (await core.listNamespacedConfigMap({ namespace: 'chorus-system', labelSelector: 'kube-router.chorus.io/table=peers' })).items) {
    for (const [node, v] of Object.entries(cm.data ?? {})) {
      const p = decodePeer(node, v);
      if (!(p instanceof Error)) out.push(p);
    }
  }
  return out;
}

/** The ADC holds an arp entry and a route for every peer, as the peer table says, and nothing else of ours. */
async function deviceMatchesTable(n: number): Promise<true | undefined> {
  const peers = await peerTable();
  if (peers.length !== n) return undefined;
  const arps = device.emulator.store.list('arp', (a) => String(a.vxlan) === '100000' && a.type !== 'DYNAMIC');
  const routes = device.emulator.store.list('route', (r) => String(r.network).startsWith('198.19.'));
  const wantArps = new Set(peers.map((p) => `${p.overlayIP} ${p.vtepMAC.toLowerCase()} ${p.underlayIP}`));
  const haveArps = new Set(arps.map((a) => `${String(a.ipaddress)} ${String(a.mac).toLowerCase()} ${String(a.vtep)}`));
  const wantRoutes = new Set(peers.flatMap((p) => p.podCIDRs.map((c) => `${c.split('/')[0] ?? ''} ${p.overlayIP}`)));
  const haveRoutes = new Set(routes.map((r) => `${String(r.network)} ${String(r.gateway)}`));
  const same = (a: Set<string>, b: Set<string>): boolean => a.size === b.size && [...a].every((x) => b.has(x));
  return same(wantArps, haveArps) && same(wantRoutes, haveRoutes) && arps.length === n && routes.length === n ? true : undefined;
}

const healthURL = (c: Coord): string | undefined => {
  for (const l of c.log) {
    const m = /"health":"(http:\/\/[^"]+)"/.exec(l);
    if (m) return m[1];
  }
  return undefined;
};

beforeEach(async () => {
  audit.length = 0;
  api = await startTestApiServer({ users: { [tokens['coord-a']]: 'coord-a', [tokens['coord-b']]: 'coord-b' }, onAudit: (r) => audit.push({ ...r, at: Date.now() }) });
  core = api.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'chorus-system' } } });
  const rbac = api.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createClusterRole({ body: { metadata: { name: 'test-coordinator' }, rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] } });
  await rbac.createClusterRoleBinding({ body: { metadata: { name: 'test-coordinator' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'test-coordinator' }, subjects: Object.keys(tokens).map((name) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name })) } });
  device = await startNitroEmulator();
  dir = mkdtempSync(join(tmpdir(), 'fencing-'));
});

afterEach(async () => {
  for (const c of coords.splice(0)) {
    c.child.kill('SIGCONT');
    c.child.kill('SIGKILL');
    await exited(c.child);
  }
  await device.emulator.close();
  await api.close();
});

describe('fault: a leader frozen or stuck mid-apply', () => {
  it('a leader frozen (SIGSTOP) during a 300-node apply to a slow ADC writes nothing after thawing; the new leader converges the device', async () => {
    const n = 300;
    const nodes = api.server.served.find((r) => r.plural === 'nodes')!;
    for (let i = 1; i <= n; i++) api.server.store.create(nodes, undefined, nodeBody(i) as Record<string, unknown>);
    device.emulator.writeDelayMs = 400;
    const a = startCoordinator('coord-a');
    await eventually('a leads', async () => ((await holder()) === 'coord-a' ? true : undefined), 20_000);
    startCoordinator('coord-b');
    // freeze a as soon as its first device write has arrived: its apply is under way
    const first = await eventually('a writing to the ADC', () => device.emulator.writes().find((c) => c.session !== undefined), 30_000);
    a.child.kill('SIGSTOP');
    const frozenAt = Date.now();
    const aSessions = new Set(device.emulator.calls.filter((c) => c.at <= frozenAt && c.session).map((c) => c.session));
    expect(aSessions.has(first.session)).toBe(true);
    await eventually('b takes the Lease', async () => ((await holder()) === 'coord-b' ? true : undefined), 20_000);
    await eventually('b writing to the ADC', () => device.emulator.writes().find((c) => c.session !== undefined && !aSessions.has(c.session)), 20_000);
    a.child.kill('SIGCONT');
    const thawedAt = Date.now();
    const took = await eventually('the ADC holds what the peer table says', async () => ((await deviceMatchesTable(n)) ? Date.now() - thawedAt : undefined), 60_000);
    // and a while longer, for anything a might still do once its timers fire
    await eventually('a stepped down', () => (a.log.some((l) => l.includes('"stopped leading"')) ? true : undefined), 10_000);
    await new Promise((r) => setTimeout(r, 2_000));
    const aDeviceWrites = device.emulator.writes().filter((c) => c.at >= thawedAt && aSessions.has(c.session));
    // writes that took effect: a renew attempt answered before the freeze and sent after it is
    // refused by the Lease's resourceVersion (409), which is the API's own fencing
    const aApiWrites = audit.filter((r) => r.user === 'coord-a' && WRITE_VERBS.has(r.verb) && r.at >= thawedAt && r.code < 300);
    expect(aDeviceWrites, 'device writes by the old leader after it thawed').toEqual([]);
    // Each API write passes the fence when undici hands it to its connection; a fetch body is then
    // written after awaiting its stream, so a write handed over in the instant the process froze
    // goes out when it runs again (1 annotation in 1 of 6 runs on a machine at load 9). Such a
    // write reaches the API as soon as the process is scheduled after the thaw, and is one of the
    // annotation patches it had in flight (16 at most); a write the old leader decided after the
    // thaw would come later or be of another kind, and is what this fails on.
    const decidedAfterThaw = aApiWrites.filter((r) => r.at - thawedAt > IN_FLIGHT_MS || r.resource !== 'nodes' || r.verb !== 'patch');
    expect(decidedAfterThaw, 'API writes by the old leader after it thawed, beyond the requests it had in flight').toEqual([]);
    expect(aApiWrites.length).toBeLessThanOrEqual(ANNOTATION_PARALLELISM);
    expect(await holder()).toBe('coord-b');
    expect(await deviceMatchesTable(n)).toBe(true);
    // whatever went out did not undo the new leader: every node's annotation is its address in the peer table
    await eventually('every Node annotated with its peer-table address, no address twice', async () => {
      const byNode = new Map((await peerTable()).map((p) => [p.node, p.overlayIP]));
      const annotated = (await core.listNode()).items.map((node) => [node.metadata?.name ?? '', node.metadata?.annotations?.[ANNOTATION_OVERLAY_IP] ?? ''] as const);
      const unique = new Set(annotated.map(([, ip]) => ip)).size === annotated.length;
      return unique && annotated.length === n && annotated.every(([name, ip]) => byNode.get(name) === ip) ? true : undefined;
    }, 20_000);
    // the new leader read the device before writing (it never trusted a cache)
    const bFirst = device.emulator.calls.find((c) => c.session !== undefined && !aSessions.has(c.session));
    expect(bFirst?.method).toBe('GET');
    const inFlight = aApiWrites.length === 0 ? '0 API writes' : `${aApiWrites.length} annotation patch(es) it had in flight at the freeze, ${aApiWrites.map((r) => r.at - thawedAt).join(', ')} ms after the thaw, nothing else`;
    console.log(`fencing fault: a frozen ${((thawedAt - frozenAt) / 1000).toFixed(1)} s mid-apply (writes delayed 400 ms each), b led; after the thaw a made 0 device writes and ${inFlight}; device matched the peer table ${took} ms after the thaw`);
  }, 120_000);

  it('a leader whose device pass hangs stops renewing its Lease and fails /livez; the standby takes over and programs the ADC', async () => {
    const n = 20;
    for (let i = 1; i <= n; i++) await core.createNode({ body: nodeBody(i) });
    // every request hangs for a while (the ADC accepts the connection and answers nothing)
    device.emulator.hangNext(2);
    const a = startCoordinator('coord-a', ['--pass-deadline', '2s']);
    await eventually('a leads', async () => ((await holder()) === 'coord-a' ? true : undefined), 20_000);
    startCoordinator('coord-b', ['--pass-deadline', '2s']);
    const aHealth = await eventually('a\'s health address', () => healthURL(a));
    const live = await eventually('a\'s /livez failing', async () => {
      const r = await fetch(`${aHealth}/livez`);
      return r.status === 503 ? ((await r.json()) as { reason: string }).reason : undefined;
    }, 20_000);
    expect(live).toMatch(/device reconcile pass has run for \d+ s/);
    await eventually('b takes the Lease', async () => ((await holder()) === 'coord-b' ? true : undefined), 20_000);
    await eventually('the ADC holds what the peer table says', () => deviceMatchesTable(n), 30_000);
    expect(a.log.some((l) => l.includes('not renewing the lease'))).toBe(true);
  }, 90_000);
});
