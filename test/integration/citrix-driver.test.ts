// The Citrix driver against the NITRO emulator (HTTPS, sessions, envelopes, bulk, faults),
// driven by a real coordinator and the embedded API server; the emulator's record of calls is
// the evidence for what the driver sent.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CoreV1Api, type V1Node } from '@kubernetes/client-node';
import type { Coordinator } from '../../coordinator/coordinator.ts';
import type { NitroEmulator } from '../emulators/nitro/server.ts';
import { eventually, startTestApiServer, type TestApiServer } from '../support/apiserver.ts';
import { AUTO_FROM_DEVICE, TEST_OVERLAY, nodeAt, publishedPaths, startCoordinator } from '../support/coordinator.ts';
import { NITRO_PASSWORD, capturingLogger, citrixDriver, startNitroEmulator } from '../support/nitro.ts';

let api: TestApiServer;
let core: CoreV1Api;
let emulator: NitroEmulator;
let url: string;
let caFile: string;
const running: Coordinator[] = [];
const logs = capturingLogger();

function nodeBody(i: number): V1Node {
  return { metadata: { name: `node-${i}` }, spec: { podCIDRs: [`198.19.${i}.0/24`] }, status: { addresses: [{ type: 'InternalIP', address: `198.18.1.${i}` }] } };
}

function start(extra = {}): Coordinator {
  const c = startCoordinator(api.kubeConfig, 'c1', TEST_OVERLAY, { driver: citrixDriver(url, caFile, logs.log, extra), deviceResyncMs: 400, podCidrSource: 'node', log: logs.log });
  running.push(c);
  return c;
}

/** The routes configured on the ADC (not its own DIRECT and default routes). */
const routes = (): string[] => emulator.store.configured('route').map((r) => `${String(r.network)}/${String(r.netmask)} via ${String(r.gateway)}`).sort();
const arps = (): number => emulator.store.configured('arp').filter((a) => String(a.vxlan) === '4096').length;

async function converged(c: Coordinator, n: number): Promise<void> {
  await eventually(`${n} nodes on the ADC`, () => (routes().filter((r) => r.includes('via 198.18.16.')).length === n && arps() === n && c.status().device && (c.status().device as { converged: boolean }).converged ? true : undefined), 20_000);
}

beforeEach(async () => {
  api = await startTestApiServer();
  core = api.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'chorus-system' } } });
  ({ emulator, url, caFile } = await startNitroEmulator());
  // what the operator prepares on a real ADC: the SNIP the VTEP is bound to
  emulator.store.add('nsip', { ipaddress: '198.18.0.3', netmask: '255.255.240.0', type: 'SNIP' });
  // another cluster and a hand-made route share the ADC
  emulator.store.add('vxlan', { id: 200, port: 4789 });
  emulator.store.add('nsip', { ipaddress: '10.200.0.1', netmask: '255.255.255.0', type: 'SNIP' });
  emulator.store.add('arp', { ipaddress: '10.200.0.2', mac: '02:00:00:00:00:02', vxlan: 200, vtep: '10.0.0.2' });
  emulator.store.add('route', { network: '10.201.0.0', netmask: '255.255.255.0', gateway: '10.200.0.2' });
  emulator.store.add('route', { network: '192.0.2.0', netmask: '255.255.255.0', gateway: '198.18.0.1' });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
  await emulator.close();
  await api.close();
});

