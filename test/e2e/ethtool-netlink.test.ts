// The agent and gateway read and set device features over ethtool netlink (agent/ethtool-netlink.ts)
// instead of running `ethtool -k` and `ethtool -K`. They must read what ethtool (a tool nobody here
// wrote) reads, and leave a device as `ethtool -K` leaves its twin for the same request: random
// requests over the features ethtool says can change, each done both ways on two VXLAN devices
// made alike, and the two `ethtool -k` listings must be the same line for line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { execa } from 'execa';
import { ipRoute } from '../../shared/iproute.ts';
import { IS_ROOT } from '../support/lab.ts';

const ns = `ckr${randomBytes(3).toString('hex').slice(0, 5)}-eth`;
const HELPER = fileURLToPath(new URL('../support/device-features.ts', import.meta.url));

type Result = { on: string[] } | { error: string };

async function viaNetlink(requests: { dev: string; set?: [string, boolean][] }[]): Promise<Result[]> {
  const r = await execa('ip', ['netns', 'exec', ns, process.execPath, '--disable-warning=ExperimentalWarning', HELPER], { input: JSON.stringify(requests) });
  return JSON.parse(r.stdout) as Result[];
}

/**
 * ethtool prints some features under its older names (ethtool's off_flag_def), and groups of
 * features under a heading of their own (tx-checksumming, scatter-gather,
 * tcp-segmentation-offload): the kernel's names here, as netlink has them.
 */
const OLDER_NAMES: Readonly<Record<string, string>> = {
  'rx-checksumming': 'rx-checksum',
  'generic-segmentation-offload': 'tx-generic-segmentation',
  'generic-receive-offload': 'rx-gro',
  'large-receive-offload': 'rx-lro',
  'rx-vlan-offload': 'rx-vlan-hw-parse',
  'tx-vlan-offload': 'tx-vlan-hw-insert',
  'ntuple-filters': 'rx-ntuple-filter',
  'receive-hashing': 'rx-hashing',
};

/** `ethtool -k dev` as kernel name -> "on" / "off [fixed]" / "off [requested on]" ... (group headings left out). */
async function ethtoolListing(dev: string): Promise<Map<string, string>> {
  const lines = String((await execa('ip', ['netns', 'exec', ns, 'ethtool', '-k', dev])).stdout).split('\n').slice(1);
  const out = new Map<string, string>();
  for (const [i, line] of lines.entries()) {
    const m = /^(\s*)([a-z0-9-]+): (.+)$/.exec(line);
    if (!m) continue;
    const heading = m[1] === '' && /^\s/.test(lines[i + 1] ?? '');
    if (!heading) out.set(OLDER_NAMES[m[2] ?? ''] ?? m[2] ?? '', (m[3] ?? '').trim());
  }
  return out;
}

const vxlan = (dev: string, vni: number): string => `link add ${dev} type vxlan id ${vni} local 198.18.0.1 dstport 4789 nolearning`;

describe.skipIf(!IS_ROOT)('device features over ethtool netlink', () => {
  let changeable: string[] = [];

  beforeAll(async () => {
    await execa('ip', ['netns', 'add', ns]);
    await ipRoute(ns).batch('ip', ['link add ul0 type veth peer name ul1', 'addr add 198.18.0.1/24 dev ul0', 'link set ul0 up', 'link set ul1 up', vxlan('probe', 9)]);
    changeable = [...(await ethtoolListing('probe'))].filter(([, v]) => !v.includes('[fixed]')).map(([name]) => name);
  });
  afterAll(async () => {
    await execa('ip', ['netns', 'del', ns], { reject: false });
  });

  it('reads the features that are on as ethtool -k lists them', async () => {
    const [read] = await viaNetlink([{ dev: 'probe' }]);
    const listed = [...(await ethtoolListing('probe'))].filter(([, v]) => v.startsWith('on')).map(([name]) => name).sort();
    expect(read).toEqual({ on: listed });
    expect(listed).toContain('tx-checksum-ip-generic');
  });

  it('leaves a device as ethtool -K leaves its twin, for random requests', async () => {
    expect(changeable.length).toBeGreaterThan(5);
    const request = fc.uniqueArray(fc.tuple(fc.constantFrom(...changeable), fc.boolean()), { minLength: 1, maxLength: 5, selector: ([name]) => name });
    const cases = fc.sample(request, { numRuns: 25, seed: 15 });
    await ipRoute(ns).batch('ip', cases.flatMap((_, i) => [vxlan(`a${i}`, 100 + i), vxlan(`b${i}`, 200 + i)]));
    const results = await viaNetlink(cases.map((set, i) => ({ dev: `b${i}`, set })));
    for (const [i, set] of cases.entries()) {
      await execa('ip', ['netns', 'exec', ns, 'ethtool', '-K', `a${i}`, ...set.flatMap(([name, on]) => [name, on ? 'on' : 'off'])], { reject: false });
      expect(results[i], `netlink request ${JSON.stringify(set)}`).not.toHaveProperty('error');
      expect(await ethtoolListing(`b${i}`), `request ${JSON.stringify(set)}`).toEqual(await ethtoolListing(`a${i}`));
    }
  });

  it('says which device is missing, with the kernel reason', async () => {
    const [missing] = await viaNetlink([{ dev: 'chorus-404' }]);
    expect(missing).toEqual({ error: 'EthtoolNetlinkError: ethtool -k chorus-404 (netlink) failed: ENODEV: no such device' });
    const [refused] = await viaNetlink([{ dev: 'probe', set: [['no-such-feature', false]] }]);
    expect(refused).toHaveProperty('error');
    expect((refused as { error: string }).error).toMatch(/^EthtoolNetlinkError: ethtool -K probe no-such-feature off \(netlink\) failed: E[A-Z]+: /);
  });
});
