// The endpoint programmer with fake kernel ports (IpRoute, Nft): the firewall table goes in before
// the VXLAN device is created or changed, and when nft cannot apply it the device is kept down and
// the pass fails with the reason (fail closed).
import { describe, expect, it } from 'vitest';
import { EndpointProgrammer } from '../../agent/endpoint-programmer.ts';
import type { Nft } from '../../agent/firewall/nft.ts';
import type { EndpointPlan } from '../../agent/plan-types.ts';
import type { IpRoute, IpTool } from '../../shared/iproute.ts';
import { silentLogger } from '../../shared/log.ts';

const plan: EndpointPlan = {
  overlay: {
    vxlan: { name: 'chorus-4096', vni: 4096, port: 4789, local: '198.18.1.1', mtu: 1450, mac: '02:c4:c6:12:10:02' },
    addresses: ['198.18.16.2/20'], fdb: [{ mac: '00:00:00:00:00:00', dst: '198.18.0.3' }], neighbours: [], routes: [],
  },
  firewall: { vxlanDevice: 'chorus-4096', port: 4789, vni: 4096, underlayDevice: 'eth0', allowedVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.16.1'], podCIDRs: ['198.19.0.0/24'] },
};

/** A kernel that records what is asked of it, in order; `ip -j` listings say nothing exists yet. */
function fakeKernel(nftFails: boolean): { ip: IpRoute; nft: Nft; log: string[] } {
  const log: string[] = [];
  const ip: IpRoute = {
    json: (tool: IpTool, args: readonly string[]) => {
      log.push(`${tool} -j ${args.join(' ')}`);
      return Promise.resolve([]);
    },
    run: (tool: IpTool, args: readonly string[]) => {
      log.push(`${tool} ${args.join(' ')}`);
      return Promise.resolve();
    },
    batch: (tool: IpTool, lines: readonly string[]) => {
      log.push(...lines.map((l) => `${tool} batch: ${l}`));
      return Promise.resolve();
    },
  };
  let table: string | undefined;
  const nft: Nft = {
    table: 'chorus-kube-router',
    list: () => Promise.resolve(table),
    replace: (ruleset: string) => {
      log.push('nft replace');
      if (nftFails) return Promise.reject(new Error('Error: Could not process rule: Operation not permitted'));
      table = ruleset;
      return Promise.resolve();
    },
    remove: () => Promise.resolve(true),
    droppedPackets: () => Promise.resolve(0),
  };
  return { ip, nft, log };
}

describe('endpoint programmer', () => {
  it('puts the firewall table in place before it creates the VXLAN device', async () => {
    const k = fakeKernel(false);
    const p = new EndpointProgrammer({ ip: k.ip, nft: k.nft, log: silentLogger(), txChecksum: 'keep', firewall: true });
    // not a full check: the sysctl and offload checks (which read this host's /proc) are not due for a device the fake never shows
    await p.apply(plan, false);
    const nft = k.log.indexOf('nft replace');
    const create = k.log.findIndex((l) => l.includes('link add chorus-4096'));
    expect(nft).toBeGreaterThanOrEqual(0);
    expect(create).toBeGreaterThan(nft);
  });

  it('fails closed when nft cannot apply the table: the device is set down, not created or changed, and the reason is given', async () => {
    const k = fakeKernel(true);
    const p = new EndpointProgrammer({ ip: k.ip, nft: k.nft, log: silentLogger(), txChecksum: 'keep', firewall: true });
    await expect(p.apply(plan, false)).rejects.toThrow(/firewall table could not be applied, so chorus-4096 was set down \(fail closed\): .*Operation not permitted/);
    expect(k.log).toEqual(['nft replace', 'ip link set dev chorus-4096 down']);
  });
});
