// Two instances on the same nodes (issue: several instances per cluster): the default instance
// programs the Linux device (gateway), instance b (deploy/instance-b, rendered by kubectl
// kustomize) programs an emulated Citrix ADC. Both devices reach every pod; restarting,
// reconfiguring and uninstalling one leaves the other's kernel state (every node and its device)
// and device configuration exactly as it was, byte for byte.
// On the same lab, first (it needs every component of both instances, as a whole install has
// them): a real Prometheus (Debian's) scraping the agents, coordinators and gateway through their
// real health endpoints with the shipped alert rules (deploy/monitoring/prometheus-rule.yaml)
// loaded: every metric docs/metrics.md lists is there, no alert fires on the healthy lab, and an
// injected fault (a Node whose pod CIDR overlaps the overlay network) fires its alert. The rules'
// `for` durations are set to 0 here (minutes of waiting); promtool's tests (test/unit/alerts.test.ts)
// check the durations.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { AGENT_B_HEALTH_PORT, AGENT_HEALTH_PORT, CONTROL_PLANE_IP, COORDINATOR_HEALTH_PORT, DEVICE_IP, GATEWAY_HEALTH_PORT, namesFor } from '../lab/addressing.ts';
import { prometheusBinary, ruleGroups } from '../support/prometheus.ts';
import type { LabDocument } from '../lab/lab.ts';
import { controlRequest } from '../lab/control.ts';
import { CLI_PATH } from '../lab/processes.ts';
import { eventually } from '../support/apiserver.ts';
import { E2E_SKIP_REASON, IS_ROOT, cli, httpFromNetns, inNetns, labCore, labDown, labUp, pingOnce } from '../support/lab.ts';
import { DEVICE_STATUS_CLUSTER_KEY, instanceNames } from '../../shared/keys.ts';

let doc: LabDocument;
const A = { dev: 'chorus-100000', table: 'chorus-kube-router' };
const B = { dev: 'chb-100001', table: 'chorus-kube-router-b' };

const sh = async (netns: string, script: string): Promise<string> => String((await inNetns(netns, ['sh', '-c', script], true)).stdout);

/** One instance's kernel state on every node (and on the Linux device for the default instance), as text. */
async function kernelState(d: LabDocument, which: { dev: string; table: string }, extra: readonly string[] = []): Promise<string> {
  const parts: string[] = [];
  for (const ns of [...d.nodes.map((n) => n.netns), ...extra]) {
    parts.push(`## ${ns}`, await sh(ns, `ip -d link show ${which.dev} 2>&1; bridge fdb show dev ${which.dev} 2>&1; ip neigh show dev ${which.dev} nud permanent 2>&1; ip route show dev ${which.dev} 2>&1; nft -s list table inet ${which.table} 2>&1`));
  }
  return parts.join('\n');
}

const stateA = (d: LabDocument): Promise<string> => kernelState(d, A, [d.device.netns]);
const stateB = (d: LabDocument): Promise<string> => kernelState(d, B);

/** Instance b's ADC configuration as NITRO lists it (fetched from inside the lab, verified with the lab CA). */
async function adcConfig(d: LabDocument): Promise<string> {
  const second = d.second;
  if (!second) throw new Error('no second instance');
  const { api } = second.device;
  const resources = ['vxlan', 'vxlan_srcip_binding/100001', 'nsip', 'arp', 'bridgetable', 'route', 'policystringmap_pattern_binding/chorus_kube_router_owners'];
  const script = `const https = require('https'); const fs = require('fs'); const ca = fs.readFileSync(${JSON.stringify(api.caFile)});
    const get = (r) => new Promise((ok, ko) => https.get(${JSON.stringify(api.url)} + '/' + r, { ca, headers: { 'X-NITRO-USER': ${JSON.stringify(api.username)}, 'X-NITRO-PASS': ${JSON.stringify(api.password)} } },
      (res) => { let b = ''; res.on('data', (x) => b += x); res.on('end', () => ok([r, res.statusCode, JSON.parse(b)])); }).on('error', ko));
    Promise.all(${JSON.stringify(resources)}.map(get)).then((all) => console.log(JSON.stringify(all)));`;
  const answers = JSON.parse(String((await inNetns(second.device.netns, [process.execPath, '-e', script], true)).stdout)) as [string, number, Record<string, unknown>][];
  return answers.map(([r, status, body]) => {
    const key = r.split('/')[0] ?? r;
    const list = Array.isArray(body[key]) ? (body[key] as unknown[]).map((o) => JSON.stringify(o)).sort() : [];
    return `${r} ${status} ${list.join('\n')}`;
  }).join('\n');
}

