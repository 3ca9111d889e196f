// A real Prometheus (Debian's) scraping the lab's agents, coordinators and gateway through their
// real health endpoints, with the shipped alert rules (deploy/monitoring/prometheus-rule.yaml)
// loaded: every metric docs/metrics.md lists is there, no alert fires on the healthy lab, and an
// injected fault (a Node whose pod CIDR overlaps the overlay network) fires its alert. The rules'
// `for` durations are set to 0 here (minutes of waiting); promtool's tests (test/unit/alerts.test.ts)
// check the durations. The lab runs both instances (Linux device + gateway, and instance b on the
// NITRO emulator) so that device metrics and gateway metrics are both scraped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import type { LabDocument } from '../lab/lab.ts';
import { AGENT_B_HEALTH_PORT, AGENT_HEALTH_PORT, CONTROL_PLANE_IP, COORDINATOR_HEALTH_PORT, DEVICE_IP, GATEWAY_HEALTH_PORT, namesFor } from '../lab/addressing.ts';
import { eventually } from '../support/apiserver.ts';
import { E2E_SKIP_REASON, IS_ROOT, httpFromNetns, labCore, labDown, labUp } from '../support/lab.ts';
import { prometheusBinary, ruleGroups } from '../support/prometheus.ts';

let doc: LabDocument;
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
  const rows = [...doc.matchAll(/^\| `(chorus_[a-z_]+)` \| (counter|gauge|histogram) \|/gm)].map((m) => ({ name: m[1] ?? '', type: m[2] ?? '' }));
  const names = rows.flatMap((r) => [r, ...(r.name.startsWith('chorus_agent_') ? [{ ...r, name: r.name.replace('chorus_agent_', 'chorus_gateway_') }] : [])]);
  return names.map((r) => (r.type === 'histogram' ? `${r.name}_count` : r.name));
}

describe.skipIf(!IS_ROOT)('Prometheus scraping the lab, with the shipped alerts', () => {
  beforeAll(async () => {
    doc = await labUp(['--nodes', '2', '--pods-per-node', '1', '--second-instance', 'citrix']);
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
  }, 240_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await new Promise((r) => prometheus?.once('exit', r));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    await labDown(doc);
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

if (!IS_ROOT) {
  console.warn(E2E_SKIP_REASON);
  describe(E2E_SKIP_REASON, () => {
    it.skip('Prometheus e2e', () => undefined);
  });
}
