// The Citrix ADC path end to end: the coordinator's NITRO driver programs the emulated ADC,
// whose network namespace reaches every pod only because the emulator applied what it was sent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabDocument } from '../lab/lab.ts';
import type { NitroCall } from '../emulators/nitro/server.ts';
import { eventually } from '../support/apiserver.ts';
import { E2E_SKIP_REASON, IS_ROOT, cli, emulatorCalls, inNetns, labStatus, labUp, pingOnce, labDown, podSeesFromDevice } from '../support/lab.ts';

let doc: LabDocument;

/** The emulator's record of NITRO calls, fetched over HTTPS from inside the lab (verified with the lab CA). */
const nitroCalls = (): Promise<NitroCall[]> => emulatorCalls<NitroCall>(doc, { 'X-NITRO-USER': doc.device.api.username ?? '', 'X-NITRO-PASS': doc.device.api.password ?? '' });

const writes = (calls: NitroCall[]): string[] => calls.filter((c) => c.write && c.status > 0 && c.status < 300).map((c) => `${c.method} ${c.resource}${c.action ? `?${c.action}` : ''}`);

describe.skipIf(!IS_ROOT)('Citrix ADC end to end (lab: 2 nodes x 1 pod, NITRO emulator)', () => {
  beforeAll(async () => {
    doc = await labUp(['--nodes', '2', '--pods-per-node', '1', '--device', 'citrix']);
  }, 180_000);

  afterAll(async () => {
    await labDown(doc);
  }, 60_000);

  it('reports the device API with lab-only credentials and the emulator CA', () => {
    expect(doc.device).toMatchObject({ type: 'citrix', api: { url: 'https://198.18.0.3/nitro/v1/config', kind: 'nitro', username: 'chorus-lab', password: expect.any(String), caFile: expect.stringContaining('ca.crt') } });
  });

  it('reaches every pod from the ADC by ping and TCP', async () => {
    for (const n of doc.nodes) expect(await pingOnce(doc.device.netns, n.pods[0]!.ip)).toBe(true);
    expect(await podSeesFromDevice(doc, doc.nodes[0]!.pods[0]!)).toBe(doc.device.overlayIPs[0]);
  });

  it('follows a node join and leave with a few NITRO calls each, and none at steady state', async () => {
    // let the debounced save of the initial sync happen first: 2.5 s without a write
    await eventually('a quiet ADC', async () => {
      const calls = await nitroCalls();
      const n = calls.length;
      await new Promise((r) => setTimeout(r, 2_500));
      return writes((await nitroCalls()).slice(n)).length === 0 ? true : undefined;
    }, 30_000);
    const before = (await nitroCalls()).length;
    await new Promise((r) => setTimeout(r, 1_500));
    expect(writes((await nitroCalls()).slice(before))).toEqual([]);
    const added = JSON.parse(String((await cli(['lab', 'add-node', '--pods', '1'])).stdout)) as LabDocument['nodes'][number];
    expect(await pingOnce(doc.device.netns, added.pods[0]!.ip)).toBe(true);
    // the debounced config save ends the join's writes
    const joinWrites = await eventually('the save after the join', async () => {
      const w = writes((await nitroCalls()).slice(before));
      return w.includes('POST nsconfig?save') ? w : undefined;
    });
    expect(joinWrites).toEqual(['POST arp', 'POST route', 'POST nsconfig?save']);
    const mark = (await nitroCalls()).length;
    await cli(['lab', 'remove-node', added.name]);
    await eventually('route gone from the ADC namespace', async () => (!String((await inNetns(doc.device.netns, ['ip', 'route'], true)).stdout).includes(added.podCIDRs[0]!) ? true : undefined));
    const leaveWrites = await eventually('the save after the leave', async () => {
      const w = writes((await nitroCalls()).slice(mark));
      return w.includes('POST nsconfig?save') ? w : undefined;
    });
    expect(leaveWrites.sort()).toEqual(['DELETE arp', 'DELETE route', 'POST nsconfig?save']);
  });

  it('re-adds nothing after a coordinator restart', async () => {
    const pid = (await labStatus()).coordinators[0]!.pid!;
    const mark = (await nitroCalls()).length;
    process.kill(pid, 'SIGTERM');
    await eventually('coordinator back', async () => {
      const now = (await labStatus()).coordinators[0]!.pid;
      return now !== null && now !== pid ? now : undefined;
    }, 15_000);
    await eventually('the new coordinator has looked at the ADC', async () => ((await nitroCalls()).slice(mark).some((c) => c.method === 'GET' && c.resource === 'route') ? true : undefined), 20_000);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(writes((await nitroCalls()).slice(mark)).filter((w) => !w.startsWith('POST nsconfig'))).toEqual([]);
    for (const n of doc.nodes) expect(await pingOnce(doc.device.netns, n.pods[0]!.ip)).toBe(true);
  });
});

if (!IS_ROOT) {
  console.warn(E2E_SKIP_REASON);
  describe(E2E_SKIP_REASON, () => {
    it.skip('Citrix end to end', () => undefined);
  });
}
