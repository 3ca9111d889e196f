// The iControl REST emulator over HTTPS, pinned to what BIG-IP documents and what F5's own clients
// expect (shared/reference/f5-icontrol.md; F5's f5-sdk and f5-icontrol-rest-python; captures in
// F5's k8s-bigip-ctlr issues). Each case names its source; what no source confirms is marked so in
// the emulator and in docs/f5.md.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import type { IControlEmulator } from '../emulators/icontrol/server.ts';
import { F5_PASSWORD, F5_USER, startIControlEmulator } from '../support/icontrol.ts';

let emulator: IControlEmulator;
let url: string;
let ca: Buffer;
let token = '';

type Json = Record<string, unknown>;

function send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, ca, headers: { 'Content-Type': 'application/json', ...(token ? { 'X-F5-Auth-Token': token } : {}), ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) as Json : {} }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

beforeAll(async () => {
  let caFile: string;
  ({ emulator, url, caFile } = await startIControlEmulator());
  ca = readFileSync(caFile);
  const login = await send('POST', '/mgmt/shared/authn/login', { username: F5_USER, password: F5_PASSWORD, loginProviderName: 'tmos' });
  token = String((login.body.token as Json).token);
});

afterAll(async () => {
  await emulator.close();
});

describe('iControl REST emulator, as a BIG-IP answers', () => {
  it('answers the probes every SDK makes first: GET /mgmt/tm/sys/, sys/version, sys/folder, auth/partition, the token list', async () => {
    // f5-sdk's ManagementRoot reads /mgmt/tm/sys/ (with the trailing slash) for the TMOS version
    const sys = await send('GET', '/mgmt/tm/sys/');
    expect(sys.status).toBe(200);
    expect(sys.body.kind).toBe('tm:sys:syscollectionstate');
    expect(String(sys.body.selfLink)).toMatch(/\?ver=17\.1\.0$/);
    const version = await send('GET', '/mgmt/tm/sys/version');
    const entries = Object.values(version.body.entries as Json)[0] as { nestedStats: { entries: Record<string, { description: string }> } };
    expect(entries.nestedStats.entries.Version?.description).toBe('17.1.0');
    expect(entries.nestedStats.entries.Product?.description).toBe('BIG-IP');
    expect(((await send('GET', '/mgmt/tm/sys/folder')).body.items as Json[]).map((f) => f.fullPath)).toEqual(['/', '/Common']);
    expect(((await send('GET', '/mgmt/tm/auth/partition')).body.items as Json[]).map((p) => p.name)).toEqual(['Common']);
    expect(((await send('GET', '/mgmt/shared/authz/tokens')).body.items as Json[]).map((t) => t.token)).toContain(token);
  });

  it('treats a collection URI with a trailing slash as the collection', async () => {
    const a = await send('GET', '/mgmt/tm/net/tunnels/vxlan');
    const b = await send('GET', '/mgmt/tm/net/tunnels/vxlan/');
    expect(b.status).toBe(200);
    expect(b.body.items).toEqual(a.body.items);
  });

  it('transactions: selfLink on creation, queued requests answered with their command object, empty commits refused, validateOnly applies nothing', async () => {
    // reference: POST /mgmt/tm/transaction returns transId; queued calls carry X-F5-REST-Coordination-Id; PATCH {state: VALIDATING} commits
    const t = await send('POST', '/mgmt/tm/transaction', {});
    expect(t.body).toMatchObject({ state: 'STARTED', kind: 'tm:transactionstate' });
    const id = String(t.body.transId);
    expect(t.body.selfLink).toBe(`https://localhost/mgmt/tm/transaction/${id}?ver=17.1.0`);
    // an empty commit is refused (400, nothing to commit)
    const empty = await send('PATCH', `/mgmt/tm/transaction/${id}`, { state: 'VALIDATING' });
    expect(empty.status).toBe(400);
    expect(String(empty.body.message)).toMatch(/nothing to commit/);
    const t2 = String((await send('POST', '/mgmt/tm/transaction', {})).body.transId);
    const queued = await send('POST', '/mgmt/tm/net/tunnels/vxlan', { name: 'tx-p', partition: 'Common', port: 4789 }, { 'X-F5-REST-Coordination-Id': t2 });
    expect(queued.body).toMatchObject({ method: 'POST', evalOrder: 1, commandId: 1, kind: 'tm:transaction:commandsstate', body: { name: 'tx-p' } });
    const validated = await send('PATCH', `/mgmt/tm/transaction/${t2}`, { state: 'VALIDATING', validateOnly: true });
    expect(validated.status).toBe(200);
    expect((await send('GET', '/mgmt/tm/net/tunnels/vxlan/~Common~tx-p')).status).toBe(404);
    const committed = await send('PATCH', `/mgmt/tm/transaction/${t2}`, { state: 'VALIDATING' });
    expect(committed.body.state).toBe('COMPLETED');
    expect((await send('GET', '/mgmt/tm/net/tunnels/vxlan/~Common~tx-p')).status).toBe(200);
  });

  it('answers numbers as numbers (key, mtu) and states token times on its own clock', async () => {
    await send('POST', '/mgmt/tm/net/tunnels/tunnel', { name: 'num', partition: 'Common', key: 77, profile: '/Common/tx-p', localAddress: '198.18.0.3', mtu: 0 });
    const tunnel = await send('GET', '/mgmt/tm/net/tunnels/tunnel/~Common~num');
    expect(tunnel.body).toMatchObject({ key: 77, mtu: 0 });
    emulator.clockSkewMs = -30 * 60_000;
    const item = (await send('GET', `/mgmt/shared/authz/tokens/${token}`)).body;
    emulator.clockSkewMs = 0;
    const lifetime = (Number(item.expirationMicros) - Number(item.lastUpdateMicros)) / 1e6;
    expect(lifetime).toBeGreaterThan(1100);
    expect(lifetime).toBeLessThanOrEqual(1200);
    expect(Number(item.expirationMicros) / 1000).toBeLessThan(Date.now()); // its clock is 30 min behind ours
  });
});
