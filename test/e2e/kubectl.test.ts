// The real kubectl against the lab, as an operator uses it from the README: the lab's kubeconfig
// (HTTPS, the lab's CA, a bearer token) from the host. get (table, yaml, json, watch), describe,
// apply -k deploy/ with kubectl's default (strict) validation, strategic merge patch, delete and
// dry runs, auth can-i as each ServiceAccount, and RBAC enforced on a component's own token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type Result } from 'execa';
import type { LabDocument } from '../lab/lab.ts';
import { eventually } from '../support/apiserver.ts';
import { DEPLOY_DIR } from '../support/manifests.ts';
import { CLI, E2E_SKIP_REASON, IS_ROOT, labDown, labUp } from '../support/lab.ts';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { kubeconfigYaml } from '../apiserver/server.ts';
import { mergePatch } from '../../shared/kube/client.ts';
import { DEFAULT_NAMES } from '../../shared/keys.ts';

const KUBECTL = '/usr/bin/kubectl';
const HAVE_KUBECTL = existsSync(KUBECTL);
const NS = 'chorus-system';
const AGENT_SA = 'system:serviceaccount:chorus-system:chorus-kube-router-agent';

let doc: LabDocument | undefined;

async function kubectl(args: string[], opts: { reject?: boolean; env?: Record<string, string> } = {}): Promise<Result> {
  if (!doc) throw new Error('lab not up');
  return execa(KUBECTL, args, { env: { KUBECONFIG: doc.kubeconfig, ...opts.env }, reject: opts.reject ?? true, timeout: 60_000 });
}

const out = (r: Result): string => String(r.stdout);

beforeAll(async () => {
  if (IS_ROOT && HAVE_KUBECTL) doc = await labUp(['--nodes', '2', '--pods-per-node', '1']);
});

afterAll(async () => {
  await labDown(doc);
}, 60_000);

const TITLE = HAVE_KUBECTL ? 'kubectl against the lab' : `kubectl against the lab: skipped, ${KUBECTL} is missing (kubectl v1.32+ is needed; make build says how to get it)`;

