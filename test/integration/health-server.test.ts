/**
 * The probe servers every component runs (shared/health.ts), over real HTTP on loopback: the
 * answers the kubelet and Prometheus get, from servers built without fastify's schema compilers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startHealthServer, startStatusServer, type HealthServer, type HealthSource } from '../../shared/health.ts';

const servers: HealthServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function source(state: { notReady?: string; stuck?: string }): HealthSource {
  return {
    notReadyReason: () => state.notReady,
    notAliveReason: () => state.stuck,
    status: () => ({ node: 'node-1', peers: [{ name: 'node-2', vtep: '198.18.1.2' }] }),
    metricsText: () => Promise.resolve('# TYPE chorus_test_total counter\nchorus_test_total 3\n'),
  };
}

async function get(url: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

describe('probe servers', () => {
  it('answer /readyz and /healthz with the reason a component is not ready or stuck, then 200 once it is', async () => {
    const state: { notReady?: string; stuck?: string } = { notReady: 'hub info not read yet', stuck: 'reconcile loop silent for 300 s' };
    const s = await startHealthServer('127.0.0.1:0', source(state));
    servers.push(s);
    expect(await get(`${s.url}/readyz`)).toMatchObject({ status: 503, body: JSON.stringify({ status: 'not ready', reason: 'hub info not read yet' }) });
    for (const path of ['/healthz', '/livez']) {
      expect(await get(`${s.url}${path}`)).toMatchObject({ status: 503, body: JSON.stringify({ status: 'stuck', reason: 'reconcile loop silent for 300 s' }) });
    }
    delete state.notReady;
    delete state.stuck;
    expect(await get(`${s.url}/readyz`)).toMatchObject({ status: 200, body: JSON.stringify({ status: 'ready' }) });
    expect(await get(`${s.url}/healthz`)).toMatchObject({ status: 200, body: JSON.stringify({ status: 'ok' }) });
  });

  it('serves /metrics as Prometheus text, the component first, then the process series', async () => {
    const s = await startHealthServer('127.0.0.1:0', source({}));
    servers.push(s);
    const m = await get(`${s.url}/metrics`);
    expect(m.status).toBe(200);
    expect(m.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(m.body.startsWith('# TYPE chorus_test_total counter\nchorus_test_total 3\n')).toBe(true);
    expect(m.body).toMatch(/^process_resident_memory_bytes \d+/m);
  });

  it('serves /status as JSON on the health address unless told not to, and on a separate server otherwise', async () => {
    const withStatus = await startHealthServer('127.0.0.1:0', source({}));
    const without = await startHealthServer('127.0.0.1:0', source({}), { status: false });
    const apart = await startStatusServer('127.0.0.1:0', source({}));
    servers.push(withStatus, without);
    if (apart) servers.push(apart);
    const st = await get(`${withStatus.url}/status`);
    expect(st.status).toBe(200);
    expect(JSON.parse(st.body)).toEqual({ node: 'node-1', peers: [{ name: 'node-2', vtep: '198.18.1.2' }] });
    expect((await get(`${without.url}/status`)).status).toBe(404);
    expect(apart).toBeDefined();
    expect(JSON.parse((await get(`${apart?.url ?? ''}/status`)).body)).toEqual({ node: 'node-1', peers: [{ name: 'node-2', vtep: '198.18.1.2' }] });
    expect(await startStatusServer('off', source({}))).toBeUndefined();
  });

  it('refuses a listen address without a valid port, saying what it expected', async () => {
    await expect(startHealthServer('127.0.0.1:99999', source({}))).rejects.toThrow('listen address "127.0.0.1:99999": expected host:port with a port in 0..65535');
  });
});
