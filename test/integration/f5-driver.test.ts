// The F5 driver against the iControl REST emulator (HTTPS, tokens, transactions, partitions,
// faults), driven by a real coordinator and the embedded API server; the emulator's store and
// its record of calls are the evidence for what the driver sent.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CoreV1Api, type V1Node } from '@kubernetes/client-node';
import type { Coordinator } from '../../coordinator/coordinator.ts';
import { diffDevice } from '../../coordinator/drivers/driver.ts';
import type { F5Options } from '../../coordinator/drivers/f5/f5-driver.ts';
import type { IControlEmulator } from '../emulators/icontrol/server.ts';
import { eventually, startTestApiServer, type TestApiServer } from '../support/apiserver.ts';
import { AUTO_FROM_DEVICE, TEST_OVERLAY, nodeAt, publishedPaths, startCoordinator } from '../support/coordinator.ts';
import { f5JoinWrites, F5_PASSWORD, F5_USER, TEST_CLUSTER_ID, f5Driver, f5Writes, startIControlEmulator } from '../support/icontrol.ts';
import { DEVICE_STATUS_CLUSTER_KEY, DEVICE_STATUS_CONFIGMAP, HUB_CONFIGMAP } from '../../shared/keys.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI } from '../support/lab.ts';
import { capturingLogger } from '../support/nitro.ts';

let api: TestApiServer;
let core: CoreV1Api;
let emulator: IControlEmulator;
let url: string;
let caFile: string;
const running: Coordinator[] = [];
const logs = capturingLogger();
const OTHER = 'chorus-kube-router chorus-5000 cluster cluster-b: managed, do not edit';

function nodeBody(i: number, podCIDR = true): V1Node {
  return { metadata: { name: `node-${i}` }, spec: podCIDR ? { podCIDRs: [`198.19.${i}.0/24`] } : {}, status: { addresses: [{ type: 'InternalIP', address: `198.18.1.${i}` }] } };
}

function start(extra: Partial<F5Options> = {}, urls: string | string[] = url): Coordinator {
  const c = startCoordinator(api.kubeConfig, 'c1', TEST_OVERLAY, { driver: f5Driver(urls, caFile, logs.log, extra), clusterId: TEST_CLUSTER_ID, deviceResyncMs: 400, podCidrSource: 'node', log: logs.log });
  running.push(c);
  return c;
}

const MARK = 'chorus-kube-router chorus-4096 cluster cluster-a: managed, do not edit';
/** Names of this cluster's objects (our prefix and our marker). */
const ours = (collection: string): string[] => emulator.store.list(collection).filter((o) => String(o.name).startsWith('chorus-4096') && o.description === MARK).map((o) => String(o.name)).sort();
const routes = (): string[] => emulator.store.list('net/route').map((r) => `${String(r.network)} via ${String(r.gw ?? r.tmInterface)}`).sort();
const records = (): string[] => [...(emulator.store.records.get('/Common/chorus-4096') ?? new Map<string, string>())].map(([m, e]) => `${m} ${e}`).sort();
const deviceStatus = (c: Coordinator): { converged: boolean; lastError: string | null } => c.status().device as { converged: boolean; lastError: string | null };

async function converged(c: Coordinator, n: number): Promise<void> {
  await eventually(`${n} nodes on the BIG-IP`, () => (records().length === n && ours('net/route').length === n && deviceStatus(c).converged ? true : undefined), 20_000);
}