const everyPodAnswers = async (d: LabDocument, from: string): Promise<boolean> => (await Promise.all(d.nodes.flatMap((n) => n.pods).map((p) => pingOnce(from, p.ip)))).every(Boolean);

async function readyB(d: LabDocument): Promise<void> {
  await eventually('instance b agents ready', async () => {
    const oks = await Promise.all(d.nodes.map(async (n) => (await inNetns(n.netns, [process.execPath, '-e', `fetch('http://${n.underlayIP}:9651/readyz').then(r => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))`])).exitCode === 0));
    return oks.every(Boolean) ? true : undefined;
  }, 30_000);
}

/** This lab's document (by prefix: other suites' labs may exist). */
const labStatus = async (): Promise<LabDocument> => JSON.parse(String((await cli(['lab', 'status', '--json', '--prefix', doc.prefix])).stdout)) as LabDocument;

const control = (path: string): Promise<unknown> => controlRequest(join(doc.dir, 'control.sock'), 'POST', path);

let prometheus: ChildProcess | undefined;
let dir = '';
let cp = '';
const PROM = 'http://127.0.0.1:19090';

async function query<T>(path: string): Promise<T> {
  const r = await httpFromNetns(cp, `${PROM}${path}`);
  if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
  return (JSON.parse(r.body) as { data: T }).data;
}

/** Every metric name docs/metrics.md lists; the agent's set also under the gateway's prefix. */
function documentedMetrics(): string[] {
  const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  const rows = [...doc.matchAll(/^\| `((?:chorus|process|nodejs)_[a-z_]+)` \| (counter|gauge|histogram) \|/gm)].map((m) => ({ name: m[1] ?? '', type: m[2] ?? '' }));
  const names = rows.flatMap((r) => [r, ...(r.name.startsWith('chorus_agent_') ? [{ ...r, name: r.name.replace('chorus_agent_', 'chorus_gateway_') }] : [])]);
  return names.map((r) => (r.type === 'histogram' ? `${r.name}_count` : r.name));
}

beforeAll(async () => {
  if (IS_ROOT) doc = await labUp(['--nodes', '2', '--pods-per-node', '1', '--device', 'linux', '--second-instance', 'citrix']);
}, 180_000);

afterAll(async () => {
  if (IS_ROOT) await labDown(doc);
}, 60_000);

