// deploy/: every manifest validates against the Kubernetes API schema (the OpenAPI-generated
// validators of kubernetes-models), the kustomizations name files that exist, and the workloads
// keep the promises the README makes (least privilege, probes, limits, spread, PDB).
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { DEPLOY_DIR, installManifests, loadManifests, type Manifest } from '../support/manifests.ts';
import { restrictedViolations } from '../support/pod-security.ts';
import { DEVICE_STATUS_CLUSTER_KEY, DEVICE_STATUS_CONFIGMAP, HUB_CONFIGMAP } from '../../shared/keys.ts';

interface Validatable { validate(): void }
type ModelClass = new (data: unknown) => Validatable;

async function modelOf(m: Manifest): Promise<ModelClass> {
  // the Prometheus Operator's kinds from its own generated models, Kubernetes' from kubernetes-models
  const module = m.apiVersion.startsWith('monitoring.coreos.com/') ? `@kubernetes-models/prometheus-operator/${m.apiVersion}/${m.kind}` : `kubernetes-models/${m.apiVersion}/${m.kind}`;
  const exported = (await import(module)) as Record<string, unknown>;
  const cls = exported[m.kind];
  if (typeof cls !== 'function') throw new Error(`${m.file}: no schema for ${m.apiVersion} ${m.kind}`);
  return cls as ModelClass;
}

const all = loadManifests();
const byKind = (kind: string, name: string): Manifest => {
  const m = all.find((x) => x.kind === kind && x.metadata.name === name);
  if (!m) throw new Error(`no ${kind} ${name} in deploy/`);
  return m;
};

interface Container { name: string; image?: string; resources?: { requests?: object; limits?: { memory?: string } }; readinessProbe?: object; livenessProbe?: object; securityContext?: { privileged?: boolean; capabilities?: { add?: string[]; drop?: string[] }; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean } }
interface PodSpec { containers: Container[]; initContainers?: Container[]; hostNetwork?: boolean; tolerations?: { operator?: string }[]; priorityClassName?: string; securityContext?: { runAsNonRoot?: boolean }; serviceAccountName?: string; topologySpreadConstraints?: object[] }
const podSpec = (m: Manifest): PodSpec => (m.spec as { template: { spec: PodSpec } }).template.spec;

