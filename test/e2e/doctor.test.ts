// `chorus-kube-router doctor` on a lab node: all PASS on a healthy node; with the agent frozen
// (SIGSTOP, so it cannot repair), each injected fault is named with its fix, and only it (plus
// the frozen agent itself) fails. The agent is thawed after each case and repairs the node.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabDocument } from '../lab/lab.ts';
import type { CheckResult } from '../../agent/doctor/checks.ts';
import { eventually } from '../support/apiserver.ts';
import { E2E_SKIP_REASON, IS_ROOT, cli, inNetns, labDown, labUp } from '../support/lab.ts';

let doc: LabDocument;
let node: LabDocument['nodes'][number];

/** doctor as an operator runs it in the node's agent pod (`lab doctor`: the node's namespace, NODE_NAME, the agent's ServiceAccount). */
async function doctor(): Promise<{ code: number; checks: CheckResult[]; text: string }> {
  // the JSON and the text run side by side: each waits out the same probes
  const [json, text] = await Promise.all([cli(['lab', 'doctor', node.name, '--json'], { reject: false }), cli(['lab', 'doctor', node.name], { reject: false })]);
  return { code: json.exitCode ?? -1, checks: (JSON.parse(String(json.stdout)) as { checks: CheckResult[] }).checks, text: String(text.stdout) };
}

/** doctor's exit code alone (0: every check passes). */
const doctorCode = async (): Promise<number> => (await cli(['lab', 'doctor', node.name, '--json'], { reject: false })).exitCode ?? -1;

const failed = (checks: readonly CheckResult[]): string[] => checks.filter((c) => !c.ok).map((c) => c.check).sort();

/** Freezes the node's agent, injects a fault, runs doctor, thaws the agent and waits for the repair. */
async function withFrozenAgent(inject: () => Promise<unknown>, undo: () => Promise<unknown> = () => Promise.resolve()): Promise<{ code: number; checks: CheckResult[]; text: string }> {
  const pid = node.agentPid ?? 0;
  process.kill(pid, 'SIGSTOP');
  try {
    await inject();
    return await doctor();
  } finally {
    process.kill(pid, 'SIGCONT');
    await undo();
    await eventually('the agent repaired the node', async () => ((await doctorCode()) === 0 ? true : undefined), 20_000);
  }
}

const sh = (netns: string, cmd: string): Promise<unknown> => inNetns(netns, ['sh', '-c', cmd], true);

describe.skipIf(!IS_ROOT)('chorus-kube-router doctor on a lab node', () => {
  beforeAll(async () => {
    doc = await labUp(['--nodes', '1', '--pods-per-node', '1']);
    node = doc.nodes[0]!;
  }, 180_000);

  afterAll(async () => {
    await labDown(doc);
  }, 60_000);

  it('passes every check on a healthy node, exit code 0', async () => {
    const r = await doctor();
    expect(failed(r.checks)).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.checks.map((c) => c.check)).toEqual(['inputs', 'overlay device', 'MTU', 'overlay address', 'FDB', 'neighbours and routes', 'firewall', 'rp_filter', 'ip_forward', 'device reachable', 'agent']);
    expect(r.text).toMatch(/^PASS {2}inputs/m);
  });

  it('names a missing overlay device, with its fix', async () => {
    const r = await withFrozenAgent(() => sh(node.netns, 'ip link del chorus-100000'));
    expect(r.code).toBe(1);
    expect(failed(r.checks)).toEqual(['agent', 'device-dependent checks', 'overlay device']);
    expect(r.text).toMatch(/FAIL {2}overlay device +chorus-100000 is missing\n {6}fix: .*ip link add chorus-100000 type vxlan id 100000 local 198\.18\.1\.1 dstport 4789 nolearning/);
  });

  it('names a wrong MTU, with its fix', async () => {
    const r = await withFrozenAgent(() => sh(node.netns, 'ip link set chorus-100000 mtu 1400'));
    expect(failed(r.checks)).toEqual(['MTU', 'agent']);
    expect(r.text).toMatch(/FAIL {2}MTU +chorus-100000 has MTU 1400, the overlay needs 1450\n {6}fix: ip link set chorus-100000 mtu 1450/);
  });

  it('names a missing FDB entry toward the device, with its fix', async () => {
    const r = await withFrozenAgent(() => sh(node.netns, 'bridge fdb del 02:c4:c6:12:10:01 dev chorus-100000 dst 198.18.0.3 self'));
    expect(failed(r.checks)).toEqual(['FDB', 'agent']);
    expect(r.text).toMatch(/FAIL {2}FDB +missing 02:c4:c6:12:10:01 -> 198\.18\.0\.3\n {6}fix: bridge fdb append 02:c4:c6:12:10:01 dev chorus-100000 dst 198\.18\.0\.3 self permanent/);
  });

  it('names a missing firewall rule, with its fix', async () => {
    const r = await withFrozenAgent(() => sh(node.netns, 'nft flush chain inet chorus-kube-router input'));
    expect(failed(r.checks)).toEqual(['agent', 'firewall']);
    expect(r.text).toMatch(/FAIL {2}firewall +table inet chorus-kube-router lacks the VXLAN source check \(udp dport 4789 @th,96,24 0x186a0 ip saddr != @allowed-vteps drop\); the underlay interface check \(udp dport 4789 @th,96,24 0x186a0 iifname != "[^"]+" drop\)\n {6}fix: /);
  });

  it('names an unreachable device when the node side is right', async () => {
    // the path drops VXLAN at the device (a firewall of someone else's), the agent keeps running
    await sh(doc.device.netns, 'nft add table ip doctor-test; nft add chain ip doctor-test input "{ type filter hook input priority -20; }"; nft add rule ip doctor-test input udp dport 4789 drop');
    try {
      const r = await doctor();
      expect(failed(r.checks)).toEqual(['device reachable']);
      expect(r.code).toBe(1);
      expect(r.text).toMatch(/FAIL {2}device reachable +198\.18\.16\.1 \(the device's overlay address\) did not answer 3 pings through chorus-100000\n {6}fix: .*UDP 4789 between 198\.18\.1\.1 and 198\.18\.0\.3/);
    } finally {
      await sh(doc.device.netns, 'nft delete table ip doctor-test');
    }
    expect((await doctor()).code).toBe(0);
  });
});

if (!IS_ROOT) {
  console.warn(E2E_SKIP_REASON);
  describe(E2E_SKIP_REASON, () => {
    it.skip('doctor', () => undefined);
  });
}
