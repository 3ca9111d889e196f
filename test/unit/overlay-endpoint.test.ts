// OverlayEndpoint (the agent's and gateway's reconcile of one overlay endpoint) on a fake kernel:
// what it programs, what it counts as a repair, how it reports bad input, a disabled ip_forward,
// a command killed at its deadline and a firewall that cannot be applied. The same code runs on
// the real kernel in test/e2e/agent.test.ts and test/faults/node-kernel.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { OverlayEndpoint, type EndpointOptions } from '../../agent/endpoint.ts';
import type { EndpointPlan, Problem } from '../../agent/plan-types.ts';
import { CommandTimeoutError } from '../../shared/command.ts';
import { DEFAULT_NAMES } from '../../shared/keys.ts';
import { silentLogger } from '../../shared/log.ts';
import { FakeKernel } from '../support/fake-kernel.ts';

const DEV = 'chorus-4096';

function planWith(fdbDsts: string[] = ['198.18.0.3']): EndpointPlan {
  return {
    overlay: {
      vxlan: { name: DEV, vni: 4096, port: 4789, local: '198.18.1.1', mtu: 1450, mac: '02:c4:c6:12:10:02' },
      addresses: ['198.18.16.2/20'],
      fdb: fdbDsts.map((dst) => ({ mac: '00:00:00:00:00:00', dst })),
      neighbours: [{ ip: '198.18.16.1', mac: '02:c4:c6:12:10:01' }],
      routes: [{ dst: '198.19.128.0/24', via: '198.18.16.1' }],
    },
    firewall: { vxlanDevice: DEV, port: 4789, vni: 4096, underlayDevice: 'eth0', allowedVTEPs: fdbDsts, deviceOverlayIPs: ['198.18.16.1'], podCIDRs: ['198.19.0.0/24'] },
  };
}

interface Harness {
  kernel: FakeKernel;
  endpoint: OverlayEndpoint;
  events: string[];
  setPlan: (p: EndpointPlan | Problem) => void;
  pass: (reason: string) => Promise<void>;
  metric: (name: string, labels?: Record<string, string>) => Promise<number | undefined>;
}

const started: OverlayEndpoint[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((e) => e.stop()));
});

function harness(extra: Partial<EndpointOptions> = {}): Harness {
  const kernel = new FakeKernel();
  const events: string[] = [];
  let plan: EndpointPlan | Problem = planWith();
  const endpoint = new OverlayEndpoint({
    ip: kernel.ip, nft: kernel.nft, host: kernel.host, log: silentLogger(), resyncMs: 3_600_000, txChecksum: 'off', firewall: true,
    role: 'agent', requireForwarding: true, watchKernel: false,
    events: { warning: (reason, message) => events.push(`${reason}: ${message}`), normal: () => undefined },
    ...extra,
  }, () => Promise.resolve(plan));
  started.push(endpoint);
  return {
    kernel, endpoint, events,
    setPlan: (p) => {
      plan = p;
    },
    pass: async (reason) => {
      if (endpoint.loop.passes === 0) endpoint.start();
      else endpoint.trigger(reason);
      await endpoint.loop.idle();
    },
    metric: (name, labels) => endpoint.registry.value(name, labels),
  };
}

