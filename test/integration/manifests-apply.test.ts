// `kubectl apply -k deploy/` in miniature: every manifest of the install is created, in the
// kustomization's order, through @kubernetes/client-node's generic object API (which finds each
// kind's resource through discovery, as kubectl does) against the embedded API server, and
// reads back as written. A namespaced object before its Namespace, an unknown kind or a
// duplicate name would fail here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { startTestApiServer, type TestApiServer } from '../support/apiserver.ts';
import { installManifests, loadManifests } from '../support/manifests.ts';

let api: TestApiServer;
let client: KubernetesObjectApi;

beforeAll(async () => {
  api = await startTestApiServer();
  client = KubernetesObjectApi.makeApiClient(api.kubeConfig);
});

afterAll(async () => {
  await api.close();
});

const strip = ({ file: _file, ...o }: { file: string } & KubernetesObject): KubernetesObject => o;

describe('deploy/ applied to the embedded API server', () => {
  it('creates every object of the install in order, and each reads back as written', async () => {
    const manifests = installManifests();
    expect(manifests.length).toBeGreaterThanOrEqual(15);
    for (const m of manifests) {
      const created = await client.create(strip(m));
      expect(created.metadata?.name, `${m.kind} ${m.metadata.name}`).toBe(m.metadata.name);
    }
    for (const m of manifests) {
      const read = await client.read({ apiVersion: m.apiVersion, kind: m.kind, metadata: { name: m.metadata.name, ...(m.metadata.namespace ? { namespace: m.metadata.namespace } : {}) } });
      expect((read as unknown as { spec?: unknown }).spec).toEqual(m.spec);
    }
  });

  it('also takes the uninstall helpers and the Secret example', async () => {
    const extra = loadManifests().filter((m) => m.file.startsWith('uninstall/') || m.kind === 'Secret');
    expect(extra.length).toBe(3);
    for (const m of extra) await client.create(strip(m));
    const list = await client.list('batch/v1', 'Job', 'chorus-system');
    expect(list.items.map((j) => j.metadata?.name)).toEqual(['chorus-kube-router-device-teardown']);
  });
});
