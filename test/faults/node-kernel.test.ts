// Node-side faults (issue 13, "agent and kernel faults" and "start-up never wedges"), on one lab:
// - the node's nftables ruleset is flushed (a firewall service reloading, `nft flush ruleset`),
//   then the agent's table alone is deleted: the agent hears it from `nft monitor` and puts its
//   table back; pod traffic from the device never stops. The time until the table is back is
//   printed (not asserted).
// - `ip` hangs (a wrapper first on the agent's PATH that sleeps when told to): each command is
//   killed at the agent's --command-deadline, the agent says so (/readyz, an Event, a metric) and
//   stays up, and repairs the overlay as soon as `ip` answers again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabDocument } from '../lab/lab.ts';
import { agentArgs } from '../lab/lab.ts';
import { CLI_PATH } from '../lab/processes.ts';
import { eventually } from '../support/apiserver.ts';
import { E2E_SKIP_REASON, IS_ROOT, cli, httpFromNetns, inNetns, labCore, labDown, labUp, lossFromDevice, answersWithin } from '../support/lab.ts';

let doc: LabDocument;

/** Pids whose command line is `cmdline` (NUL-separated), in any namespace or in the named one. */
function processesIn(netns: string | undefined, cmdline: string): string[] {
  const inode = netns ? statSync(`/run/netns/${netns}`).ino : undefined;
  return readdirSync('/proc').filter((pid) => /^\d+$/.test(pid)).filter((pid) => {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8') !== cmdline) return false;
      return inode === undefined || statSync(`/proc/${pid}/ns/net`).ino === inode;
    } catch {
      return false;
    }
  });
}

/** Processes running the wrapper's `sleep 3600` (a hung ip). */
const hangingIps = (): string[] => processesIn(undefined, 'sleep\u00003600\u0000');