beforeEach(async () => {
  api = await startTestApiServer();
  core = api.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'chorus-system' } } });
  ({ emulator, url, caFile } = await startIControlEmulator());
  // another cluster (its own prefix and marker) and hand-made objects share the BIG-IP
  const s = emulator.store;
  s.create('net/tunnels/vxlan', { name: 'chorus-5000-vxlan', partition: 'Common', port: 4789, floodingType: 'none', description: OTHER });
  s.create('net/tunnels/tunnel', { name: 'chorus-5000', partition: 'Common', key: 5000, localAddress: '198.18.0.3', profile: '/Common/chorus-5000-vxlan', description: OTHER });
  s.create('net/self', { name: 'chorus-5000-self', partition: 'Common', address: '10.200.0.1/16', vlan: '/Common/chorus-5000', description: OTHER });
  s.create('net/arp', { name: 'chorus-5000-10.200.0.2', partition: 'Common', ipAddress: '10.200.0.2', macAddress: '02:00:00:00:00:02', description: OTHER });
  s.create('net/route', { name: 'chorus-5000-10.201.0.0_24', partition: 'Common', network: '10.201.0.0/24', gw: '10.200.0.2', description: OTHER });
  s.setFdbRecords('/Common/chorus-5000', [{ name: '02:00:00:00:00:02', endpoint: '10.0.0.2' }]);
  s.create('net/route', { name: 'hand-made', partition: 'Common', network: '192.0.2.0/24', gw: '198.18.0.1' });
  // named like ours but not marked as ours: never touched
  s.create('net/route', { name: 'chorus-4096-by-hand', partition: 'Common', network: '192.0.3.0/24', gw: '198.18.0.1', description: 'made by an operator' });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
  await emulator.close();
  await api.close();
});

function othersUntouched(): void {
  expect(routes()).toEqual(expect.arrayContaining(['10.201.0.0/24 via 10.200.0.2', '192.0.2.0/24 via 198.18.0.1', '192.0.3.0/24 via 198.18.0.1']));
  expect(emulator.store.get('net/route', '/Common/chorus-4096-by-hand').description).toBe('made by an operator');
  expect([...(emulator.store.records.get('/Common/chorus-5000') ?? [])]).toEqual([['02:00:00:00:00:02', '10.0.0.2%0']]);
  expect(emulator.store.list('net/self').map((x) => String(x.name))).toContain('chorus-5000-self');
}

