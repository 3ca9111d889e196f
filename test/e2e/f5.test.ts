// The F5 BIG-IP path end to end: the coordinator's iControl REST driver programs the emulated
// BIG-IP, whose network namespace reaches every pod only because the emulator applied what it
// was sent (tunnel -> VXLAN device, self IP -> address, FDB records, static ARP, routes).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import type { LabDocument } from '../lab/lab.ts';
import type { IControlCall } from '../emulators/icontrol/server.ts';
import { eventually } from '../support/apiserver.ts';
import { f5JoinWrites, f5Writes } from '../support/icontrol.ts';
import { E2E_SKIP_REASON, IS_ROOT, cli, emulatorCalls, inNetns, labStatus, labUp, pingOnce, labDown, podSeesFromDevice } from '../support/lab.ts';

let doc: LabDocument;

/** The emulator's record of iControl calls, fetched over HTTPS from inside the lab (verified with the lab CA, HTTP Basic). */
const calls = (): Promise<IControlCall[]> => emulatorCalls<IControlCall>(doc, { Authorization: `Basic ${Buffer.from(`${doc.device.api.username ?? ''}:${doc.device.api.password ?? ''}`).toString('base64')}` });


/** Waits for 2.5 s without a write (the debounced config save of earlier changes has happened). */
async function quiet(): Promise<void> {
  await eventually('a quiet BIG-IP', async () => {
    const n = (await calls()).length;
    await new Promise((r) => setTimeout(r, 2_500));
    return f5Writes((await calls()).slice(n)).length === 0 ? true : undefined;
  }, 30_000);
}

describe.skipIf(!IS_ROOT)('F5 BIG-IP end to end (lab: 2 nodes x 1 pod, iControl REST emulator)', () => {
  beforeAll(async () => {
    doc = await labUp(['--nodes', '2', '--pods-per-node', '1', '--device', 'f5']);
  }, 180_000);

  afterAll(async () => {
    await labDown(doc);
  }, 60_000);

  it('reports the device API with lab-only credentials and the emulator CA', () => {
    expect(doc.device).toMatchObject({ type: 'f5', api: { url: 'https://198.18.0.3/mgmt/tm', kind: 'icontrol', username: 'chorus-lab', password: expect.any(String), caFile: expect.stringContaining('ca.crt') } });
  });

  it('reaches every pod from the BIG-IP by ping and TCP through the tunnel it was given', async () => {
    const link = String((await inNetns(doc.device.netns, ['ip', '-d', 'link', 'show', 'f5vx100000'], true)).stdout);
    expect(link).toMatch(/vxlan id 100000 local 198\.18\.0\.3/);
    const fdb = String((await inNetns(doc.device.netns, ['bridge', 'fdb', 'show', 'dev', 'f5vx100000'], true)).stdout);
    for (const n of doc.nodes) expect(fdb).toContain(`dst ${n.underlayIP}`);
    for (const n of doc.nodes) expect(await pingOnce(doc.device.netns, n.pods[0]!.ip)).toBe(true);
    expect(await podSeesFromDevice(doc, doc.nodes[0]!.pods[0]!)).toBe(doc.device.overlayIPs[0]);
  });

  it('follows a node join and leave with one small transaction each, and writes nothing at steady state', async () => {
    await quiet();
    const before = (await calls()).length;
    await new Promise((r) => setTimeout(r, 1_500));
    expect(f5Writes((await calls()).slice(before))).toEqual([]);
    const added = JSON.parse(String((await cli(['lab', 'add-node', '--pods', '1'])).stdout)) as LabDocument['nodes'][number];
    expect(await pingOnce(doc.device.netns, added.pods[0]!.ip)).toBe(true);
    // the debounced config save ends the join's writes
    const join = await eventually('the save after the join', async () => {
      const c = (await calls()).slice(before);
      return f5Writes(c).includes('POST /mgmt/tm/sys/config') ? c : undefined;
    });
    expect(f5Writes(join)).toEqual(f5JoinWrites(100000));
    expect(join.filter((c) => c.method !== 'GET').length).toBeLessThanOrEqual(7);
    const mark = (await calls()).length;
    await cli(['lab', 'remove-node', added.name]);
    await eventually('route gone from the BIG-IP namespace', async () => (!String((await inNetns(doc.device.netns, ['ip', 'route'], true)).stdout).includes(added.podCIDRs[0]!) ? true : undefined));
    const leave = await eventually('the save after the leave', async () => {
      const w = f5Writes((await calls()).slice(mark));
      return w.includes('POST /mgmt/tm/sys/config') ? w : undefined;
    });
    expect(leave).toEqual([
      'POST /mgmt/tm/transaction',
      'DELETE /mgmt/tm/net/route/~Common~chorus-100000-198.19.2.0_24 (queued)',
      'DELETE /mgmt/tm/net/arp/~Common~chorus-100000-198.18.16.4 (queued)',
      'PUT /mgmt/tm/net/fdb/tunnel/~Common~chorus-100000 (queued)',
      'PATCH /mgmt/tm/transaction/<id>',
      'POST /mgmt/tm/sys/config',
    ]);
  });

  it('status says each node is programmed on the BIG-IP', async () => {
    const status = async (): Promise<{ device: string; peers: { node: string; programmedOnDevice: boolean | null; deviceDetail: string | null }[] }> =>
      JSON.parse(String((await cli(['status', '--kubeconfig', doc.kubeconfig, '--json'])).stdout)) as { device: string; peers: { node: string; programmedOnDevice: boolean | null; deviceDetail: string | null }[] };
    await eventually('all programmed', async () => ((await status()).peers.every((p) => p.programmedOnDevice === true) ? true : undefined));
    expect((await status()).device).toBe('f5');
    const table = String((await cli(['status', '--kubeconfig', doc.kubeconfig])).stdout);
    expect(table).toMatch(/^node-1 .* yes +yes$/m);
  });

  it('rewrites nothing and cuts no traffic across a coordinator restart', async () => {
    await quiet();
    const pid = (await labStatus()).coordinators[0]!.pid!;
    const mark = (await calls()).length;
    const pod = doc.nodes[1]!.pods[0]!;
    // ping through the restart: 20 per second for the whole window
    const pinger = spawn('ip', ['netns', 'exec', doc.device.netns, 'ping', '-i', '0.05', '-W', '1', pod.ip], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    pinger.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await new Promise((r) => setTimeout(r, 500));
      process.kill(pid, 'SIGTERM');
      await eventually('coordinator back', async () => {
        const now = (await labStatus()).coordinators[0]!.pid;
        return now !== null && now !== pid ? now : undefined;
      }, 15_000);
      await eventually('the new coordinator has looked at the BIG-IP', async () => ((await calls()).slice(mark).some((c) => c.method === 'GET' && c.path === '/mgmt/tm/net/route') ? true : undefined), 20_000);
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      pinger.kill('SIGINT');
      await new Promise((r) => pinger.once('close', r));
    }
    expect(f5Writes((await calls()).slice(mark))).toEqual([]);
    const sent = (out.match(/icmp_seq=/g) ?? []).length;
    const seqs = [...out.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1]));
    const last = Math.max(...seqs);
    expect(sent).toBeGreaterThan(20);
    expect(last - sent).toBeLessThanOrEqual(1); // no gap in the sequence: nothing lost while the coordinator restarted
  });
});

if (!IS_ROOT) {
  console.warn(E2E_SKIP_REASON);
  describe(E2E_SKIP_REASON, () => {
    it.skip('F5 end to end', () => undefined);
  });
}