describe.skipIf(!IS_ROOT)('fault: node-side (firewall flushed, ip hanging)', () => {
  beforeAll(async () => {
    doc = await labUp(['--nodes', '1', '--pods-per-node', '1']);
  }, 180_000);

  afterAll(async () => {
    await labDown(doc);
  }, 60_000);

  it('puts the table back at once, and a 50 pps ping from the device loses nothing', async () => {
    const node = doc.nodes[0]!;
    const listing = async (): Promise<string> => String((await inNetns(node.netns, ['nft', '-s', 'list', 'table', 'inet', 'chorus-kube-router'])).stdout);
    const original = await listing();
    expect(original).toMatch(/^table inet chorus-kube-router \{/);
    const backAfter = async (fault: string): Promise<number> => {
      await inNetns(node.netns, ['sh', '-c', fault], true);
      const started = performance.now();
      await eventually(`the table back after ${fault}`, async () => ((await listing()) === original ? true : undefined), 10_000);
      return performance.now() - started;
    };
    const times: number[] = [];
    const { loss, output } = await lossFromDevice(doc, node.pods[0]!.ip, 9, async () => {
      await new Promise((r) => setTimeout(r, 1_000));
      times.push(await backAfter('nft flush ruleset'));
      await new Promise((r) => setTimeout(r, 1_000));
      times.push(await backAfter('nft delete table inet chorus-kube-router'));
      await new Promise((r) => setTimeout(r, 1_000));
      // the agent's `nft monitor` dies, and the table is deleted while nothing listens
      const monitors = processesIn(node.netns, 'nft\u0000monitor\u0000');
      expect(monitors.length).toBe(1);
      process.kill(Number(monitors[0]), 'SIGKILL');
      times.push(await backAfter('nft delete table inet chorus-kube-router'));
    }, { untilDone: true });
    expect(loss, output).toBe(0);
    await eventually('a new nft monitor', () => (processesIn(node.netns, 'nft\u0000monitor\u0000').length === 1 ? true : undefined), 10_000);
    console.log(`firewall-flushed fault: table back (the same listing) after a ruleset flush in ${Math.round(times[0] ?? 0)} ms, after a table delete in ${Math.round(times[1] ?? 0)} ms, after a table delete with the agent's nft monitor killed in ${Math.round(times[2] ?? 0)} ms; ${output.split('\n').find((l) => l.includes('packet loss'))?.trim() ?? ''}`);
  }, 60_000);

  it('an ip that hangs is killed at its deadline; the agent reports it, stays up, and repairs once ip answers', async () => {
    const added = JSON.parse(String((await cli(['lab', 'add-node', '--pods', '1', '--no-agent'])).stdout)) as LabDocument['nodes'][number];
    const ns = added.netns;
    const dir = mkdtempSync(join(tmpdir(), 'hung-ip-'));
    const realIp = String((await inNetns(ns, ['sh', '-c', 'command -v ip'], true)).stdout).trim();
    writeFileSync(join(dir, 'ip'), `#!/bin/sh\n[ -e ${dir}/hang ] && exec sleep 3600\nexec ${realIp} "$@"\n`, { mode: 0o755 });
    const agent = spawn('ip', ['netns', 'exec', ns, process.execPath, '--disable-warning=ExperimentalWarning', CLI_PATH, 'agent', '--kubeconfig', doc.labKubeconfig, '--node-name', added.name, '--command-deadline', '2s', ...agentArgs(added.underlayIP)],
      { stdio: 'ignore', env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` } });
    const url = (path: string): string => added.agentHealthURL.replace('/healthz', path);
    try {
      await eventually('the agent ready', async () => ((await httpFromNetns(ns, url('/readyz')).catch(() => undefined))?.status === 200 ? true : undefined), 30_000);
      // the agent is ready once its own side is; the device gets the node's entry on its own time
      expect(await answersWithin(doc.device.netns, added.pods[0]!.ip, 10_000)).toBe(true);
      // ip hangs from now on; the overlay device is deleted under the agent, which must repair it
      writeFileSync(join(dir, 'hang'), '');
      await inNetns(ns, [realIp, 'link', 'del', 'chorus-100000'], true);
      const started = performance.now();
      const reason = await eventually('the timeout on /readyz', async () => {
        const r = await httpFromNetns(ns, url('/readyz')).catch(() => undefined);
        return r?.status === 503 && r.body.includes('did not finish within 2 s') ? r.body : undefined;
      }, 20_000);
      const reportedAfter = performance.now() - started;
      expect(reason).toMatch(/programming failed: ip .* did not finish within 2 s: killed/);
      expect((await httpFromNetns(ns, url('/livez'))).status).toBe(200); // alive: the pass ends at each deadline
      const timeouts = (await httpFromNetns(ns, url('/metrics'))).body.split('\n').find((l) => l.startsWith('chorus_agent_command_timeouts_total'));
      expect(Number(timeouts?.split(' ').pop())).toBeGreaterThanOrEqual(1);
      await eventually('a KernelCommandTimedOut Event on the Node', async () => {
        const events = await labCore(doc).listNamespacedEvent({ namespace: 'default' });
        return events.items.some((e) => e.involvedObject.name === added.name && e.reason === 'KernelCommandTimedOut') ? true : undefined;
      });
      // no sleeping ip left behind: each was killed at its deadline
      expect(hangingIps().length).toBeLessThanOrEqual(1); // at most the one running now
      // ip answers again: the retry (backoff) repairs the device and the pods answer
      rmSync(join(dir, 'hang'));
      const unhung = performance.now();
      await eventually('the agent ready again', async () => ((await httpFromNetns(ns, url('/readyz')).catch(() => undefined))?.status === 200 ? true : undefined), 60_000);
      const repairedAfter = performance.now() - unhung;
      expect(await answersWithin(doc.device.netns, added.pods[0]!.ip, 10_000)).toBe(true);
      expect(agent.exitCode).toBeNull();
      expect(hangingIps()).toEqual([]);
      console.log(`hung-ip fault: reported on /readyz ${Math.round(reportedAfter)} ms after ip began to hang (deadline 2 s); repaired ${Math.round(repairedAfter)} ms after ip answered again`);
    } finally {
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

if (!IS_ROOT) {
  console.warn(E2E_SKIP_REASON);
  describe(E2E_SKIP_REASON, () => {
    it.skip('firewall flushed fault', () => undefined);
  });
}