describe('Citrix driver with the NITRO emulator', () => {
  it('programs vxlan, binding, SNIP, a route and an arp per node, saves the config, and leaves others alone', async () => {
    for (let i = 1; i <= 3; i++) await core.createNode({ body: nodeBody(i) });
    const c = start();
    await converged(c, 3);
    expect(emulator.store.list('vxlan').map((v) => v.id).sort()).toEqual([200, 4096]);
    expect(emulator.store.list('vxlan_srcip_binding')).toEqual([{ id: 4096, srcip: '198.18.0.3' }]);
    expect(emulator.store.configured('nsip').map((n) => n.ipaddress).sort()).toEqual(['10.200.0.1', '198.18.0.3', '198.18.16.1']);
    expect(routes()).toContain('198.19.1.0/255.255.255.0 via 198.18.16.2');
    expect(routes()).toContain('10.201.0.0/255.255.255.0 via 10.200.0.2');
    expect(routes()).toContain('192.0.2.0/255.255.255.0 via 198.18.0.1');
    expect(emulator.store.list('arp').find((a) => a.ipaddress === '10.200.0.2')).toBeDefined();
    await eventually('config saved', () => (emulator.store.saves > 0 ? true : undefined));
  });

  it('makes zero write calls on a steady-state resync, and a node join costs a few', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const c = start();
    await converged(c, 2);
    await eventually('the save after the initial sync', () => (emulator.store.saves > 0 ? true : undefined));
    const writesBefore = emulator.writes().length;
    const observes = (): number => emulator.calls.filter((x) => x.resource === 'hanode').length;
    const seen = observes();
    await eventually('two resyncs', () => (observes() >= seen + 2 ? true : undefined), 10_000);
    expect(emulator.writes().length).toBe(writesBefore);
    await core.createNode({ body: nodeBody(3) });
    await converged(c, 3);
    const written = (): string[] => emulator.writes().slice(writesBefore).map((w) => `${w.method} ${w.resource}${w.action ? `?${w.action}` : ''}`);
    const joinWrites = await eventually('the save after the join', () => (written().includes('POST nsconfig?save') ? written() : undefined));
    expect(joinWrites).toEqual(['POST arp', 'POST route', 'POST nsconfig?save']);
  });

  it('uses bulk requests for a large initial sync', async () => {
    for (let i = 1; i <= 60; i++) await core.createNode({ body: nodeBody(i) });
    const c = start();
    await converged(c, 60);
    const adds = emulator.writes().filter((w) => w.method === 'POST' && (w.resource === 'route' || w.resource === 'arp'));
    expect(adds.map((a) => a.items).sort()).toEqual([60, 60]);
  });

  it('converges through 5xx bursts, a hung request, an expired session and objects that already exist', async () => {
    emulator.store.add('vxlan', { id: 4096, port: 4789 }); // made by hand already: 409 on add is fine
    for (let i = 1; i <= 3; i++) await core.createNode({ body: nodeBody(i) });
    emulator.failNext(4);
    const c = start();
    await converged(c, 3);
    emulator.expireSessions();
    emulator.hangNext(1);
    await core.createNode({ body: nodeBody(4) });
    await converged(c, 4);
    expect(emulator.calls.some((x) => x.errorcode === 444)).toBe(true);
    expect(emulator.calls.filter((x) => x.resource === 'login').length).toBeGreaterThanOrEqual(2);
    expect(emulator.store.list('route').find((r) => r.network === '10.201.0.0')).toBeDefined();
  });

  it('takes a 200 that carries a NITRO errorcode for the error it is, not for an answer', async () => {
    await core.createNode({ body: nodeBody(1) });
    const seen = logs.lines.length;
    emulator.failNext(2, 200);
    const c = start();
    await converged(c, 1);
    expect(emulator.calls.filter((x) => x.status === 200 && x.errorcode === 1)).toHaveLength(2);
    expect(logs.lines.slice(seen).join('')).toContain('Internal error (injected) (HTTP 200, errorcode 1)');
  });

  it('puts back an object changed or deleted by hand at the next resync', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const c = start();
    await converged(c, 2);
    // by hand on the ADC: `rm arp` + `add arp` with another MAC (NITRO has no update for arp), `rm route`
    emulator.store.delete('arp', { ipaddress: '198.18.16.2' });
    emulator.store.add('arp', { ipaddress: '198.18.16.2', mac: '02:de:ad:be:ef:00', vxlan: 4096, vtep: '198.18.1.1' });
    emulator.store.delete('route', { network: '198.19.2.0', netmask: '255.255.255.0', gateway: '198.18.16.3' });
    const before = emulator.calls.length;
    await eventually('repaired', () => {
      const arp = emulator.store.list('arp').find((a) => a.ipaddress === '198.18.16.2');
      return arp?.mac === '02:c4:c6:12:10:02' && routes().includes('198.19.2.0/255.255.255.0 via 198.18.16.3') ? true : undefined;
    });
    // the changed MAC was corrected by a delete and an add, never a PUT (which the ADC refuses for arp)
    const arpWrites = emulator.calls.slice(before).filter((x) => x.resource === 'arp' && x.write).map((x) => `${x.method} ${x.status}`);
    expect(arpWrites).toEqual(['DELETE 200', 'POST 201']);
  });

  it('says clearly when it is connected to the secondary of an HA pair, and writes nothing', async () => {
    emulator.secondary = true;
    await core.createNode({ body: nodeBody(1) });
    const c = start();
    const err = await eventually('device error', () => (c.status().device as { lastError: string | null }).lastError ?? undefined);
    expect(err).toMatch(/secondary node of an HA pair.*point --device-address at the primary/);
    expect(emulator.writes().filter((w) => w.status < 300)).toEqual([]);
  });

  it('never puts the password in logs, /status or errors', async () => {
    await core.createNode({ body: nodeBody(1) });
    emulator.failNext(2);
    const c = start();
    await converged(c, 1);
    expect(logs.lines.join('\n')).not.toContain(NITRO_PASSWORD);
    expect(JSON.stringify(c.status())).not.toContain(NITRO_PASSWORD);
    expect(await c.metricsText()).not.toContain(NITRO_PASSWORD);
  });

  it('in PBR mode programs one applied policy route per pod CIDR instead of routes, plus a netprofile', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const c = start({ routing: 'pbr', netprofile: 'chorus-backends', neighbours: 'both' });
    await eventually('PBRs applied', () => (emulator.store.appliedPbrs().length === 2 && (c.status().device as { converged: boolean }).converged ? true : undefined));
    expect(emulator.store.appliedPbrs().map((p) => `${String(p.name)} ${String(p.destipval)} -> ${String(p.nexthopval)}`).sort()).toEqual([
      'chorus-4096-198-19-1-0-24 198.19.1.0-198.19.1.255 -> 198.18.16.2',
      'chorus-4096-198-19-2-0-24 198.19.2.0-198.19.2.255 -> 198.18.16.3',
    ]);
    expect(routes().filter((r) => r.includes('via 198.18.16.'))).toEqual([]);
    expect(emulator.store.list('bridgetable').map((b) => String(b.vtep)).sort()).toEqual(['198.18.1.1', '198.18.1.2']);
    expect(emulator.store.list('netprofile')).toEqual([{ name: 'chorus-backends', srcip: '198.18.16.1' }]);
  });

  it('in a dual-stack overlay programs nsip6, an nd6 and a route6 per node beside the IPv4 objects, makes no writes at steady state, and tears them down', async () => {
    const dual = { ...TEST_OVERLAY, overlayNetworkIPv6: 'fd00:c0::/64' };
    for (let i = 1; i <= 2; i++) await core.createNode({ body: { ...nodeBody(i), spec: { podCIDRs: [`198.19.${i}.0/24`, `fd00:19:${i}::/64`] } } });
    // what another cluster or an operator made on the ADC: an IPv6 SNIP and a route6 of their own
    emulator.store.add('nsip6', { ipv6address: 'fd00:aa::1/64', type: 'SNIP' });
    emulator.store.add('route6', { network: 'fd00:ab::/64', gateway: 'fd00:aa::2' });
    const c = startCoordinator(api.kubeConfig, 'c1', dual, { driver: citrixDriver(url, caFile, logs.log, { overlayNetworkIPv6: dual.overlayNetworkIPv6 }), deviceResyncMs: 400, podCidrSource: 'node', log: logs.log });
    running.push(c);
    await converged(c, 2);
    const route6s = (): string[] => emulator.store.configured('route6').map((r) => `${String(r.network)} via ${String(r.gateway)}`).sort();
    await eventually('route6 per node', () => (route6s().length === 3 ? true : undefined));
    expect(route6s()).toEqual(['fd00:19:1::/64 via fd00:c0::2', 'fd00:19:2::/64 via fd00:c0::3', 'fd00:ab::/64 via fd00:aa::2']);
    expect(emulator.store.configured('nsip6').map((n) => String(n.ipv6address)).sort()).toEqual(['fd00:aa::1/64', 'fd00:c0::1/64']);
    expect(emulator.store.configured('nd6').map((n) => `${String(n.neighbor)} ${String(n.mac)} vxlan ${String(n.vxlan)} vtep ${String(n.vtep)}`).sort()).toEqual([
      'fd00:c0::2 02:c4:c6:12:10:02 vxlan 4096 vtep 198.18.1.1', 'fd00:c0::3 02:c4:c6:12:10:03 vxlan 4096 vtep 198.18.1.2',
    ]);
    await eventually('the save after the initial sync', () => (emulator.store.saves > 0 ? true : undefined));
    const writesBefore = emulator.writes().length;
    const observes = (): number => emulator.calls.filter((x) => x.resource === 'nd6' && x.method === 'GET').length;
    const seen = observes();
    await eventually('two resyncs', () => (observes() >= seen + 2 ? true : undefined), 10_000);
    expect(emulator.writes().slice(writesBefore).map((w) => `${w.method} ${w.resource} ${w.status} ${w.errorcode}`)).toEqual([]);
    await c.stop();
    running.splice(0);
    const driver = citrixDriver(url, caFile, logs.log, { overlayNetworkIPv6: dual.overlayNetworkIPv6 });
    const { diffDevice } = await import('../../coordinator/drivers/driver.ts');
    expect(await driver.apply(diffDevice([], await driver.observe()))).toEqual([]);
    expect(await driver.observe()).toEqual([]);
    await driver.close();
    expect(route6s()).toEqual(['fd00:ab::/64 via fd00:aa::2']);
    expect(emulator.store.configured('nsip6').map((n) => String(n.ipv6address))).toEqual(['fd00:aa::1/64']);
    expect(emulator.store.configured('nd6')).toEqual([]);
  });

  it('teardown removes every object of this cluster and nothing else', async () => {
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const c = start({ neighbours: 'both' });
    await converged(c, 2);
    await c.stop();
    running.splice(0);
    const driver = citrixDriver(url, caFile, logs.log, { neighbours: 'both' });
    const { diffDevice } = await import('../../coordinator/drivers/driver.ts');
    const owned = await driver.observe();
    expect(owned.length).toBeGreaterThan(5);
    expect(await driver.apply(diffDevice([], owned))).toEqual([]);
    expect(await driver.observe()).toEqual([]);
    await driver.close();
    expect(emulator.store.list('vxlan').map((v) => v.id)).toEqual([200]);
    expect(routes().sort()).toEqual(['10.201.0.0/255.255.255.0 via 10.200.0.2', '192.0.2.0/255.255.255.0 via 198.18.0.1']);
    expect(emulator.store.configured('nsip').map((n) => n.ipaddress).sort()).toEqual(['10.200.0.1', '198.18.0.3']);
  });

  it('on a strict ADC (its own NSIP, DIRECT and default routes, learned entries, an HA pair) converges with zero writes over three resyncs and deletes nothing of the ADC\'s', async () => {
    emulator.haPeer = '198.18.0.5';
    emulator.store.add('vxlan', { id: 4096, port: 4789 }); // the vxlan exists (by hand) so the ADC can learn on it
    emulator.store.learn('arp', { ipaddress: '198.18.16.200', mac: '02:aa:bb:cc:dd:ee', vxlan: 4096, vtep: '198.18.1.200' });
    emulator.store.learn('bridgetable', { mac: '02:aa:bb:cc:dd:ee', vxlan: 4096, vtep: '198.18.1.200' });
    for (let i = 1; i <= 2; i++) await core.createNode({ body: nodeBody(i) });
    const c = start();
    await converged(c, 2);
    // the connected route of the overlay SNIP lies in our overlay network, yet is the ADC's own
    const direct = (): string[] => emulator.store.list('route').filter((r) => r.direct === true).map((r) => `${String(r.network)}/${String(r.netmask)} ${String(r.gateway)}`).sort();
    expect(direct()).toEqual(['10.200.0.0/255.255.255.0 10.200.0.1', '198.18.0.0/255.255.240.0 198.18.0.3', '198.18.16.0/255.255.240.0 198.18.16.1']);
    await eventually('the debounced save after the initial sync', () => (emulator.store.saves > 0 ? true : undefined));
    const writes = emulator.writes().length;
    const observes = (): number => emulator.calls.filter((x) => x.resource === 'hanode').length;
    const seen = observes();
    await eventually('three more resyncs', () => (observes() >= seen + 3 ? true : undefined), 10_000);
    expect(emulator.writes().slice(writes)).toEqual([]);
    expect(emulator.store.list('arp').filter((a) => a.type === 'DYNAMIC').map((a) => a.ipaddress)).toEqual(['198.18.16.200']);
    expect(emulator.store.list('bridgetable').map((b) => String(b.mac))).toContain('02:aa:bb:cc:dd:ee');
    expect(emulator.store.list('route').some((r) => r.network === '0.0.0.0')).toBe(true);
    expect(direct()).toHaveLength(3);
  });

  it('recognises a secondary from its own node (id 0), though it lists its peer as Primary, and never writes to it', async () => {
    emulator.haPeer = '198.18.0.5';
    emulator.secondary = true;
    await core.createNode({ body: nodeBody(1) });
    const c = start();
    const err = await eventually('device error', () => (c.status().device as { lastError: string | null }).lastError ?? undefined);
    expect(err).toMatch(/secondary node of an HA pair/);
    expect(emulator.writes()).toEqual([]);
  });

  it('an object the ADC refuses (599) fails only its node: every other node is programmed in the same pass', async () => {
    emulator.refuseObject('route', { network: '198.19.2.0', netmask: '255.255.255.0', gateway: '198.18.16.3' });
    for (let i = 1; i <= 3; i++) await core.createNode({ body: nodeBody(i) });
    start();
    await eventually('the other nodes programmed', () => (routes().filter((r) => r.includes('via 198.18.16.')).length === 2 && arps() === 3 ? true : undefined));
    const routePosts = emulator.calls.filter((x) => x.method === 'POST' && x.resource === 'route');
    expect(routePosts[0]).toMatchObject({ items: 3, status: 207, errorcode: 1243 });
    expect(routes()).toEqual(expect.arrayContaining(['198.19.1.0/255.255.255.0 via 198.18.16.2', '198.19.3.0/255.255.255.0 via 198.18.16.4']));
    const event = await eventually('a Warning Event on node-2', async () => {
      const events = await core.listNamespacedEvent({ namespace: 'default' });
      return events.items.find((e) => e.reason === 'DeviceProgrammingFailed' && e.involvedObject.name === 'node-2');
    });
    expect(event.message).toMatch(/route 198\.19\.2\.0.*injected refusal/);
    // a single object refused (not in a bulk request) likewise fails only its node
    emulator.refuseObject('arp', { ipaddress: '198.18.16.5' });
    await core.createNode({ body: nodeBody(4) });
    await eventually('node-4 route programmed without its arp', () => (routes().includes('198.19.4.0/255.255.255.0 via 198.18.16.5') ? true : undefined));
    expect(emulator.calls.some((x) => x.method === 'POST' && x.resource === 'arp' && x.status === 599)).toBe(true);
  });

});