describe.skipIf(!IS_ROOT)('Prometheus scraping the lab, with the shipped alerts', () => {
  beforeAll(() => {
    cp = namesFor(doc.prefix).controlPlane;
    dir = mkdtempSync(join(tmpdir(), 'prometheus-'));
    const rules = ruleGroups();
    for (const g of rules.groups) for (const r of g.rules) r.for = '0s';
    writeFileSync(join(dir, 'rules.yaml'), dump(rules));
    const labels = { namespace: 'chorus-system' };
    const underlays = doc.nodes.map((n) => n.underlayIP);
    writeFileSync(join(dir, 'prometheus.yml'), dump({
      global: { scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '900ms' },
      rule_files: [join(dir, 'rules.yaml')],
      scrape_configs: [
        { job_name: 'coordinator', static_configs: [{ targets: doc.coordinators.map((_c, i) => `${CONTROL_PLANE_IP}:${COORDINATOR_HEALTH_PORT + i + 1}`), labels }] },
        { job_name: 'coordinator-b', static_configs: [{ targets: [`${CONTROL_PLANE_IP}:${COORDINATOR_HEALTH_PORT + 10}`], labels }] },
        { job_name: 'agent', static_configs: [{ targets: underlays.map((ip) => `${ip}:${AGENT_HEALTH_PORT}`), labels }] },
        { job_name: 'agent-b', static_configs: [{ targets: underlays.map((ip) => `${ip}:${AGENT_B_HEALTH_PORT}`), labels }] },
        { job_name: 'gateway', static_configs: [{ targets: [`${DEVICE_IP}:${GATEWAY_HEALTH_PORT}`] }] },
      ],
    }));
    prometheus = spawn('ip', ['netns', 'exec', cp, prometheusBinary('prometheus'), `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
      '--web.listen-address=127.0.0.1:19090', '--log.level=warn'], { stdio: 'ignore' });
  });

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await new Promise((r) => prometheus?.once('exit', r));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('scrapes every component and finds every documented metric', async () => {
    const targets = await eventually('every target up', async () => {
      const t = await query<{ activeTargets: { health: string; scrapeUrl: string; lastError: string }[] }>('/api/v1/targets').catch(() => undefined);
      return t && t.activeTargets.length > 0 && t.activeTargets.every((x) => x.health === 'up') ? t.activeTargets : undefined;
    }, 60_000);
    expect(targets.length).toBe(doc.coordinators.length + 1 + 2 * doc.nodes.length + 1);
    const names = new Set(await query<string[]>('/api/v1/label/__name__/values'));
    const missing = documentedMetrics().filter((n) => !names.has(n));
    expect(missing, 'metrics listed in docs/metrics.md that Prometheus did not find').toEqual([]);
  }, 90_000);

  it('fires no alert on the healthy lab, and ChorusNodesNotServed for a node left out', async () => {
    const firing = async (): Promise<{ labels: { alertname: string; instance?: string }; state: string }[]> =>
      (await query<{ alerts: { labels: { alertname: string; instance?: string }; state: string }[] }>('/api/v1/alerts')).alerts.filter((a) => a.state === 'firing');
    // the lab converges: nothing firing (and staying so for a few evaluations)
    await eventually('no alert firing on the healthy lab', async () => ((await firing()).length === 0 ? true : undefined), 60_000);
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await firing()).toEqual([]);
    // a Node whose pod CIDR overlaps the overlay network: the leader leaves it out
    const started = performance.now();
    await labCore(doc).createNode({ body: { metadata: { name: 'bad-pod-cidr' }, spec: { podCIDRs: ['198.18.16.0/26'] }, status: { addresses: [{ type: 'InternalIP', address: '198.18.9.250' }] } } });
    const alert = await eventually('ChorusNodesNotServed firing', async () => (await firing()).find((a) => a.labels.alertname === 'ChorusNodesNotServed'), 30_000);
    expect(alert.labels.instance).toMatch(new RegExp(`^${CONTROL_PLANE_IP.replace(/\./g, '\\.')}:`));
    console.log(`prometheus e2e: ChorusNodesNotServed firing ${Math.round(performance.now() - started)} ms after the bad Node was created (scrape and evaluation every 1 s, for: 0s)`);
    await labCore(doc).deleteNode({ name: 'bad-pod-cidr' });
    await eventually('the alert resolved', async () => ((await firing()).some((a) => a.labels.alertname === 'ChorusNodesNotServed') ? undefined : true), 30_000);
  }, 90_000);
});

describe.skipIf(!IS_ROOT)('two instances on the same nodes: default (Linux device) and b (Citrix emulator)', () => {
  it('both devices reach every pod, each through its own VXLAN device, nftables table and node annotations', async () => {
    expect(doc.second).toMatchObject({ instance: 'b', vni: 100001, device: { type: 'citrix', underlayIP: '198.18.0.6', overlayIPs: ['198.18.32.1'] } });
    expect(await everyPodAnswers(doc, doc.device.netns)).toBe(true);
    expect(await everyPodAnswers(doc, doc.second?.device.netns ?? '')).toBe(true);
    const n = doc.nodes[0]!;
    expect(await sh(n.netns, 'ip -br link show type vxlan | cut -d" " -f1 | sort')).toBe(`${B.dev}\n${A.dev}`);
    expect(await sh(n.netns, 'nft list tables | sort')).toBe(`table inet ${A.table}\ntable inet ${B.table}`);
    const node = await labCore(doc).readNode({ name: n.name });
    expect(node.metadata?.annotations?.[instanceNames('b').annotationOverlayIP]).toMatch(/^198\.18\.32\./);
    expect(node.metadata?.annotations?.[instanceNames('').annotationOverlayIP]).toMatch(/^198\.18\.16\./);
  });

  it('restarting one instance (agents and coordinator) leaves the other\'s kernel and device state unchanged', async () => {
    const a0 = await stateA(doc);
    const b0 = await stateB(doc);
    const adc0 = await adcConfig(doc);
    // the snapshots hold the real state (a missing device or table would show as an error text)
    expect(a0).toMatch(/vxlan id 100000 [\s\S]*table inet chorus-kube-router \{[\s\S]*## .*-dev\n[\s\S]*vxlan id 100000/);
    expect(b0).toMatch(/vxlan id 100001 [\s\S]*table inet chorus-kube-router-b \{/);
    expect(adc0).toMatch(/"id":"100001"[\s\S]*"ipaddress":"198\.18\.32\.2"/);
    // instance b: its agents and coordinator die and the supervisor restarts them
    const before = await labStatus();
    for (const pid of [...Object.values(before.second?.agents ?? {}), before.second?.coordinator.pid]) if (pid) process.kill(pid, 'SIGKILL');
    await eventually('b restarted', async () => {
      const d = await labStatus();
      return Object.entries(d.second?.agents ?? {}).every(([k, pid]) => pid !== null && pid !== before.second?.agents[k]) && d.second?.coordinator.pid !== before.second?.coordinator.pid && d.second?.coordinator.pid !== null ? d : undefined;
    }, 30_000);
    await readyB(doc);
    expect(await everyPodAnswers(doc, doc.second?.device.netns ?? '')).toBe(true);
    expect(await stateA(doc)).toBe(a0);
    expect(await stateB(doc)).toBe(b0);
    // the default instance: its agents and coordinator restart; b's state does not move
    for (const pid of [...before.nodes.map((x) => x.agentPid), ...before.coordinators.map((c) => c.pid)]) if (pid) process.kill(pid, 'SIGKILL');
    await eventually('default restarted', async () => {
      const d = await labStatus();
      return d.nodes.every((x, i) => x.agentPid !== null && x.agentPid !== before.nodes[i]?.agentPid) ? d : undefined;
    }, 30_000);
    await eventually('device reaches every pod again', async () => ((await everyPodAnswers(doc, doc.device.netns)) ? true : undefined), 30_000);
    expect(await stateB(doc)).toBe(b0);
    expect(await adcConfig(doc)).toBe(adc0);
    expect(await stateA(doc)).toBe(a0);
  });

  it('reconfiguring instance b (another MTU) changes only b\'s devices', async () => {
    const a0 = await stateA(doc);
    const adc0 = await adcConfig(doc);
    await control('/second/reconfigure?arg=--mtu&arg=1400');
    await eventually('b devices at MTU 1400', async () => ((await Promise.all(doc.nodes.map((n) => sh(n.netns, `ip link show ${B.dev}`)))).every((t) => t.includes('mtu 1400')) ? true : undefined), 30_000);
    expect(await everyPodAnswers(doc, doc.second?.device.netns ?? '')).toBe(true);
    expect(await stateA(doc)).toBe(a0);
    expect(await adcConfig(doc)).toBe(adc0);
  });

  it('uninstalling instance b (agent cleanup, device teardown without an API token) removes all of b and nothing of the default instance', async () => {
    const a0 = await stateA(doc);
    const second = doc.second!;
    const core = labCore(doc);
    const names = instanceNames('b');
    const clusterId = (await core.readNamespacedConfigMap({ name: names.deviceStatusConfigMap, namespace: 'chorus-system' })).data?.[DEVICE_STATUS_CLUSTER_KEY];
    const vni = (await core.readNamespacedConfigMap({ name: names.hubConfigMap, namespace: 'chorus-system' })).data?.vni;
    expect(clusterId).toBe((await core.readNamespace({ name: 'kube-system' })).metadata?.uid);
    expect(vni).toBe('100001');
    await control('/second/stop');
    // what deploy/uninstall's node-cleanup DaemonSet runs on each node, with the instance's setting
    for (const n of doc.nodes) {
      const r = await inNetns(n.netns, ['env', 'CHORUS_INSTANCE=b', process.execPath, '--disable-warning=ExperimentalWarning', CLI_PATH, 'agent', 'cleanup']);
      expect(r.exitCode, String(r.stderr)).toBe(0);
    }
    // what the device-teardown Job runs: the coordinator's settings, identity and VNI from the published ConfigMaps, no API token
    const teardown = await inNetns(`${doc.prefix}-cp`, ['env', 'KUBECONFIG=/nonexistent', `CHORUS_CLUSTER_ID=${clusterId ?? ''}`, `CHORUS_VNI=${vni ?? ''}`, 'CHORUS_INSTANCE=b',
      process.execPath, '--disable-warning=ExperimentalWarning', CLI_PATH, 'coordinator', 'teardown', '--device-type', 'citrix', '--device-address', 'https://198.18.0.6',
      '--ca-file', second.device.api.caFile, '--credentials-dir', join(doc.dir, 'device-credentials'), '--overlay-network', '198.18.32.0/20', '--device-vtep', '198.18.0.6']);
    expect(teardown.exitCode, String(teardown.stderr)).toBe(0);
    expect(String(teardown.stderr)).toMatch(/"failed":0/);
    for (const n of doc.nodes) {
      expect(await sh(n.netns, 'ip -br link show type vxlan | cut -d" " -f1')).toBe(A.dev);
      expect(await sh(n.netns, 'nft list tables')).toBe(`table inet ${A.table}`);
    }
    const adc = await adcConfig(doc);
    expect(adc).not.toMatch(/"id":"100001"|198\.18\.32\.|"value"/);
    expect(adc).toMatch(/^vxlan 200 $/m);
    expect(await stateA(doc)).toBe(a0);
    expect(await everyPodAnswers(doc, doc.device.netns)).toBe(true);
  });
});

if (!IS_ROOT) {
  console.warn(E2E_SKIP_REASON);
  describe(E2E_SKIP_REASON, () => {
    it.skip('two instances end to end', () => undefined);
  });
}
