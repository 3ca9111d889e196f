// The endpoint programmer on the fake kernel (test/support/fake-kernel.ts): the firewall table goes
// in before the VXLAN device is created or changed; when nft cannot apply it, nothing is brought
// up and the pass fails with the reason (fail closed); cleanup removes what it made, and only that.
import { describe, expect, it } from 'vitest';
import { EndpointProgrammer } from '../../agent/endpoint-programmer.ts';
import type { DirectPlan, EndpointPlan } from '../../agent/plan-types.ts';
import { DEFAULT_NAMES } from '../../shared/keys.ts';
import { silentLogger } from '../../shared/log.ts';
import { FakeKernel } from '../support/fake-kernel.ts';

const plan: EndpointPlan = {
  overlay: {
    vxlan: { name: 'chorus-4096', vni: 4096, port: 4789, local: '198.18.1.1', mtu: 1450, mac: '02:c4:c6:12:10:02' },
    addresses: ['198.18.16.2/20'], fdb: [{ mac: '00:00:00:00:00:00', dst: '198.18.0.3' }], neighbours: [], routes: [],
  },
  firewall: { vxlanDevice: 'chorus-4096', port: 4789, vni: 4096, underlayDevice: 'eth0', allowedVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.16.1'], podCIDRs: ['198.19.0.0/24'] },
};

function programmer(k: FakeKernel, tunnelKeepMs = 0, monotonic?: () => number): EndpointProgrammer {
  return new EndpointProgrammer({ ip: k.ip, nft: k.nft, host: k.host, log: silentLogger(), txChecksum: 'keep', firewall: true, ownsDevice: DEFAULT_NAMES.ownsDevice, tunnelKeepMs, ...(monotonic ? { monotonic } : {}) });
}

const direct: DirectPlan = { direct: { deviceVTEPs: ['198.18.0.3'], underlayIP: '198.18.1.1', podCIDRs: ['198.19.0.0/24'] }, firewall: { deviceAddresses: ['198.18.0.3'], podCIDRs: ['198.19.0.0/24'] } };

describe('endpoint programmer', () => {
  it('puts the firewall table in place before it creates the VXLAN device', async () => {
    const k = new FakeKernel();
    const { changes } = await programmer(k).apply(plan, false);
    const nft = k.commands.indexOf('nft replace');
    const create = k.commands.findIndex((l) => l.startsWith('ip link add chorus-4096'));
    expect(nft).toBeGreaterThanOrEqual(0);
    expect(create).toBeGreaterThan(nft);
    expect(Object.fromEntries(changes)).toEqual({ firewall: 1, device: 1, 'device-settings': 1, address: 1, fdb: 1, sysctl: 1 });
  });

  it('reads a table it created back only at the next full check, where it finds it as written', async () => {
    const k = new FakeKernel();
    const p = programmer(k);
    const nftSince = (mark: number): string[] => k.commands.slice(mark).filter((c) => c.startsWith('nft'));
    await p.apply(plan, false);
    expect(nftSince(0)).toEqual(['nft list', 'nft replace']);
    const mark = k.commands.length;
    const { changes } = await p.apply(plan, true);
    expect(nftSince(mark)).toEqual(['nft list']);
    expect(changes.has('firewall')).toBe(false);
  });

  it('with an nft that prints the table otherwise: one more replace, whose listing is the reference from then on', async () => {
    const k = new FakeKernel();
    k.nftPrints = (table) => table.toUpperCase();
    const p = programmer(k);
    const nftSince = (mark: number): string[] => k.commands.slice(mark).filter((c) => c.startsWith('nft'));
    await p.apply(plan, false);
    let mark = k.commands.length;
    await p.apply(plan, true);
    expect(nftSince(mark)).toEqual(['nft list', 'nft replace', 'nft list']);
    for (let i = 0; i < 3; i++) {
      mark = k.commands.length;
      const { changes } = await p.apply(plan, true);
      expect(nftSince(mark)).toEqual(['nft list']);
      expect(changes.has('firewall')).toBe(false);
    }
  });

  it('a table changed between its replace and the next check is replaced, not taken as the reference', async () => {
    const k = new FakeKernel();
    const p = programmer(k);
    await p.apply(plan, false);
    const ours = k.table;
    k.table = `${ours ?? ''}\n# a rule added by someone else`;
    const { changes } = await p.apply(plan, true);
    expect(changes.get('firewall')).toBe(1);
    expect(k.table).toBe(ours);
    const mark = k.commands.length;
    await p.apply(plan, true);
    expect(k.commands.slice(mark).filter((c) => c.startsWith('nft'))).toEqual(['nft list']);
  });

  it('fails closed when nft cannot apply the table: the device is not created, and the reason is given', async () => {
    const k = new FakeKernel();
    k.failWith = (c) => (c === 'nft replace' ? new Error('Error: Could not process rule: Operation not permitted') : undefined);
    await expect(programmer(k).apply(plan, false)).rejects.toThrow(/firewall table could not be applied, so chorus-4096 is not brought up \(fail closed\): .*Operation not permitted/);
    expect(k.links.size).toBe(0);
    expect(k.writesSince(0)).toEqual(['nft replace', 'ip link set dev chorus-4096 down']);
  });

  it('cleanup removes its devices and its table, and leaves another instance\'s device alone', async () => {
    const k = new FakeKernel();
    const p = programmer(k);
    await p.apply(plan, false);
    await k.ip.batch('ip', ['link add other-7 address 02:00:00:00:00:07 mtu 1450 type vxlan id 7 local 198.18.1.1 dstport 4789 nolearning']);
    expect(await p.cleanup()).toEqual({ devices: ['chorus-4096'], firewall: true });
    expect([...k.links.keys()]).toEqual(['other-7']);
    expect(k.table).toBeUndefined();
  });

  it('a node that becomes directly routed: its VXLAN device goes, the table keeps only the return path, and a steady pass writes nothing', async () => {
    const k = new FakeKernel();
    const p = programmer(k);
    await p.apply(plan, false);
    const { changes } = await p.applyDirect(direct, false);
    expect(Object.fromEntries(changes)).toEqual({ device: 1, firewall: 1 });
    expect(k.links.size).toBe(0);
    expect(k.table).toBe([
      'table inet chorus-kube-router {', '\tchain postrouting {', '\t\ttype nat hook postrouting priority srcnat - 10; policy accept;',
      '\t\tip saddr 198.19.0.0/24 ip daddr 198.18.0.3 snat ip to 198.19.0.0/24 comment "pods to the device keep their address"',
      '\t\tip saddr 198.18.0.3 ip daddr 198.19.0.0/24 snat ip to 198.18.0.3 comment "the device keeps its address toward pods"',
      '\t}', '}',
    ].join('\n'));
    const before = k.commands.length;
    expect(Object.fromEntries((await p.applyDirect(direct, false)).changes)).toEqual({});
    expect(k.writesSince(before)).toEqual([]);
    // and back to VXLAN: the guarded table and the device again
    expect(Object.fromEntries((await p.apply(plan, false)).changes)).toMatchObject({ firewall: 1, device: 1 });
    expect(k.table).toMatch(/chain input/);
  });

  it('a node switching from the tunnel to direct keeps its tunnel for a while (both paths work), then drops it; a node direct from the start keeps nothing', async () => {
    const k = new FakeKernel();
    let clock = 1_000;
    const p = programmer(k, 200, () => clock);
    await p.apply(plan, false);
    const kept = await p.applyDirect(direct, false);
    // the device may still send through the tunnel: the VXLAN device and its guard stay, the direct return rules join them
    expect([...k.links.keys()]).toEqual(['chorus-4096']);
    expect(k.table).toMatch(/chain input/);
    expect(k.table).toContain('ip saddr 198.19.0.0/24 ip daddr 198.18.0.3 snat ip to 198.19.0.0/24');
    expect(kept.againInMs).toBe(200);
    clock += 150;
    expect((await p.applyDirect(direct, false)).againInMs).toBe(50);
    expect(k.links.size).toBe(1);
    clock += 50;
    const done = await p.applyDirect(direct, false);
    expect(done.againInMs).toBeUndefined();
    expect(Object.fromEntries(done.changes)).toMatchObject({ device: 1, firewall: 1 });
    expect(k.links.size).toBe(0);
    expect(k.table).not.toMatch(/chain input/);
    // direct from the start: nothing to keep
    const fresh = programmer(new FakeKernel(), 200);
    expect((await fresh.applyDirect(direct, false)).againInMs).toBeUndefined();
  });

  it('a renumbered node: the local address is changed in place, or, where the kernel refuses that, the device is recreated', async () => {
    const moved: EndpointPlan = { ...plan, overlay: { ...plan.overlay, vxlan: { ...plan.overlay.vxlan, local: '198.18.65.1' } } };
    const k = new FakeKernel();
    const p = programmer(k);
    await p.apply(plan, false);
    const index = k.links.get('chorus-4096')!.ifindex;
    const before = k.commands.length;
    await p.apply(moved, false);
    expect(k.writesSince(before)).toEqual(['ip link set chorus-4096 type vxlan local 198.18.65.1']);
    expect(k.links.get('chorus-4096')).toMatchObject({ ifindex: index, local: '198.18.65.1' });
    // an older kernel: changelink refuses the new local address
    const old = new FakeKernel();
    const q = programmer(old);
    await q.apply(plan, false);
    old.failWith = (c) => (c.includes('type vxlan local') ? new Error('Error: vxlan: cannot change local address') : undefined);
    await q.apply(moved, false);
    expect(old.links.get('chorus-4096')).toMatchObject({ local: '198.18.65.1' });
    expect(old.commands.some((c) => c.startsWith('ip link del chorus-4096'))).toBe(true);
  });
});