describe('F5 driver with the iControl REST emulator', () => {
  it('programs profile, tunnel, self IP, FDB records, ARP and routes per node in one transaction, saves, and leaves others alone', async () => {
    for (let i = 1; i <= 3; i++) await core.createNode({ body: nodeBody(i) });
    const c = start();
    await converged(c, 3);
    const s = emulator.store;
    expect(s.get('net/tunnels/vxlan', '/Common/chorus-4096-vxlan')).toMatchObject({ port: 4789, floodingType: 'none', defaultsFrom: '/Common/vxlan' });
    expect(s.get('net/tunnels/tunnel', '/Common/chorus-4096')).toMatchObject({ key: 4096, localAddress: '198.18.0.3', profile: '/Common/chorus-4096-vxlan' });
    expect(s.get('net/self', '/Common/chorus-4096-self')).toMatchObject({ address: '198.18.16.1/20', vlan: '/Common/chorus-4096', allowService: 'none', trafficGroup: '/Common/traffic-group-local-only' });
    expect(records()).toEqual(['02:c4:c6:12:10:02 198.18.1.1%0', '02:c4:c6:12:10:03 198.18.1.2%0', '02:c4:c6:12:10:04 198.18.1.3%0']);
    expect(s.get('net/arp', '/Common/chorus-4096-198.18.16.2')).toMatchObject({ ipAddress: '198.18.16.2', macAddress: '02:c4:c6:12:10:02' });
    expect(routes()).toContain('198.19.1.0/24 via 198.18.16.2');
    expect(ours('net/arp')).toEqual(['chorus-4096-198.18.16.2', 'chorus-4096-198.18.16.3', 'chorus-4096-198.18.16.4']);
    const committed = emulator.calls.filter((x) => x.method === 'PATCH' && x.path.startsWith('/mgmt/tm/transaction/') && x.status === 200);
    expect(committed).toHaveLength(1);
    expect(emulator.calls.filter((x) => x.method === 'PUT' && x.path.includes('/net/fdb/tunnel/'))).toHaveLength(1);
    await eventually('config saved', () => (s.saves > 0 ? true : undefined));
    othersUntouched();
  });

  it('makes zero write calls on a steady-state resync; a join is one small transaction and a leave another', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const c = start();
    await converged(c, 2);
    await eventually('saved', () => (emulator.store.saves > 0 ? true : undefined));
    const before = emulator.calls.length;
    await eventually('two resyncs', () => (emulator.calls.slice(before).filter((x) => x.path === '/mgmt/tm/cm/failover-status').length >= 2 ? true : undefined), 10_000);
    expect(emulator.calls.slice(before).filter((x) => x.write)).toEqual([]);
    expect(emulator.calls.slice(before).some((x) => x.method === 'GET' && x.path === '/mgmt/tm/net/route')).toBe(true);
    const mark = emulator.calls.length;
    await core.createNode({ body: nodeBody(3) });
    await converged(c, 3);
    await eventually('saved again', () => (emulator.calls.slice(mark).some((x) => x.path === '/mgmt/tm/sys/config') ? true : undefined));
    expect(f5Writes(emulator.calls.slice(mark))).toEqual(f5JoinWrites(4096));
    const leaveMark = emulator.calls.length;
    await core.deleteNode({ name: 'node-3' });
    await converged(c, 2);
    await eventually('saved after leave', () => (emulator.calls.slice(leaveMark).some((x) => x.path === '/mgmt/tm/sys/config') ? true : undefined));
    expect(emulator.calls.slice(leaveMark).filter((x) => x.write).length).toBe(6);
    expect(ours('net/arp')).not.toContain('chorus-4096-198.18.16.4');
  });

  it('reports an object of our name that is not ours, never adopts or changes it, and serves every node it can', async () => {
    emulator.store.create('net/arp', { name: 'chorus-4096-198.18.16.2', partition: 'Common', ipAddress: '198.18.16.2', macAddress: '02:00:00:00:00:99' });
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const c = start();
    const err = await eventually('the conflict reported', () => deviceStatus(c).lastError ?? undefined, 20_000);
    expect(err).toMatch(/arp chorus-4096-198\.18\.16\.2 exists on the BIG-IP but is not marked as this cluster's.*delete or rename it/);
    await eventually('the other node served', () => (routes().includes('198.19.2.0/24 via 198.18.16.3') && routes().includes('198.19.1.0/24 via 198.18.16.2') ? true : undefined));
    expect(emulator.store.get('net/arp', '/Common/chorus-4096-198.18.16.2')).toMatchObject({ macAddress: '02:00:00:00:00:99' });
    expect(emulator.store.get('net/arp', '/Common/chorus-4096-198.18.16.2').description).toBeUndefined();
    const event = await eventually('an Event on the node', async () => (await core.listNamespacedEvent({ namespace: 'default' })).items.find((e) => e.reason === 'DeviceProgrammingFailed' && e.involvedObject.name === 'node-1'));
    expect(event.message).toMatch(/not marked as this cluster's/);
    // and `chorus-kube-router status` can tell: the device status ConfigMap names the failure
    const device = await eventually('device status published', async () => {
      const cm = await core.readNamespacedConfigMap({ name: 'chorus-kube-router-device', namespace: 'chorus-system' }).catch(() => undefined);
      return cm?.data?.['node-1']?.startsWith('failed: ') ? cm.data : undefined;
    });
    expect(device).toMatchObject({ _device: 'f5', 'node-2': 'programmed', 'node-1': expect.stringMatching(/not marked as this cluster's/) });
    emulator.store.remove('net/arp', '/Common/chorus-4096-198.18.16.2'); // the operator clears it up
    await converged(c, 2);
    expect(ours('net/arp')).toEqual(['chorus-4096-198.18.16.2', 'chorus-4096-198.18.16.3']);
    await eventually('node-1 reported programmed', async () => ((await core.readNamespacedConfigMap({ name: 'chorus-kube-router-device', namespace: 'chorus-system' })).data?.['node-1'] === 'programmed' ? true : undefined));
  });

  it('converges through 5xx bursts, a hung request and expired tokens', async () => {
    for (let i = 1; i <= 3; i++) await core.createNode({ body: nodeBody(i) });
    emulator.failNext(4);
    const c = start();
    await converged(c, 3);
    emulator.expireTokens();
    emulator.hangNext(1);
    await core.createNode({ body: nodeBody(4) });
    await converged(c, 4);
    expect(emulator.calls.filter((x) => x.status === 500).length).toBe(4);
    expect(emulator.calls.some((x) => x.status === 401)).toBe(true);
    expect(emulator.calls.filter((x) => x.path === '/mgmt/shared/authn/login').length).toBeGreaterThanOrEqual(2);
    othersUntouched();
  });

  it('an iControl error body under a 200 is the error it states: never taken for success, no node shown programmed', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    // a proxy (or a unit in trouble) answers 200 with iControl's error shape, to reads and writes alike
    const body = { code: 400, message: '01070734:3: Configuration error: injected under HTTP 200', errorStack: [], apiError: 3 };
    emulator.answerNext(1_000, 200, body);
    const c = start();
    const reason = await eventually('the error reported', () => deviceStatus(c).lastError ?? undefined);
    expect(reason).toContain('01070734:3: Configuration error: injected under HTTP 200');
    expect(reason).toContain('(HTTP 400)');
    expect(deviceStatus(c).converged).toBe(false);
    const status = await core.readNamespacedConfigMap({ name: DEVICE_STATUS_CONFIGMAP, namespace: 'chorus-system' }).catch(() => undefined);
    expect(Object.values(status?.data ?? {}).filter((v) => v === 'programmed')).toEqual([]);
    expect(ours('net/tunnels/tunnel')).toEqual([]);
    // the device answers properly again: the loop's retry converges
    emulator.answerNext(0, 200, {});
    await converged(c, 2);
  });

  it('puts back an object changed or deleted by hand at the next resync', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const c = start();
    await converged(c, 2);
    emulator.store.modify('net/arp', '/Common/chorus-4096-198.18.16.2', { macAddress: '02:de:ad:be:ef:00' }, false);
    emulator.store.remove('net/route', '/Common/chorus-4096-198.19.2.0_24');
    emulator.store.setFdbRecords('/Common/chorus-4096', [{ name: '02:c4:c6:12:10:02', endpoint: '198.18.9.9' }]);
    await eventually('repaired', () => {
      const arp = emulator.store.get('net/arp', '/Common/chorus-4096-198.18.16.2');
      return arp.macAddress === '02:c4:c6:12:10:02' && routes().includes('198.19.2.0/24 via 198.18.16.3') && records().join() === '02:c4:c6:12:10:02 198.18.1.1%0,02:c4:c6:12:10:03 198.18.1.2%0' ? true : undefined;
    });
  });

  it('skips the route of a node without a pod CIDR with an Event, and serves the others', async () => {
    await core.createNode({ body: nodeBody(1) });
    await core.createNode({ body: nodeBody(2, false) });
    const c = start();
    await eventually('node-1 routed and node-2 in the FDB', () => (routes().includes('198.19.1.0/24 via 198.18.16.2') && records().length === 2 && deviceStatus(c).converged ? true : undefined), 20_000);
    expect(ours('net/route')).toEqual(['chorus-4096-198.19.1.0_24']);
    const events = await eventually('PodCIDRMissing event', async () => {
      const list = await core.listNamespacedEvent({ namespace: 'default' });
      return list.items.find((e) => e.reason === 'PodCIDRMissing' && e.involvedObject.name === 'node-2');
    });
    expect(events.message).toMatch(/no pod CIDR known yet/);
    await core.patchNode({ name: 'node-2', body: [{ op: 'add', path: '/spec/podCIDRs', value: ['198.19.2.0/24'] }] });
    await eventually('node-2 routed once it has a pod CIDR', () => (routes().includes('198.19.2.0/24 via 198.18.16.3') ? true : undefined));
  });

  it('uses the ACTIVE unit of an HA pair, never writes to a STANDBY one, and says so when no unit is active', async () => {
    const second = await startIControlEmulator();
    try {
      emulator.standby = true;
      await core.createNode({ body: nodeBody(1) });
      const c = start({}, [url, second.url]);
      await eventually('programmed on the active unit', () => ((second.emulator.store.records.get('/Common/chorus-4096')?.size ?? 0) === 1 && deviceStatus(c).converged ? true : undefined), 20_000);
      expect(emulator.calls.filter((x) => x.write)).toEqual([]);
      second.emulator.standby = true;
      await core.createNode({ body: nodeBody(2) });
      const err = await eventually('no active unit', () => deviceStatus(c).lastError ?? undefined);
      expect(err).toMatch(/no ACTIVE BIG-IP unit.*every unit given is STANDBY/);
    } finally {
      await second.emulator.close();
    }
  });

  it('routes via the tunnel interface when asked, with a multipoint profile and no ARP entries', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const c = start({ routing: 'interface' });
    await converged(c, 2);
    expect(routes()).toContain('198.19.1.0/24 via /Common/chorus-4096');
    expect(ours('net/arp')).toEqual([]);
    expect(emulator.store.get('net/tunnels/vxlan', '/Common/chorus-4096-vxlan').floodingType).toBe('multipoint');
  });

  for (const tmos of ['12.1.0', '14.1.0', '17.1.0']) {
    it(`on TMOS ${tmos} (FDB records ${Number.parseInt(tmos, 10) >= 14 ? 'a sub-collection' : 'inline'}): a converged BIG-IP sees zero writes over three resyncs`, async () => {
      emulator.tmosVersion = tmos;
      for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
      const c = start();
      await converged(c, 2);
      await eventually('saved', () => (emulator.store.saves > 0 ? true : undefined));
      const before = emulator.calls.length;
      const observes = (): number => emulator.calls.slice(before).filter((x) => x.path === '/mgmt/tm/cm/failover-status').length;
      await eventually('three resyncs', () => (observes() >= 3 ? true : undefined), 10_000);
      expect(emulator.calls.slice(before).filter((x) => x.write)).toEqual([]);
      expect(records()).toHaveLength(2);
    });
  }

  for (const skewMin of [-30, 30]) {
    it(`with the BIG-IP clock ${Math.abs(skewMin)} min ${skewMin < 0 ? 'behind' : 'ahead'}: one login for the token's lifetime, however many requests`, async () => {
      emulator.clockSkewMs = skewMin * 60_000;
      for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
      const c = start();
      await converged(c, 2);
      const requests = (): number => emulator.calls.filter((x) => x.path.startsWith('/mgmt/tm/')).length;
      const seen = requests();
      await eventually('many more requests (resyncs)', () => (requests() >= seen + 30 ? true : undefined), 15_000);
      expect(emulator.logins).toBe(1);
      expect(emulator.liveTokens()).toBe(1);
    });
  }

  it('a token replaced by a fresh login is released: the user never holds more than two', async () => {
    await emulator.close();
    ({ emulator, url } = await startIControlEmulator({ tokenTimeoutS: 10 }));
    const driver = f5Driver(url, caFile, logs.log, { renewBeforeMs: 9_500 });
    let most = 0;
    const sample = setInterval(() => { most = Math.max(most, emulator.liveTokens()); }, 5);
    try {
      await driver.observe();
      // the renewal (due 0.5 s after login) fails, so the driver logs in afresh while the old token still lives
      await new Promise((r) => setTimeout(r, 700));
      emulator.failNext(1);
      await driver.observe();
      expect(emulator.logins).toBe(2);
      expect(emulator.calls.some((x) => x.method === 'DELETE' && x.path.startsWith('/mgmt/shared/authz/tokens/') && x.status === 200)).toBe(true);
      expect(emulator.liveTokens()).toBe(1);
    } finally {
      clearInterval(sample);
      await driver.close();
    }
    expect(most).toBeLessThanOrEqual(2);
    expect(emulator.liveTokens()).toBe(0);
  });

  it('writes an unchanged allow-service list (given in any order) never again', async () => {
    emulator.store.partitions.add('Common');
    await core.createNode({ body: nodeBody(1) });
    const c = start({ allowService: 'udp:53,tcp:443' });
    await converged(c, 1);
    expect(emulator.store.get('net/self', '/Common/chorus-4096-self').allowService).toEqual(['tcp:443', 'udp:53']);
    await eventually('saved', () => (emulator.store.saves > 0 ? true : undefined));
    const before = emulator.calls.length;
    await eventually('two resyncs', () => (emulator.calls.slice(before).filter((x) => x.path === '/mgmt/tm/cm/failover-status').length >= 2 ? true : undefined), 10_000);
    expect(emulator.calls.slice(before).filter((x) => x.write)).toEqual([]);
  });

  it('works with HTTP Basic, renews tokens before they expire, and releases its token on close', async () => {
    await emulator.close();
    ({ emulator, url } = await startIControlEmulator({ tokenTimeoutS: 3 }));
    await core.createNode({ body: nodeBody(1) });
    const driver = f5Driver(url, caFile, logs.log, { renewBeforeMs: 2_500 });
    const desired = driver.desired({ hub: { vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.16.1'] }, peers: [], shards: new Map(), problems: [], incomplete: [], capacity: 1, ipv6NotRouted: [] });
    expect(await driver.apply(diffDevice(desired, await driver.observe()), () => desired)).toEqual([]);
    await new Promise((r) => setTimeout(r, 700));
    await driver.observe();
    expect(driver.client.renewals).toBeGreaterThanOrEqual(1);
    expect(emulator.activeTokens()).toBe(1);
    await driver.close();
    expect(emulator.activeTokens()).toBe(0);
    const basic = f5Driver(url, caFile, logs.log, { auth: 'basic' });
    expect((await basic.observe()).map((e) => e.kind).sort()).toEqual(['profile', 'self', 'tunnel']);
    await basic.close();
    expect(emulator.calls.filter((x) => x.path === '/mgmt/shared/authn/login')).toHaveLength(1);
  });

  it('never puts the password or a token in logs, /status or errors', async () => {
    await core.createNode({ body: nodeBody(1) });
    emulator.failNext(2);
    const c = start();
    await converged(c, 1);
    const bad = f5Driver(url, caFile, logs.log, { password: 'wrong-password' });
    const err = await bad.observe().then(() => undefined, (e: unknown) => (e instanceof Error ? e.message : String(e)));
    expect(err).toMatch(/login: Authentication failed\. \(HTTP 401\): wrong username or password/);
    expect(err).not.toContain('wrong-password');
    await bad.close();
    const text = [logs.lines.join('\n'), JSON.stringify(c.status()), await c.metricsText()].join('\n');
    expect(text).not.toContain(F5_PASSWORD);
    expect(text).not.toMatch(/X-F5-Auth-Token"?\s*[:=]\s*"?[A-Z0-9_-]{10,}/);
  });

  it('the emulator applies a transaction all or nothing, with the device\'s error shape', async () => {
    const { IControlClient } = await import('../../coordinator/drivers/f5/icontrol-client.ts');
    const client = new IControlClient({ baseURL: url, caFile, username: 'chorus', password: F5_PASSWORD, auth: 'token' });
    const t = await client.send('POST', '/mgmt/tm/transaction', {});
    const header = { 'X-F5-REST-Coordination-Id': String(t.body.transId) };
    expect((await client.send('POST', '/mgmt/tm/net/route', { name: 'tx-ok', network: '203.0.113.0/24', gw: '198.18.0.1' }, header)).status).toBe(200);
    expect((await client.send('POST', '/mgmt/tm/net/route', { name: 'hand-made', network: '192.0.2.0/24', gw: '198.18.0.1' }, header)).status).toBe(200);
    expect(emulator.store.list('net/route').map((r) => r.name)).not.toContain('tx-ok'); // queued, not applied
    const commit = await client.send('PATCH', `/mgmt/tm/transaction/${String(t.body.transId)}`, { state: 'VALIDATING' });
    expect(commit.status).toBe(400);
    expect(commit.body).toMatchObject({ code: 400, message: expect.stringMatching(/transaction failed: command 2 .*already exists in partition Common/), errorStack: [] });
    expect(emulator.store.list('net/route').map((r) => r.name)).not.toContain('tx-ok');
    await client.close();
  });

  for (const routing of ['gateway', 'interface'] as const) {
    it(`in a dual-stack overlay (${routing} routing) adds an IPv6 self IP, ${routing === 'gateway' ? 'an NDP entry per node and ' : ''}an IPv6 route per IPv6 pod CIDR, writes nothing at steady state, and tears them down`, async () => {
      const dual = { ...TEST_OVERLAY, overlayNetworkIPv6: 'fd00:c0::/64' };
      for (let i = 1; i <= 2; i++) await core.createNode({ body: { ...nodeBody(i), spec: { podCIDRs: [`198.19.${i}.0/24`, `fd00:19:${i}::/64`] } } });
      const c = startCoordinator(api.kubeConfig, 'c1', dual, { driver: f5Driver(url, caFile, logs.log, { routing, overlayNetworkIPv6: dual.overlayNetworkIPv6 }), clusterId: TEST_CLUSTER_ID, deviceResyncMs: 400, podCidrSource: 'node', log: logs.log });
      running.push(c);
      const s = emulator.store;
      await eventually('2 nodes on the BIG-IP over both families', () => (records().length === 2 && ours('net/route').length === 4 && deviceStatus(c).converged ? true : undefined), 20_000);
      expect(s.get('net/self', '/Common/chorus-4096-self6')).toMatchObject({ address: 'fd00:c0::1/64', vlan: '/Common/chorus-4096', allowService: 'none' });
      const via = (ip: string): string => (routing === 'gateway' ? ip : '/Common/chorus-4096');
      expect(routes()).toEqual(expect.arrayContaining([`fd00:19:1::/64 via ${via('fd00:c0::2')}`, `fd00:19:2::/64 via ${via('fd00:c0::3')}`]));
      expect(ours('net/ndp')).toEqual(routing === 'gateway' ? ['chorus-4096-fd00-c0--2', 'chorus-4096-fd00-c0--3'] : []);
      if (routing === 'gateway') expect(s.get('net/ndp', '/Common/chorus-4096-fd00-c0--2')).toMatchObject({ ipAddress: 'fd00:c0::2', macAddress: '02:c4:c6:12:10:02' });
      await eventually('saved', () => (s.saves > 0 ? true : undefined));
      const before = emulator.calls.length;
      await eventually('two resyncs', () => (emulator.calls.slice(before).filter((x) => x.path.startsWith('/mgmt/tm/net/ndp')).length >= 2 ? true : undefined), 10_000);
      expect(emulator.calls.slice(before).filter((x) => x.write).map((x) => `${x.method} ${x.path}`)).toEqual([]);
      await c.stop();
      running.splice(0);
      const driver = f5Driver(url, caFile, logs.log, { routing, overlayNetworkIPv6: dual.overlayNetworkIPv6 });
      expect(await driver.apply(diffDevice([], await driver.observe()), () => [])).toEqual([]);
      expect(await driver.observe()).toEqual([]);
      await driver.close();
      expect(ours('net/self')).toEqual([]);
      expect(ours('net/ndp')).toEqual([]);
      expect(ours('net/route')).toEqual([]);
      othersUntouched();
    });
  }

  it('teardown removes every object of this cluster, in an order the device accepts, and nothing else', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const c = start();
    await converged(c, 2);
    // the coordinator publishes the identity it marks objects with (the uninstall Job reads it)
    const published = await eventually('the cluster identity published', async () => (await core.readNamespacedConfigMap({ name: DEVICE_STATUS_CONFIGMAP, namespace: 'chorus-system' }).catch(() => undefined))?.data?.[DEVICE_STATUS_CLUSTER_KEY]);
    expect(published).toBe(TEST_CLUSTER_ID);
    const publishedVni = (await core.readNamespacedConfigMap({ name: HUB_CONFIGMAP, namespace: 'chorus-system' })).data?.vni;
    expect(publishedVni).toBe('4096');
    await c.stop();
    running.splice(0);
    const driver = f5Driver(url, caFile, logs.log);
    expect((await driver.observe()).length).toBe(3 + 2 * 3);
    await driver.close();
    // the command the uninstall Job runs, with the coordinator's own settings, no API token, and
    // the cluster identity the coordinator published in the device status ConfigMap
    const dir = mkdtempSync(join(tmpdir(), 'f5-teardown-'));
    writeFileSync(join(dir, 'username'), F5_USER);
    writeFileSync(join(dir, 'password'), F5_PASSWORD);
    const r = await execa(CLI, ['coordinator', 'teardown', '--device-type', 'f5', '--device-address', url, '--ca-file', caFile, '--credentials-dir', dir,
      '--overlay-network', '198.18.16.0/20', '--device-vtep', '198.18.0.3'], { reject: false, env: { CHORUS_CLUSTER_ID: published, CHORUS_VNI: publishedVni, KUBECONFIG: '/nonexistent' } });
    expect(r.exitCode).toBe(0);
    expect(String(r.stderr)).toMatch(/"removed":9,"failed":0/);
    expect(String(r.stdout) + String(r.stderr)).not.toContain(F5_PASSWORD);
    expect(ours('net/tunnels/tunnel')).toEqual([]);
    expect(ours('net/route')).toEqual([]);
    expect(emulator.store.list('net/route').map((r) => String(r.name))).toContain('chorus-4096-by-hand');
    othersUntouched();
  });
});

describe('F5 driver: --routing auto with the direct subnet read from the BIG-IP', () => {
  it('routes the nodes in the VTEP self IP\'s subnet directly and tunnels the rest; until the self IP can be read, each node keeps the path its Node records', async () => {
    await core.createNode({ body: nodeAt('far', '198.18.64.1', '198.19.64.0/24', 'direct') });
    await core.createNode({ body: nodeAt('near', '198.18.1.2', '198.19.1.0/24') });
    const c = startCoordinator(api.kubeConfig, 'c1', TEST_OVERLAY, { driver: f5Driver(url, caFile, logs.log), routing: AUTO_FROM_DEVICE, clusterId: TEST_CLUSTER_ID, deviceResyncMs: 400, podCidrSource: 'node', log: logs.log });
    running.push(c);
    // no self IP holds the VTEP address yet (only another cluster's tunnel self IP exists)
    await eventually('the paths published while the subnet is unknown', async () => {
      const paths = await publishedPaths(core);
      return paths.far === 'direct' && paths.near === 'vxlan' ? true : undefined;
    }, 10_000);
    await eventually('the reason logged', () => (logs.lines.some((l) => l.includes('cannot read the subnets of the device VTEPs') && l.includes('no self IP 198.18.0.3 (it has: 10.200.0.1/16')) ? true : undefined));
    expect(c.status().routing).toMatchObject({ mode: 'auto', directSubnets: null, directSubnetsFrom: 'device', pending: expect.stringContaining('no self IP 198.18.0.3') as unknown });
    // the operator adds the VTEP's self IP on the underlay VLAN, in route domain 0 written out
    emulator.store.create('net/self', { name: 'vtep', partition: 'Common', address: '198.18.0.3%0/20', vlan: '/Common/external' });
    await eventually('the paths the self IP\'s subnet 198.18.0.0/20 gives', async () => {
      const paths = await publishedPaths(core);
      return paths.far === 'vxlan' && paths.near === 'direct' ? true : undefined;
    }, 20_000);
    await eventually('the BIG-IP routes near directly and far through the overlay', () => {
      const ourRoutes = routes().filter((r) => r.startsWith('198.19.'));
      return ourRoutes.length === 2 && ourRoutes.includes('198.19.1.0/24 via 198.18.1.2') && /^198\.19\.64\.0\/24 via 198\.18\.16\.\d+$/.test(ourRoutes.find((r) => r.startsWith('198.19.64.')) ?? '') && records().length === 1 && deviceStatus(c).converged ? true : undefined;
    }, 20_000);
    expect(logs.lines.some((l) => l.includes('direct subnets read from the device') && l.includes('198.18.0.0/20'))).toBe(true);
    expect(c.status().routing).toEqual({ mode: 'auto', directSubnets: ['198.18.0.0/20'], directSubnetsFrom: 'device' });
    // steady state with both paths: resyncs (each reads the self IPs again) write nothing. The
    // debounced save comes after the last change: wait for it, not for any save
    await eventually('the save after the last change', () => (emulator.calls.filter((x) => x.write).at(-1)?.path === '/mgmt/tm/sys/config' ? true : undefined));
    const before = emulator.calls.length;
    await eventually('two resyncs', () => (emulator.calls.slice(before).filter((x) => x.path === '/mgmt/tm/cm/failover-status').length >= 2 ? true : undefined), 10_000);
    expect(emulator.calls.slice(before).filter((x) => x.write)).toEqual([]);
    expect(emulator.calls.slice(before).some((x) => x.method === 'GET' && x.path === '/mgmt/tm/net/self')).toBe(true);
  });
});