describe('Citrix driver: --routing auto with the direct subnet read from the ADC', () => {
  it('routes the nodes in the VTEP SNIP\'s subnet directly and tunnels the rest; until the SNIP can be read, each node keeps the path its Node records', async () => {
    // the operator has not configured the VTEP's SNIP yet: its subnet cannot be read
    emulator.store.delete('nsip', { ipaddress: '198.18.0.3' });
    await core.createNode({ body: nodeAt('far', '198.18.64.1', '198.19.64.0/24', 'direct') });
    await core.createNode({ body: nodeAt('near', '198.18.1.2', '198.19.1.0/24') });
    const c = startCoordinator(api.kubeConfig, 'c1', TEST_OVERLAY, { driver: citrixDriver(url, caFile, logs.log), routing: AUTO_FROM_DEVICE, deviceResyncMs: 400, podCidrSource: 'node', log: logs.log });
    running.push(c);
    await eventually('the paths published while the subnet is unknown', async () => {
      const paths = await publishedPaths(core);
      return paths.far === 'direct' && paths.near === 'vxlan' ? true : undefined;
    }, 10_000);
    await eventually('the reason logged', () => (logs.lines.some((l) => l.includes('cannot read the subnets of the device VTEPs') && l.includes('no SNIP or NSIP 198.18.0.3')) ? true : undefined));
    expect(c.status().routing).toMatchObject({ mode: 'auto', directSubnets: null, directSubnetsFrom: 'device', pending: expect.stringContaining('no SNIP or NSIP 198.18.0.3') as unknown });
    emulator.store.add('nsip', { ipaddress: '198.18.0.3', netmask: '255.255.240.0', type: 'SNIP' });
    await eventually('the paths the SNIP\'s subnet 198.18.0.0/20 gives', async () => {
      const paths = await publishedPaths(core);
      return paths.far === 'vxlan' && paths.near === 'direct' ? true : undefined;
    }, 20_000);
    await eventually('the ADC routes near directly and far through the overlay', () => {
      const r = routes();
      return r.includes('198.19.1.0/255.255.255.0 via 198.18.1.2') && r.some((x) => /^198\.19\.64\.0\/255\.255\.255\.0 via 198\.18\.16\.\d+$/.test(x)) && r.length === 2 + 2 && arps() === 1 && (c.status().device as { converged: boolean }).converged ? true : undefined;
    }, 20_000);
    expect(logs.lines.some((l) => l.includes('direct subnets read from the device') && l.includes('198.18.0.0/20'))).toBe(true);
    expect(c.status().routing).toEqual({ mode: 'auto', directSubnets: ['198.18.0.0/20'], directSubnetsFrom: 'device' });
    // steady state with both paths: resyncs (each reads the subnets again) write nothing. The
    // debounced save comes after the last change: wait for it, not for any save
    await eventually('the save after the last change', () => (emulator.writes().at(-1)?.resource === 'nsconfig' ? true : undefined));
    const writesBefore = emulator.writes().length;
    const observes = (): number => emulator.calls.filter((x) => x.resource === 'hanode').length;
    const seen = observes();
    await eventually('two resyncs', () => (observes() >= seen + 2 ? true : undefined), 10_000);
    expect(emulator.writes().slice(writesBefore)).toEqual([]);
  });
});
