/**
 * Data-plane convergence in the lab (real kernel VXLAN, Linux device): BENCH_JOINS node joins
 * (default 20), each timed from its Node object's creation (the lab's add-node answer comes
 * right after it) to the first ping from the device that a pod on it answers; and the packet
 * loss of a 100 pps ping while the agent is restarted BENCH_RESTARTS times (SIGTERM, SIGKILL).
 * Then the same joins in a lab with --routing direct (issue 18): join -> route on the device and
 * join -> first ping, beside VXLAN mode.
 */
import { execa } from 'execa';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LabDocument, NodeDoc } from '../test/lab/lab.ts';
import { controlRequest } from '../test/lab/control.ts';
import { ms, saveResults, summary, table } from './stats.ts';
import { BENCH_COMPONENTS } from './harness.ts';

const CLI = fileURLToPath(new URL('../bin/chorus-kube-router', import.meta.url));
const JOINS = Number(process.env.BENCH_JOINS ?? '20');
const RESTARTS = Number(process.env.BENCH_RESTARTS ?? '6');

async function firstPing(netns: string, ip: string, t0: number): Promise<number> {
  for (;;) {
    const r = await execa('ip', ['netns', 'exec', netns, 'ping', '-c', '1', '-W', '0.05', '-n', '-q', ip], { reject: false });
    if (r.exitCode === 0) return performance.now() - t0;
    if (performance.now() - t0 > 30_000) return NaN;
  }
}

/** The pid the lab's supervisor lists for the node's agent, once it is one that is alive. */
async function liveAgentPid(sock: string, node: string, not: number | undefined, withinMs: number): Promise<number> {
  const deadline = performance.now() + withinMs;
  for (;;) {
    const status = (await controlRequest(sock, 'GET', '/status')) as LabDocument;
    const pid = status.nodes.find((n) => n.name === node)?.agentPid;
    if (pid && pid !== not) {
      try {
        process.kill(pid, 0);
        return pid;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
    if (performance.now() > deadline) throw new Error(`the lab listed no live agent for ${node} within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Signals the node's agent and waits until the supervisor has started a new one. The lab restarts
 * a process about 1 s after it dies, with backoff unless it ran 3 s: the caller spaces the kills
 * from the new agent's start, not from the signal, so a loaded machine never pushes it into backoff.
 */
async function restartAgent(sock: string, node: string, signal: NodeJS.Signals): Promise<void> {
  const pid = await liveAgentPid(sock, node, undefined, 10_000);
  process.kill(pid, signal);
  await liveAgentPid(sock, node, pid, 35_000);
}

interface JoinTimes { joins: number[]; withNamespaces: number[]; toDevice: number[] }

/** JOINS node joins: Node created -> the device routes its pod CIDR, and -> the first ping a pod answers. */
async function measureJoins(lab: LabDocument, mode: string): Promise<JoinTimes> {
  const sock = join(lab.dir, 'control.sock');
  const out: JoinTimes = { joins: [], withNamespaces: [], toDevice: [] };
  for (let i = 0; i < JOINS; i++) {
    const t = performance.now();
    const node = (await controlRequest(sock, 'POST', '/nodes?pods=1')) as NodeDoc;
    const t0 = performance.now();
    for (;;) {
      const r = await execa('ip', ['-n', lab.device.netns, 'route', 'show', node.podCIDRs[0]!], { reject: false });
      if (String(r.stdout).trim() !== '' || performance.now() - t0 > 30_000) break;
    }
    out.toDevice.push(performance.now() - t0);
    const joined = await firstPing(lab.device.netns, node.pods[0]!.ip, t0);
    out.joins.push(joined);
    out.withNamespaces.push(joined + (t0 - t));
    process.stderr.write(`bench dataplane (${mode}): join ${i + 1}/${JOINS}: device ${out.toDevice.at(-1)!.toFixed(0)} ms, first ping ${joined.toFixed(0)} ms\n`);
  }
  return out;
}

/** The same joins in a lab whose coordinator routes every node directly (--routing direct). */
async function directJoins(): Promise<JoinTimes> {
  const lab = JSON.parse(String((await execa(CLI, ['lab', 'up', '--json', '--nodes', '1', '--pods-per-node', '1', '--routing', 'direct', '--components', BENCH_COMPONENTS])).stdout)) as LabDocument;
  try {
    return await measureJoins(lab, 'direct');
  } finally {
    await execa(CLI, ['lab', 'down', '--prefix', lab.prefix], { reject: false });
  }
}

const doc = JSON.parse(String((await execa(CLI, ['lab', 'up', '--json', '--nodes', '1', '--pods-per-node', '1', '--components', BENCH_COMPONENTS])).stdout)) as LabDocument;
try {
  const sock = join(doc.dir, 'control.sock');
  const vxlan = await measureJoins(doc, 'vxlan');
  const { joins, withNamespaces } = vxlan;
  const target = doc.nodes[0]!;
  // 100 pps until the last restart is done, however long a loaded machine takes for them
  const ping = execa('ip', ['netns', 'exec', doc.device.netns, 'ping', '-i', '0.01', '-W', '1', '-q', target.pods[0]!.ip], { reject: false });
  for (let k = 0; k < RESTARTS; k++) {
    await restartAgent(sock, target.name, k % 2 === 0 ? 'SIGTERM' : 'SIGKILL');
    await new Promise((r) => setTimeout(r, 3_500));
  }
  ping.kill('SIGINT');
  const out = String((await ping).stdout);
  const count = Number(/(\d+) packets transmitted/.exec(out)?.[1] ?? NaN);
  const loss = Number(/([\d.]+)% packet loss/.exec(out)?.[1] ?? NaN);
  await execa(CLI, ['lab', 'down', '--prefix', doc.prefix], { reject: false });
  const direct = await directJoins();
  const j = summary(joins);
  const w = summary(withNamespaces);
  const jd = summary(direct.joins);
  const dv = summary(vxlan.toDevice);
  const dd = summary(direct.toDevice);
  console.log(table([
    ['measure', 'value'],
    [`node join -> first ping from the device (n=${j.n})`, `p50 ${ms(j.p50)}  p95 ${ms(j.p95)}  p99 ${ms(j.p99)}`],
    ['the same, including building the node\'s namespaces', `p50 ${ms(w.p50)}  p99 ${ms(w.p99)}`],
    [`node join -> route on the device, vxlan / direct (n=${dv.n})`, `p50 ${ms(dv.p50)} / ${ms(dd.p50)}  p99 ${ms(dv.p99)} / ${ms(dd.p99)}`],
    [`node join -> first ping, direct routing (n=${jd.n})`, `p50 ${ms(jd.p50)}  p95 ${ms(jd.p95)}  p99 ${ms(jd.p99)}`],
    [`ping loss at 100 pps over ${RESTARTS} agent restarts`, `${loss}% of ${count}`],
  ]));
  console.log(`saved ${saveResults('dataplane', { components: BENCH_COMPONENTS, joins: j, joinSamplesMs: joins, joinsWithNamespaces: w, joinToDevice: dv, directJoins: jd, directJoinToDevice: dd, directJoinSamplesMs: direct.joins, restarts: RESTARTS, pings: count, lossPercent: loss })}`);
} finally {
  await execa(CLI, ['lab', 'down', '--prefix', doc.prefix], { reject: false });
}