describe.skipIf(!IS_ROOT || !HAVE_KUBECTL)(TITLE, () => {
  it('the kubeconfig is verified TLS: a CA, no skip-verify, an https server', () => {
    const text = readFileSync(doc?.kubeconfig ?? '', 'utf8');
    expect(text).toMatch(/certificate-authority-data: \S+/);
    expect(text).not.toMatch(/insecure-skip-tls-verify/);
    expect(text).toMatch(/server: https:\/\/127\.0\.0\.1:\d+/);
  });

  it('get nodes prints the server-side table, -o wide, yaml and json', async () => {
    const table = out(await kubectl(['get', 'nodes'])).split('\n');
    expect(table[0]).toMatch(/^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION$/);
    expect(table.slice(1).filter((l) => l !== '')).toHaveLength(2);
    for (const line of table.slice(1)) expect(line).toMatch(/^node-\d\s+Ready\s+<none>\s+\d+s\s+v1\.34\.0-chorus-lab$/);
    const wide = out(await kubectl(['get', 'nodes', '-o', 'wide']));
    expect(wide).toMatch(/INTERNAL-IP/);
    expect(wide).toMatch(/node-1 .* 198\.18\.1\.1 /);
    const json = JSON.parse(out(await kubectl(['get', 'nodes', '-o', 'json']))) as { kind: string; items: { metadata: { name: string; annotations?: Record<string, string> } }[] };
    expect(json.kind).toBe('List');
    expect(json.items.map((n) => n.metadata.name)).toEqual(['node-1', 'node-2']);
    expect(json.items[0]?.metadata.annotations?.['kube-router.chorus.io/overlay-ip']).toMatch(/^198\.18\.16\.\d+$/);
    const yaml = out(await kubectl(['get', 'node', 'node-1', '-o', 'yaml']));
    expect(yaml).toMatch(/^apiVersion: v1\nkind: Node\n/);
    expect(yaml).toMatch(/address: 198\.18\.1\.1/);
    const cms = out(await kubectl(['get', 'configmaps', '-n', NS]));
    expect(cms).toMatch(/^NAME\s+DATA\s+AGE/);
    expect(cms).toMatch(/chorus-kube-router-hub\s+\d+\s+\d+s/);
    expect(out(await kubectl(['get', 'lease', '-n', NS]))).toMatch(/chorus-kube-router-coordinator\s+coordinator-1\s/);
  });

  it('get -w prints a line for each change as it happens', async () => {
    if (!doc) throw new Error('lab not up');
    const watch = spawn(KUBECTL, ['get', 'nodes', '-w'], { env: { ...process.env, KUBECONFIG: doc.kubeconfig } });
    let seen = '';
    watch.stdout.on('data', (d: Buffer) => { seen += d.toString(); });
    try {
      await eventually('the initial listing', () => (seen.includes('node-2') ? true : undefined));
      const lines = (): number => seen.split('\n').filter((l) => l.startsWith('node-1')).length;
      const before = lines();
      await kubectl(['label', 'node', 'node-1', 'watched=yes']);
      await eventually('a line for the labelled node', () => (lines() > before ? true : undefined));
      expect(seen.split('\n')[0]).toMatch(/^NAME\s+STATUS/);
      expect(seen.split('\n').filter((l) => l.startsWith('NAME'))).toHaveLength(1);
    } finally {
      watch.kill();
    }
  });

  it('describe node shows addresses, annotations and pod CIDR', async () => {
    const text = out(await kubectl(['describe', 'node', 'node-1']));
    expect(text).toMatch(/^Name:\s+node-1$/m);
    expect(text).toMatch(/InternalIP:\s+198\.18\.1\.1/);
    expect(text).toMatch(/kube-router\.chorus\.io\/overlay-ip: 198\.18\.16\.\d+/);
    expect(text).toMatch(/PodCIDR:\s+198\.19\.0\.0\/24/);
    expect(text).toMatch(/Kubelet Version:\s+v1\.34\.0-chorus-lab/);
  });

  it('apply -k deploy/ with default validation, and again: nothing stored changes', async () => {
    const first = out(await kubectl(['apply', '-k', DEPLOY_DIR]));
    // the lab installed namespace and RBAC as `kubectl apply` would: they are unchanged
    expect(first).toMatch(/clusterrole\.rbac\.authorization\.k8s\.io\/chorus-kube-router-agent unchanged/);
    expect(first).toMatch(/daemonset\.apps\/chorus-kube-router-agent created/);
    expect(first).toMatch(/deployment\.apps\/chorus-kube-router-coordinator created/);
    // the objects deploy/ applies; not the ConfigMaps the running lab writes (hub info, peer table,
    // device status: the gateway's status write is coalesced, so it may land during this test)
    const written = new Set([DEFAULT_NAMES.hubConfigMap, DEFAULT_NAMES.deviceStatusConfigMap]);
    const applied = (v: string): boolean => !written.has(v.split('/')[1]?.split('=')[0] ?? '') && !v.startsWith(`ConfigMap/${DEFAULT_NAMES.peersConfigMapPrefix}`);
    const versions = async (): Promise<string> => out(await kubectl(['get', 'daemonsets,deployments,poddisruptionbudgets,configmaps,roles,rolebindings', '-n', NS, '-o', 'jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion} {end}'])).split(' ').filter((v) => v !== '' && applied(v)).join(' ');
    const before = await versions();
    await kubectl(['apply', '-k', DEPLOY_DIR]);
    expect(await versions()).toBe(before);
    const ds = JSON.parse(out(await kubectl(['get', 'daemonset', 'chorus-kube-router-agent', '-n', NS, '-o', 'json']))) as { spec: { template: { spec: { hostNetwork: boolean } } } };
    expect(ds.spec.template.spec.hostNetwork).toBe(true);
    // a second instance from its overlay: its own objects, nothing of the first changed
    const second = out(await kubectl(['apply', '-k', join(DEPLOY_DIR, 'instance-b')]));
    expect(second).toMatch(/daemonset\.apps\/chorus-kube-router-agent-b created/);
    expect(second).toMatch(/role\.rbac\.authorization\.k8s\.io\/chorus-kube-router-agent-b created/);
    expect(second).not.toMatch(/namespace\//);
    const firstAgain = (await versions()).split(' ').filter((v) => !/-b=/.test(v)).join(' ');
    expect(firstAgain).toBe(before);
    const agentB = JSON.parse(out(await kubectl(['get', 'daemonset', 'chorus-kube-router-agent-b', '-n', NS, '-o', 'json']))) as { spec: { selector: { matchLabels: Record<string, string> }; template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } } };
    expect(agentB.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'chorus-kube-router-agent', 'app.kubernetes.io/instance': 'b' });
    expect(agentB.spec.template.spec.containers[0]?.env.find((e) => e.name === 'CHORUS_INSTANCE')?.value).toBe('b');
  });

  it('strict field validation: an unknown field is refused, as kube-apiserver refuses it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubectl-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  namespace: chorus-system\ndata: {a: b}\nbogus: 1\n');
    const r = await kubectl(['apply', '-f', file], { reject: false });
    expect(r.exitCode).not.toBe(0);
    expect(String(r.stderr)).toMatch(/strict decoding error: unknown field "bogus"/);
    const ignored = await kubectl(['apply', '-f', file, '--validate=false']);
    expect(out(ignored)).toMatch(/configmap\/bad created/);
    await kubectl(['delete', '-f', file]);
  });

  it('patch (strategic merge): env, volumes and volumeMounts merge by key, tolerations are replaced', async () => {
    const patch = {
      spec: { template: { spec: {
        containers: [{ name: 'agent', env: [{ name: 'CHORUS_EXTRA', value: '1' }], volumeMounts: [{ name: 'extra', mountPath: '/extra' }] }],
        volumes: [{ name: 'extra', emptyDir: {} }],
        tolerations: [{ key: 'only', operator: 'Exists' }],
      } } },
    };
    type Pod = { containers: { name: string; env: { name: string }[]; volumeMounts: { mountPath: string }[] }[]; volumes: { name: string }[]; tolerations: unknown[] };
    const get = async (): Promise<Pod> => (JSON.parse(out(await kubectl(['get', 'daemonset', 'chorus-kube-router-agent', '-n', NS, '-o', 'json']))) as { spec: { template: { spec: Pod } } }).spec.template.spec;
    const before = await get();
    expect(out(await kubectl(['patch', 'daemonset', 'chorus-kube-router-agent', '-n', NS, '-p', JSON.stringify(patch)]))).toMatch(/patched/);
    const after = await get();
    expect(after.containers).toHaveLength(before.containers.length);
    const agent = (p: Pod): Pod['containers'][number] | undefined => p.containers.find((c) => c.name === 'agent');
    expect(agent(after)?.env.map((e) => e.name)).toEqual([...(agent(before)?.env ?? []).map((e) => e.name), 'CHORUS_EXTRA']);
    expect(agent(after)?.volumeMounts.map((m) => m.mountPath)).toEqual([...(agent(before)?.volumeMounts ?? []).map((m) => m.mountPath), '/extra']);
    expect(after.volumes.map((v) => v.name)).toEqual([...before.volumes.map((v) => v.name), 'extra']);
    expect(after.tolerations).toEqual([{ key: 'only', operator: 'Exists' }]);
    // a $patch: delete directive removes one element by its key
    await kubectl(['patch', 'daemonset', 'chorus-kube-router-agent', '-n', NS, '-p', JSON.stringify({ spec: { template: { spec: { containers: [{ name: 'agent', env: [{ name: 'CHORUS_EXTRA', $patch: 'delete' }] }] } } } })]);
    expect(agent(await get())?.env.map((e) => e.name)).toEqual(agent(before)?.env.map((e) => e.name));
  });

  it('kubectl create namespace, configmap and secret (protobuf bodies), as docs/install.md has operators run them', async () => {
    expect(out(await kubectl(['create', 'namespace', 'probe']))).toMatch(/namespace\/probe created/);
    await kubectl(['create', 'configmap', 'chorus-kube-router-device-ca', '-n', 'probe', '--from-literal=ca.crt=PEM']);
    await kubectl(['create', 'secret', 'generic', 'chorus-kube-router-device', '-n', 'probe', '--from-literal=username=chorus-kube-router', '--from-literal=password=s3cret']);
    expect((JSON.parse(out(await kubectl(['get', 'configmap', 'chorus-kube-router-device-ca', '-n', 'probe', '-o', 'json']))) as { data: unknown }).data).toEqual({ 'ca.crt': 'PEM' });
    const secret = JSON.parse(out(await kubectl(['get', 'secret', 'chorus-kube-router-device', '-n', 'probe', '-o', 'json']))) as { type: string; data: Record<string, string> };
    expect(secret.type).toBe('Opaque');
    expect(Buffer.from(secret.data.password ?? '', 'base64').toString()).toBe('s3cret');
    await kubectl(['delete', 'namespace', 'probe']);
  });

  it('delete: a server dry run keeps the object, a delete removes it', async () => {
    expect(out(await kubectl(['delete', 'daemonset', 'chorus-kube-router-agent', '-n', NS, '--dry-run=server']))).toMatch(/deleted \(server dry run\)/);
    expect(out(await kubectl(['get', 'daemonset', '-n', NS]))).toMatch(/chorus-kube-router-agent/);
    await kubectl(['delete', 'daemonset', 'chorus-kube-router-agent', '-n', NS]);
    const r = await kubectl(['get', 'daemonset', 'chorus-kube-router-agent', '-n', NS], { reject: false });
    expect(String(r.stderr)).toMatch(/NotFound.*daemonsets\.apps "chorus-kube-router-agent" not found/);
  });

  it('auth can-i answers from deploy/base/rbac.yaml for each ServiceAccount', async () => {
    const can = async (...args: string[]): Promise<string> => out(await kubectl(['auth', 'can-i', ...args], { reject: false }));
    expect(await can('list', 'nodes', `--as=${AGENT_SA}`)).toBe('yes');
    expect(await can('patch', 'nodes', `--as=${AGENT_SA}`)).toBe('no');
    expect(await can('watch', 'configmaps/chorus-kube-router-hub', '-n', NS, `--as=${AGENT_SA}`)).toBe('yes');
    expect(await can('watch', 'configmaps/other', '-n', NS, `--as=${AGENT_SA}`)).toBe('no');
    expect(await can('get', 'secrets', '-n', NS, '--as=system:serviceaccount:chorus-system:chorus-kube-router-coordinator')).toBe('no');
    expect(await can('update', 'leases/chorus-kube-router-coordinator', '-n', NS, '--as=system:serviceaccount:chorus-system:chorus-kube-router-coordinator')).toBe('yes');
    expect(await can('create', 'deployments', '-n', NS)).toBe('yes');
  });

  it('kubeconfig mode (`make run` with KUBECONFIG): a coordinator from the host joins the election over verified TLS', async () => {
    if (!doc) throw new Error('lab not up');
    const coordinator = spawn(CLI, ['coordinator', '--identity', 'from-host', '--health-listen', '127.0.0.1:0', '--lease-duration', '8s', '--renew-deadline', '5s', '--retry-period', '1s'], {
      env: { ...process.env, KUBECONFIG: doc.kubeconfig, CHORUS_OVERLAY_NETWORK: '198.18.16.0/20', CHORUS_DEVICE_VTEPS: '198.18.0.3' },
    });
    let log = '';
    coordinator.stdout.on('data', (d: Buffer) => { log += d.toString(); });
    coordinator.stderr.on('data', (d: Buffer) => { log += d.toString(); });
    try {
      await eventually('the coordinator reading the cluster', () => (log.includes('"msg":"pod CIDR source"') ? true : undefined), 20_000);
      const lease = JSON.parse(out(await kubectl(['get', 'lease', 'chorus-kube-router-coordinator', '-n', NS, '-o', 'json']))) as { spec: { holderIdentity: string } };
      expect(lease.spec.holderIdentity).toBe('coordinator-1');
    } finally {
      const exited = new Promise<number | null>((r) => coordinator.once('close', (code) => r(code)));
      coordinator.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
    expect(log).not.toMatch(/"level":50/);
    expect(log).not.toMatch(/certificate|self-signed|UNABLE_TO_VERIFY/i);
  });

  it('a component\'s own token outside its RBAC gets kube-apiserver\'s 403', async () => {
    if (!doc) throw new Error('lab not up');
    const token = readFileSync(join(doc.dir, 'serviceaccounts', 'agent', 'token'), 'utf8').trim();
    const r = await kubectl(['get', 'secrets', '-n', NS, `--token=${token}`], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toContain(`Error from server (Forbidden): secrets is forbidden: User "${AGENT_SA}" cannot list resource "secrets" in API group "" in the namespace "chorus-system"`);
    // what it is granted works with the same token
    expect(out(await kubectl(['get', 'nodes', `--token=${token}`]))).toMatch(/node-1/);
  });

  it('the coordinator\'s own token may set its annotations on a Node, and the admission policy refuses anything else', async () => {
    if (!doc) throw new Error('lab not up');
    // the coordinator's client (@kubernetes/client-node) with its own token: it patches Nodes and never gets them (kubectl patch needs get)
    const token = readFileSync(join(doc.dir, 'serviceaccounts', 'coordinator', 'token'), 'utf8').trim();
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigYaml(doc.apiServer.url, token, readFileSync(doc.apiServer.caFile)));
    const asCoordinator = kc.makeApiClient(CoreV1Api);
    const overlayIP = out(await kubectl(['get', 'node', 'node-1', '-o', 'jsonpath={.metadata.annotations.kube-router\\.chorus\\.io/overlay-ip}']));
    expect(overlayIP).toMatch(/^198\.18\.16\./);
    const patch = (metadata: Record<string, unknown>): Promise<unknown> => asCoordinator.patchNode({ name: 'node-1', body: { metadata } }, mergePatch());
    await patch({ annotations: { 'kube-router.chorus.io/overlay-ip': overlayIP } });
    const refused = async (metadata: Record<string, unknown>): Promise<{ code?: number; body?: string }> => patch(metadata).then(() => ({}), (err: unknown) => err as { code?: number; body?: string });
    const label = await refused({ labels: { team: 'x' } });
    expect(label.code).toBe(403);
    expect(String(label.body)).toContain("nodes \\\"node-1\\\" is forbidden: ValidatingAdmissionPolicy 'chorus-kube-router-coordinator-node-writes' with binding 'chorus-kube-router-coordinator-node-writes' denied request: the chorus-kube-router coordinator may not change a Node's labels");
    expect(String((await refused({ annotations: { 'example.com/x': 'y' } })).body)).toContain('may change only its own annotations on a Node');
    expect(out(await kubectl(['get', 'node', 'node-1', '-o', 'jsonpath={.metadata.labels.team}{.metadata.annotations.example\\.com/x}']))).toBe('');
    // the admin (kubectl) is not limited by it
    await kubectl(['label', 'node', 'node-1', 'team=x']);
    await kubectl(['label', 'node', 'node-1', 'team-']);
  });
});

if (!IS_ROOT) {
  describe(E2E_SKIP_REASON, () => {
    it.skip('kubectl against the lab', () => undefined);
  });
}