describe('overlay endpoint on a fake kernel', () => {
  it('programs everything from nothing in one pass, the firewall first, and then makes no change at steady state', async () => {
    const h = await ready();
    const link = h.kernel.links.get(DEV);
    expect(link).toMatchObject({ vni: 4096, local: '198.18.1.1', mtu: 1450, mac: '02:c4:c6:12:10:02', up: true });
    expect([...(link?.addrs ?? [])]).toEqual(['198.18.16.2/20']);
    expect(link?.fdb).toEqual([{ mac: '00:00:00:00:00:00', dst: '198.18.0.3' }]);
    expect([...(link?.neigh ?? [])]).toEqual([['198.18.16.1', '02:c4:c6:12:10:01']]);
    expect([...(link?.routes ?? [])]).toEqual([['198.19.128.0/24', '198.18.16.1']]);
    expect(h.kernel.rpFilter.get(DEV)).toBe('2');
    expect(h.kernel.txChecksum.get(DEV)).toBe('off');
    expect(h.kernel.commands.indexOf('nft replace')).toBeLessThan(h.kernel.commands.findIndex((c) => c.startsWith(`ip link add ${DEV}`)));
    expect(h.endpoint.notReadyReason()).toBeUndefined();
    expect(await h.metric('chorus_agent_ready')).toBe(1);
    expect(await h.metric('chorus_agent_changes_total', { kind: 'device' })).toBe(1);
    expect(await h.metric('chorus_agent_repairs_total', { kind: 'device' })).toBe(0);

    const mark = h.kernel.commands.length;
    await h.pass('watch');
    await h.pass('timer'); // a full check: firewall, rp_filter and offload are read again
    expect(h.kernel.writesSince(mark)).toEqual([]);
  });

  it('repairs only what drifted and counts it as a repair, by kind', async () => {
    const h = await ready();
    const link = h.kernel.links.get(DEV);
    if (!link) throw new Error('no device');
    link.fdb = [];
    link.neigh.clear();
    const mark = h.kernel.commands.length;
    await h.pass('kernel:fdb');
    expect(h.kernel.writesSince(mark)).toEqual([
      'bridge fdb append 00:00:00:00:00:00 dev chorus-4096 dst 198.18.0.3 self permanent',
      'ip neigh replace 198.18.16.1 lladdr 02:c4:c6:12:10:01 dev chorus-4096 nud permanent',
    ]);
    expect(await h.metric('chorus_agent_repairs_total', { kind: 'fdb' })).toBe(1);
    expect(await h.metric('chorus_agent_repairs_total', { kind: 'neighbour' })).toBe(1);
    expect(await h.metric('chorus_agent_repairs_total', { kind: 'route' })).toBe(0);
  });

  it('recreates a deleted device with everything on it, and checks its sysctl and offload again (a new ifindex)', async () => {
    const h = await ready();
    h.kernel.links.delete(DEV);
    await h.pass('kernel:link');
    expect(h.kernel.links.get(DEV)?.up).toBe(true);
    expect(h.kernel.links.get(DEV)?.fdb).toHaveLength(1);
    expect(h.kernel.rpFilter.get(DEV)).toBe('2');
    expect(h.kernel.txChecksum.get(DEV)).toBe('off');
    expect(await h.metric('chorus_agent_repairs_total', { kind: 'device' })).toBe(1);
    expect(await h.metric('chorus_agent_repairs_total', { kind: 'sysctl' })).toBe(1);
    expect(await h.metric('chorus_agent_repairs_total', { kind: 'offload' })).toBe(1);
  });

  it('counts a changed input as a change, not a repair', async () => {
    const h = await ready();
    h.setPlan(planWith(['198.18.0.3', '198.18.0.4']));
    await h.pass('watch');
    expect(h.kernel.links.get(DEV)?.fdb.map((e) => e.dst)).toEqual(['198.18.0.3', '198.18.0.4']);
    expect(await h.metric('chorus_agent_changes_total', { kind: 'fdb' })).toBe(2);
    expect(await h.metric('chorus_agent_repairs_total', { kind: 'fdb' })).toBe(0);
  });

  it('keeps the last good state on invalid input, says why, and recovers when the input is good again', async () => {
    const h = await ready();
    const mark = h.kernel.commands.length;
    h.setPlan({ kind: 'invalid', reason: 'hub info: "vni" must be in 1..16777215' });
    await h.pass('watch');
    expect(h.kernel.writesSince(mark)).toEqual([]);
    expect(h.kernel.links.get(DEV)?.fdb).toHaveLength(1);
    expect(h.endpoint.notReadyReason()).toBe('hub info: "vni" must be in 1..16777215');
    expect(await h.metric('chorus_agent_ready')).toBe(0);
    expect(h.events).toEqual(['OverlayInputInvalid: hub info: "vni" must be in 1..16777215; keeping the last good overlay state']);
    // and it still repairs the last good state meanwhile
    h.kernel.links.delete(DEV);
    await h.pass('kernel:link');
    expect(h.kernel.links.get(DEV)?.up).toBe(true);
    h.setPlan(planWith());
    await h.pass('watch');
    expect(h.endpoint.notReadyReason()).toBeUndefined();
  });

  it('is not ready while ip_forward is off on a node, with the command that fixes it', async () => {
    const h = harness();
    h.kernel.forwarding = false;
    await h.pass('start');
    expect(h.kernel.links.get(DEV)?.up).toBe(true);
    expect(h.endpoint.notReadyReason()).toMatch(/net\.ipv4\.ip_forward is 0 on this node.*\(sysctl -w net\.ipv4\.ip_forward=1\)/);
    h.kernel.forwarding = true;
    await h.pass('timer');
    expect(h.endpoint.notReadyReason()).toBeUndefined();
  });

  it('programs a dual-stack plan (both addresses, IPv6 neighbour and route), changes nothing at steady state, and is not ready while IPv6 forwarding is off', async () => {
    const h = harness();
    const base = planWith();
    const dual: EndpointPlan = {
      overlay: {
        ...base.overlay,
        addresses: [...base.overlay.addresses, 'fd00:c0::2/64'],
        neighbours: [...base.overlay.neighbours, { ip: 'fd00:c0::1', mac: '02:c4:c6:12:10:01' }],
        routes: [...base.overlay.routes, { dst: 'fd00:80::/64', via: 'fd00:c0::1' }],
      },
      firewall: { ...base.firewall, deviceOverlayIPv6s: ['fd00:c0::1'], podCIDRsIPv6: ['fd00:10::/64'] },
    };
    h.setPlan(dual);
    h.kernel.forwardingIPv6 = false;
    await h.pass('start');
    const link = h.kernel.links.get(DEV);
    expect([...(link?.addrs ?? [])]).toEqual(['198.18.16.2/20', 'fd00:c0::2/64']);
    expect(link?.neigh.get('fd00:c0::1')).toBe('02:c4:c6:12:10:01');
    expect(link?.routes.get('fd00:80::/64')).toBe('fd00:c0::1');
    expect(h.kernel.commands).toContain('ip addr replace fd00:c0::2/64 dev chorus-4096 nodad');
    expect(h.endpoint.notReadyReason()).toMatch(/net\.ipv6\.conf\.all\.forwarding is 0 on this node.*\(sysctl -w net\.ipv6\.conf\.all\.forwarding=1\)/);
    h.kernel.forwardingIPv6 = true;
    const before = h.kernel.commands.length;
    await h.pass('timer');
    expect(h.endpoint.notReadyReason()).toBeUndefined();
    // a full check reads everything and writes nothing: both families are already as planned
    expect(h.kernel.commands.slice(before).filter((c) => !/ -j | list$/.test(c))).toEqual([]);
  });

  it('reports a command killed at its deadline (Event, metric, reason) and retries until it goes through', async () => {
    const h = await ready();
    let hung = 2;
    h.kernel.failWith = (c) => (c.startsWith('bridge fdb') && hung-- > 0 ? new CommandTimeoutError('bridge -batch - was killed after its 10000 ms deadline') : undefined);
    h.kernel.links.get(DEV)?.fdb.splice(0);
    await h.pass('kernel:fdb');
    expect(h.endpoint.notReadyReason()).toMatch(/programming failed: .*killed after its 10000 ms deadline/);
    expect(h.events[0]).toMatch(/^KernelCommandTimedOut: .*killed after its 10000 ms deadline; retrying with backoff$/);
    expect(await h.metric('chorus_agent_command_timeouts_total')).toBeGreaterThanOrEqual(1);
    // the loop retries by itself (backoff from 200 ms) until the command goes through
    const deadline = Date.now() + 10_000;
    while (h.kernel.links.get(DEV)?.fdb.length !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await h.endpoint.loop.idle();
    expect(h.kernel.links.get(DEV)?.fdb).toHaveLength(1);
    expect(h.endpoint.notReadyReason()).toBeUndefined();
    expect(await h.metric('chorus_agent_command_timeouts_total')).toBe(2);
  });

  it('puts back a firewall table deleted behind its back on a firewall event', async () => {
    const h = await ready();
    h.kernel.table = undefined;
    await h.pass('kernel:firewall');
    expect(h.kernel.table).toContain(DEV);
    expect(await h.metric('chorus_agent_repairs_total', { kind: 'firewall' })).toBe(1);
  });

  it('fails closed when the firewall cannot be applied: the device goes down and stays down until it can', async () => {
    const h = await ready();
    h.kernel.table = undefined;
    let broken = true;
    h.kernel.failWith = (c) => (c === 'nft replace' && broken ? new Error('Error: Could not process rule: Operation not permitted') : undefined);
    await h.pass('kernel:firewall');
    expect(h.kernel.links.get(DEV)?.up).toBe(false);
    expect(h.endpoint.notReadyReason()).toMatch(/firewall table could not be applied, so chorus-4096 was set down \(fail closed\)/);
    broken = false;
    const deadline = Date.now() + 10_000;
    while (h.kernel.links.get(DEV)?.up !== true && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await h.endpoint.loop.idle();
    expect(h.kernel.links.get(DEV)?.up).toBe(true);
    // the routes the kernel flushed with the link are back too
    expect(h.kernel.links.get(DEV)?.routes.size).toBe(1);
  });

  it('removes a stale device of its own instance (a previous VNI), never another instance\'s', async () => {
    const h = harness({ ownsDevice: DEFAULT_NAMES.ownsDevice });
    await h.kernel.ip.batch('ip', [
      'link add chorus-99 address 02:00:00:00:00:99 mtu 1450 type vxlan id 99 local 198.18.1.1 dstport 4789 nolearning',
      'link add other-7 address 02:00:00:00:00:07 mtu 1450 type vxlan id 7 local 198.18.1.1 dstport 4789 nolearning',
    ]);
    await h.pass('start');
    expect([...h.kernel.links.keys()].sort()).toEqual([DEV, 'other-7']);
  });

  async function ready(): Promise<Harness> {
    const h = harness();
    await h.pass('start');
    expect(h.endpoint.notReadyReason()).toBeUndefined();
    return h;
  }
});
