// After a restart the agent keeps its nftables table when the table holds exactly the rules it
// would write (agent/firewall/ruleset.ts sameTable), instead of rewriting it: one `nft list`
// instead of three nft runs and a second pass. That holds only if the agent writes its rules
// the way nft (a tool nobody here wrote) lists them back. Random rulesets are applied with the
// real nft in a namespace of their own and compared with its listing; a table changed behind
// the agent's back must never compare equal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { execa } from 'execa';
import { nftCommand } from '../../agent/firewall/nft.ts';
import { renderDirectRuleset, renderRuleset, sameTable, type FirewallSpec } from '../../agent/firewall/ruleset.ts';
import { formatIPv4 } from '../../shared/ipv4.ts';
import { IS_ROOT } from '../support/lab.ts';

const ns = `ckr${randomBytes(3).toString('hex').slice(0, 5)}-nft`;
const TABLE = 'chorus-kube-router-listing';

const ipv4In = (base: number, span: number): fc.Arbitrary<string> => fc.integer({ min: 0, max: span - 1 }).map((i) => formatIPv4(base + i));
const ipv6In = fc.integer({ min: 0, max: 40 }).map((i) => `fd00:c0::${(i + 1).toString(16)}`);
const podCIDR = fc.integer({ min: 0, max: 255 }).map((i) => `198.19.${i}.0/24`);

const tunnelSpec: fc.Arbitrary<FirewallSpec> = fc.record({
  v6Underlay: fc.boolean(),
  vteps: fc.integer({ min: 0, max: 50 }),
  vtepSeed: fc.array(fc.integer({ min: 0, max: 1023 }), { minLength: 50, maxLength: 50 }),
  deviceOverlayIPs: fc.uniqueArray(ipv4In((198 << 24) + (18 << 16) + (16 << 8), 64), { maxLength: 12 }),
  podCIDRs: fc.uniqueArray(podCIDR, { maxLength: 3 }),
  dual: fc.boolean(),
  deviceOverlayIPv6s: fc.uniqueArray(ipv6In, { maxLength: 6 }),
  underlayDevice: fc.constantFrom(undefined, 'eth0', 'ul0'),
  vni: fc.integer({ min: 1, max: 16_777_215 }),
  port: fc.constantFrom(4789, 4790, 8472),
  directReturn: fc.option(fc.record({ deviceAddresses: fc.uniqueArray(ipv4In((198 << 24) + (18 << 16), 32), { minLength: 1, maxLength: 6 }), podCIDRs: fc.uniqueArray(podCIDR, { minLength: 1, maxLength: 2 }) }), { nil: undefined }),
}).map((r) => ({
  table: TABLE,
  vxlanDevice: `chorus-${r.vni}`,
  port: r.port,
  vni: r.vni,
  underlayDevice: r.underlayDevice,
  allowedVTEPs: [...new Set(r.vtepSeed.slice(0, r.vteps).map((i) => (r.v6Underlay ? `2001:db8:18::${(i + 1).toString(16)}` : formatIPv4((198 << 24) + (18 << 16) + i + 1))))],
  underlayFamily: r.v6Underlay ? 6 as const : 4 as const,
  deviceOverlayIPs: r.deviceOverlayIPs,
  podCIDRs: r.podCIDRs,
  ...(r.dual ? { deviceOverlayIPv6s: r.deviceOverlayIPv6s, podCIDRsIPv6: ['fd01::/64'] } : {}),
  ...(r.directReturn ? { directReturn: { table: TABLE, ...r.directReturn } } : {}),
}));

describe.skipIf(!IS_ROOT)('the agent writes its nftables table as nft lists it back', () => {
  const nft = nftCommand(ns, TABLE);

  beforeAll(async () => {
    await execa('ip', ['netns', 'add', ns]);
  });

  afterAll(async () => {
    await execa('ip', ['netns', 'del', ns], { reject: false });
  });

  it('a tunneled node\'s or gateway\'s table, any addresses, sets and families: the listing is the same table', async () => {
    await fc.assert(fc.asyncProperty(tunnelSpec, async (spec) => {
      const ruleset = renderRuleset(spec);
      await nft.replace(ruleset);
      const listing = await nft.list();
      expect(listing, `${ruleset}\n--- nft listed ---\n${listing ?? ''}`).toBeDefined();
      expect(sameTable(ruleset, listing!), `${ruleset}\n--- nft listed ---\n${listing!}`).toBe(true);
    }), { numRuns: 25 });
  }, 120_000);

  it('a directly routed node\'s table: the listing is the same table', async () => {
    await fc.assert(fc.asyncProperty(
      fc.uniqueArray(ipv4In((198 << 24) + (18 << 16), 40), { maxLength: 8 }), fc.uniqueArray(podCIDR, { minLength: 1, maxLength: 3 }),
      async (deviceAddresses, podCIDRs) => {
        const ruleset = renderDirectRuleset({ table: TABLE, deviceAddresses, podCIDRs });
        await nft.replace(ruleset);
        const listing = await nft.list();
        expect(sameTable(ruleset, listing ?? ''), `${ruleset}\n--- nft listed ---\n${listing ?? ''}`).toBe(true);
      }), { numRuns: 15 });
  }, 60_000);

  it('a table changed behind the agent\'s back (a rule deleted, an element added, a rule added) is not the same table', async () => {
    const ruleset = renderRuleset({ table: TABLE, vxlanDevice: 'chorus-4096', port: 4789, vni: 4096, underlayDevice: 'eth0', allowedVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.16.1'], podCIDRs: ['198.19.0.0/24'] });
    const run = (args: string[]): Promise<unknown> => execa('ip', ['netns', 'exec', ns, 'nft', ...args]);
    const handles = async (): Promise<string[]> => [...String((await execa('ip', ['netns', 'exec', ns, 'nft', '-a', 'list', 'chain', 'inet', TABLE, 'input'])).stdout).matchAll(/# handle (\d+)/g)].map((m) => m[1]!);
    await nft.replace(ruleset);
    expect(sameTable(ruleset, (await nft.list())!)).toBe(true);
    await run(['delete', 'rule', 'inet', TABLE, 'input', 'handle', (await handles()).at(-1)!]);
    expect(sameTable(ruleset, (await nft.list())!)).toBe(false);
    await nft.replace(ruleset);
    await run(['add', 'element', 'inet', TABLE, 'allowed-vteps', '{ 198.18.0.99 }']);
    expect(sameTable(ruleset, (await nft.list())!)).toBe(false);
    await nft.replace(ruleset);
    await run(['add', 'rule', 'inet', TABLE, 'input', 'udp', 'dport', '4789', 'accept']);
    expect(sameTable(ruleset, (await nft.list())!)).toBe(false);
  });
});
