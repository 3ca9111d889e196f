// The embedded API server as the real @kubernetes/client-node sees it.
import { get as httpsGet } from 'node:https';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CoreV1Api, CoordinationV1Api, PatchStrategy, setHeaderOptions, type V1ConfigMap } from '@kubernetes/client-node';
import { startCache } from '../../shared/kube/informer.ts';
import { silentLogger } from '../../shared/log.ts';
import { apiStatus } from '../../shared/errors.ts';
import { eventually, startTestApiServer, type TestApiServer } from '../support/apiserver.ts';

let api: TestApiServer;

/** One HTTPS request to the test server, verified with its CA. */
function request(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpsGet(api.url + path, { ca: api.ca, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

let core: CoreV1Api;
beforeEach(async () => {
  api = await startTestApiServer({ bookmarkIntervalMs: 200 });
  core = api.kubeConfig.makeApiClient(CoreV1Api);
});
afterEach(async () => {
  await api.close();
});

describe('embedded API server with @kubernetes/client-node', () => {
  it('rejects a request without the bearer token', async () => {
    const res = await request('/api/v1/nodes', {});
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
  });

  it('serves discovery like a real API server', async () => {
    const get = async (p: string): Promise<Record<string, unknown>> => JSON.parse((await request(p, { authorization: `Bearer ${api.token}` })).body) as Record<string, unknown>;
    expect(await get('/version')).toMatchObject({ major: '1' });
    expect(await get('/api')).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
    const groups = await get('/apis');
    expect(JSON.stringify(groups)).toContain('coordination.k8s.io/v1');
    const v1 = await get('/api/v1');
    const names = (v1.resources as { name: string }[]).map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(['nodes', 'nodes/status', 'configmaps', 'secrets', 'events', 'namespaces']));
    const coord = await get('/apis/coordination.k8s.io/v1');
    expect((coord.resources as { name: string }[]).map((r) => r.name)).toContain('leases');
  });

  it('creates, reads, CAS-updates and patches objects, with 409 on a stale write', async () => {
    const created = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'x' }, data: { a: '1' } } });
    expect(created.metadata?.resourceVersion).toBeTruthy();
    const updated = await core.replaceNamespacedConfigMap({ name: 'x', namespace: 'default', body: { ...created, data: { a: '2' } } });
    await expect(core.replaceNamespacedConfigMap({ name: 'x', namespace: 'default', body: { ...created, data: { a: '3' } } })).rejects.toSatisfy((e) => apiStatus(e) === 409);
    const merged = await core.patchNamespacedConfigMap({ name: 'x', namespace: 'default', body: { data: { b: '2' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect(merged.data).toEqual({ a: '2', b: '2' });
    const jsonPatched = await core.patchNamespacedConfigMap({ name: 'x', namespace: 'default', body: [{ op: 'remove', path: '/data/a' }] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
    expect(jsonPatched.data).toEqual({ b: '2' });
    expect(updated.metadata?.resourceVersion).not.toBe(jsonPatched.metadata?.resourceVersion);
    await expect(core.readNamespacedConfigMap({ name: 'nope', namespace: 'default' })).rejects.toSatisfy((e) => apiStatus(e) === 404);
  });

  it('selects by label and by metadata.name', async () => {
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'a', labels: { t: 'peers' } } } });
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'b' } } });
    expect((await core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 't=peers' })).items.map((c) => c.metadata?.name)).toEqual(['a']);
    expect((await core.listNamespacedConfigMap({ namespace: 'default', fieldSelector: 'metadata.name=b' })).items.map((c) => c.metadata?.name)).toEqual(['b']);
  });

  it('feeds a client-node informer, which re-lists after a 410 from a compacted history', async () => {
    let changes = 0;
    const cache = startCache<V1ConfigMap>({
      kubeConfig: api.kubeConfig, path: '/api/v1/namespaces/default/configmaps', log: silentLogger(),
      list: () => core.listNamespacedConfigMap({ namespace: 'default' }), onChange: () => { changes++; },
    });
    await cache.synced;
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'w1' } } });
    await eventually('informer sees w1', () => cache.get('w1', 'default'));
    // drop the watch and compact: the informer's resume fails with 410 and it must re-list
    api.server.store.compact();
    await api.close();
    const again = api.server;
    await again.listen('127.0.0.1', Number(new URL(api.url).port));
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'w2' } } });
    await core.deleteNamespacedConfigMap({ name: 'w1', namespace: 'default' });
    await eventually('informer sees w2 and not w1', () => (cache.get('w2', 'default') && !cache.get('w1', 'default') ? true : undefined), 30_000);
    expect(changes).toBeGreaterThan(0);
    await cache.stop();
  });

  it('stores Leases with coordination.k8s.io semantics (CAS on renew)', async () => {
    const coord = api.kubeConfig.makeApiClient(CoordinationV1Api);
    const lease = await coord.createNamespacedLease({ namespace: 'default', body: { metadata: { name: 'l' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } } });
    await coord.replaceNamespacedLease({ name: 'l', namespace: 'default', body: { ...lease, spec: { ...lease.spec, holderIdentity: 'b' } } });
    await expect(coord.replaceNamespacedLease({ name: 'l', namespace: 'default', body: { ...lease, spec: { ...lease.spec, holderIdentity: 'c' } } })).rejects.toSatisfy((e) => apiStatus(e) === 409);
    expect((await coord.readNamespacedLease({ name: 'l', namespace: 'default' })).spec?.holderIdentity).toBe('b');
  });
});