describe('deploy/ manifests', () => {
  it('are all found', () => {
    expect(all.map((m) => `${m.kind}/${m.metadata.name}`)).toEqual(expect.arrayContaining([
      'Namespace/chorus-system', 'DaemonSet/chorus-kube-router-agent', 'Deployment/chorus-kube-router-coordinator', 'PodDisruptionBudget/chorus-kube-router-coordinator',
      'Job/chorus-kube-router-device-teardown', 'DaemonSet/chorus-kube-router-node-cleanup', 'Secret/chorus-kube-router-device',
    ]));
  });

  it.each(all.map((m) => [`${m.file}: ${m.kind} ${m.metadata.name}`, m] as const))('%s validates against the Kubernetes API schema', async (_name, m) => {
    const Model = await modelOf(m);
    const { file: _file, ...object } = m;
    expect(() => new Model(object).validate()).not.toThrow();
  });

  it('rejects a broken manifest (the validation is real)', async () => {
    const agent = byKind('DaemonSet', 'chorus-kube-router-agent');
    const Model = await modelOf(agent);
    const { file: _file, ...object } = agent;
    const broken = structuredClone(object) as unknown as { spec: { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } } };
    const c = broken.spec.template.spec.containers[0];
    if (c?.ports[0]) c.ports[0].containerPort = 'health';
    expect(() => new Model(broken).validate()).toThrow(/containerPort must be integer/);
  });

  it('the coordinator and the teardown Job meet Pod Security "restricted"; only the agent (and its node cleanup) need the privileged namespace, for the reasons the namespace states', () => {
    const spec = (kind: string, name: string): Record<string, unknown> => podSpec(byKind(kind, name)) as unknown as Record<string, unknown>;
    expect(restrictedViolations(spec('Deployment', 'chorus-kube-router-coordinator'))).toEqual([]);
    expect(restrictedViolations(spec('Job', 'chorus-kube-router-device-teardown'))).toEqual([]);
    expect(restrictedViolations(spec('DaemonSet', 'chorus-kube-router-agent'))).toEqual(['capabilities added: NET_ADMIN, NET_RAW', 'host namespaces', 'host ports', 'hostPath volumes', 'runAsNonRoot not set']);
    expect(restrictedViolations(spec('DaemonSet', 'chorus-kube-router-node-cleanup'))).toEqual(['capabilities added: NET_ADMIN', 'host namespaces', 'hostPath volumes', 'runAsNonRoot not set']);
    const ns = byKind('Namespace', 'chorus-system').metadata.labels ?? {};
    expect(ns['pod-security.kubernetes.io/enforce']).toBe('privileged');
  });

  it('the device-teardown Job runs without an API token and takes the cluster identity the coordinator publishes', () => {
    const job = byKind('Job', 'chorus-kube-router-device-teardown');
    const spec = podSpec(job) as PodSpec & { automountServiceAccountToken?: boolean; containers: (Container & { env?: { name: string; valueFrom?: { configMapKeyRef?: { name: string; key: string } } }[] })[] };
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.serviceAccountName).toBeUndefined();
    const env = spec.containers[0]?.env?.find((e) => e.name === 'CHORUS_CLUSTER_ID');
    expect(env?.valueFrom?.configMapKeyRef).toEqual({ name: DEVICE_STATUS_CONFIGMAP, key: DEVICE_STATUS_CLUSTER_KEY });
    // and the VNI the install publishes (which may be an earlier default the coordinator kept)
    expect(spec.containers[0]?.env?.find((e) => e.name === 'CHORUS_VNI')?.valueFrom?.configMapKeyRef).toEqual({ name: HUB_CONFIGMAP, key: 'vni' });
  });

  it('kustomizations list files that exist', () => {
    for (const dir of ['', 'uninstall']) {
      const k = load(readFileSync(join(DEPLOY_DIR, dir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
      for (const r of k.resources) expect(existsSync(join(DEPLOY_DIR, dir, r)), `${dir}/${r}`).toBe(true);
    }
    expect(installManifests().map((m) => m.kind)).not.toContain('Secret'); // the Secret is an example only
  });

  it('grants no wildcard anywhere', () => {
    for (const m of all.filter((x) => x.kind === 'Role' || x.kind === 'ClusterRole')) {
      for (const rule of (m.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[])) {
        expect([...rule.apiGroups, ...rule.resources, ...rule.verbs], `${m.kind} ${m.metadata.name}`).not.toContain('*');
      }
    }
  });

  it('runs the agent on every node with host network and only NET_ADMIN + NET_RAW, probes and limits', () => {
    const agent = byKind('DaemonSet', 'chorus-kube-router-agent');
    const spec = podSpec(agent);
    expect(spec.hostNetwork).toBe(true);
    expect(spec.priorityClassName).toBe('system-node-critical');
    expect(spec.tolerations).toEqual([{ operator: 'Exists' }]);
    const c = spec.containers[0];
    expect(c?.securityContext?.privileged).toBeUndefined();
    expect(c?.securityContext?.capabilities).toEqual({ drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] });
    expect(c?.readinessProbe).toMatchObject({ httpGet: { path: '/readyz' } });
    expect(c?.livenessProbe).toMatchObject({ httpGet: { path: '/livez' } });
    expect(c?.resources?.limits?.memory).toBeDefined();
    expect((agent.spec as { updateStrategy: unknown }).updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
  });

  it('runs 2 coordinators spread over nodes, non-root, read-only root filesystem, with probes and a PDB', () => {
    const d = byKind('Deployment', 'chorus-kube-router-coordinator');
    expect((d.spec as { replicas: number }).replicas).toBe(2);
    const spec = podSpec(d);
    expect(spec.securityContext?.runAsNonRoot).toBe(true);
    expect(spec.topologySpreadConstraints).toHaveLength(1);
    const c = spec.containers[0];
    expect(c?.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(c?.readinessProbe).toBeDefined();
    expect(c?.livenessProbe).toBeDefined();
    const pdb = byKind('PodDisruptionBudget', 'chorus-kube-router-coordinator');
    expect((pdb.spec as { selector: unknown }).selector).toEqual((d.spec as { selector: unknown }).selector);
  });

  it('uses images of this version, whose Dockerfiles exist', () => {
    const version = (JSON.parse(readFileSync(join(DEPLOY_DIR, '..', 'package.json'), 'utf8')) as { version: string }).version;
    for (const m of all.filter((x) => x.kind === 'DaemonSet' || x.kind === 'Deployment' || x.kind === 'Job')) {
      for (const c of [...podSpec(m).containers, ...(podSpec(m).initContainers ?? [])]) {
        const image = c.image ?? '';
        expect(image, `${m.metadata.name}/${c.name}`).toMatch(new RegExp(`^ghcr\\.io/chorus/chorus-kube-router-(agent|coordinator):${version.replace(/\./g, '\\.')}$`));
        expect(existsSync(join(DEPLOY_DIR, '..', `Dockerfile.${image.includes('-agent:') ? 'agent' : 'coordinator'}`))).toBe(true);
      }
    }
  });
});
