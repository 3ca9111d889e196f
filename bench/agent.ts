/**
 * Agent footprint and repair latency (issue: benchmarks, part 4), in the lab with real kernel VXLAN:
 *   - agent RSS and CPU over an idle period (BENCH_IDLE_S, default 60 s);
 *   - time from `ip link del` of the overlay device to the device being back with its FDB;
 *   - time from an FDB flush to the entries being back;
 *   (BENCH_TRIALS each, default 50: RSS is read after these 100 repairs);
 *   - then more of the same repairs, 50 ms apart, up to BENCH_REPAIRS in all (default 1,000): RSS
 *     after them against RSS after the first 100 (the goal: no growth between 100 and 1,000);
 *   - start to ready: the agent killed (SIGKILL), the lab's supervisor starts it again as the
 *     kubelet would; from the new process's start (its /proc start time) to its /readyz answering
 *     200 (overlay programmed, hub info read), polled every 5 ms from the node's namespace
 *     (BENCH_STARTS, default 5; 10 ms clock ticks).
 * Reports p50/p95/p99; asserts nothing.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import type { LabDocument } from '../test/lab/lab.ts';
import { ms, saveResults, summary, table } from './stats.ts';
import { BENCH_COMPONENTS } from './harness.ts';

const CLI = fileURLToPath(new URL('../bin/chorus-kube-router', import.meta.url));
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? '60');
const TRIALS = Number(process.env.BENCH_TRIALS ?? '50');
const STARTS = Number(process.env.BENCH_STARTS ?? '5');
const REPAIRS = Number(process.env.BENCH_REPAIRS ?? '1000');
const DEV = 'chorus-100000';
const CLK_TCK = 100;

function procStats(pid: number): { rssKiB: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { rssKiB, cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

/**
 * Watches FDB changes with the kernel's own notifications (`bridge -timestamp monitor fdb`), so the
 * latency is measured between the kernel events (flood entry deleted -> flood entry back), not
 * skewed by how fast this process can poll.
 */
/** Seconds since boot at which a process started (/proc/<pid>/stat, field 22, in clock ticks). */
function startedAtUptime(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(fields[19]) / CLK_TCK;
}

/** Polls a URL from inside a namespace; prints `polling` once it answers 200, then `ready <uptime s>` at the first 200 after a failure. */
const READY_POLLER = `
import { readFileSync } from 'node:fs';
const url = process.argv[1];
let sawDown = false;
let said = false;
for (;;) {
  let ok = false;
  try { ok = (await fetch(url, { signal: AbortSignal.timeout(1000) })).status === 200; } catch {}
  if (ok && sawDown) { console.log('ready ' + readFileSync('/proc/uptime', 'utf8').split(' ')[0]); break; }
  if (ok && !said) { said = true; console.log('polling'); }
  if (!ok) sawDown = true;
  await new Promise((r) => setTimeout(r, 5));
}`;

async function agentPid(prefix: string): Promise<number | null> {
  const status = JSON.parse(String((await execa(CLI, ['lab', 'status', '--json', '--prefix', prefix])).stdout)) as LabDocument;
  return status.nodes[0]?.agentPid ?? null;
}

/**
 * Boot time in ms since the epoch, to put process start times on the log's clock: now less the
 * uptime (/proc/uptime, 10 ms steps). /proc/stat's btime is in whole seconds, which put this
 * measure up to a second off (it once read longer than the start to ready it is part of).
 */
function bootEpochMs(): number {
  return Date.now() - Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
}

/** ms from a process's start to the last "agent started" line of its log (code loaded, servers listening). */
function loadedAfterMs(doc: LabDocument, pid: number): number {
  const log = readFileSync(join(doc.dir, 'logs', `agent-${doc.nodes[0]?.name ?? ''}.log`), 'utf8').trim().split('\n');
  const line = log.reverse().find((l) => l.includes('"msg":"agent started"'));
  const at = line ? Date.parse((JSON.parse(line) as { time: string }).time) : NaN;
  return at - (bootEpochMs() + startedAtUptime(pid) * 1000);
}

/** Kills the agent; ms from its successor's process start to its /readyz answering 200, and to its code being loaded. */
async function startToReady(doc: LabDocument): Promise<{ readyMs: number; loadedMs: number }> {
  const node = doc.nodes[0]!;
  const oldPid = await agentPid(doc.prefix);
  if (oldPid === null) throw new Error('the lab reports no agent process');
  const poller = spawn('ip', ['netns', 'exec', node.netns, process.execPath, '--input-type=module', '-e', READY_POLLER, node.agentHealthURL.replace(/\/healthz$/, '/readyz')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: poller.stdout });
  const said = (word: string): Promise<string> => new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the readiness poller did not say "${word}" within 60 s`)), 60_000);
    lines.on('line', (l) => {
      if (l.startsWith(word)) {
        clearTimeout(t);
        resolve(l);
      }
    });
  });
  try {
    const polling = said('polling');
    const ready = said('ready');
    await polling;
    process.kill(oldPid, 'SIGKILL');
    const readyAt = Number((await ready).split(' ')[1]);
    const newPid = await agentPid(doc.prefix);
    if (newPid === null || newPid === oldPid) throw new Error('the agent answered /readyz but the lab reports no new process');
    return { readyMs: (readyAt - startedAtUptime(newPid)) * 1000, loadedMs: loadedAfterMs(doc, newPid) };
  } finally {
    poller.kill();
  }
}

class FdbMonitor {
  private readonly child: ReturnType<typeof spawn>;
  private stamp = 0;
  private deletedAt: number | undefined;
  private waiter: ((ms: number) => void) | undefined;

  constructor(netns: string) {
    this.child = spawn('ip', ['netns', 'exec', netns, 'bridge', '-timestamp', 'monitor', 'fdb'], { stdio: ['ignore', 'pipe', 'ignore'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const ts = /^Timestamp: .* (\d\d):(\d\d):(\d\d) \d{4} (\d+) usec/.exec(line);
      if (ts) {
        this.stamp = ((Number(ts[1]) * 60 + Number(ts[2])) * 60 + Number(ts[3])) * 1000 + Number(ts[4]) / 1000;
        return;
      }
      if (!line.includes('00:00:00:00:00:00')) return;
      if (line.startsWith('Deleted')) this.deletedAt ??= this.stamp;
      else if (this.deletedAt !== undefined && this.waiter) {
        const ms = this.stamp - this.deletedAt;
        this.deletedAt = undefined;
        this.waiter(ms);
        this.waiter = undefined;
      }
    });
  }

  /** Runs `breakIt` and resolves with the ms from the flood entry's deletion to its return. */
  async timeToRepair(netns: string, breakIt: string[]): Promise<number> {
    const repaired = new Promise<number>((resolve) => {
      this.waiter = resolve;
      setTimeout(() => resolve(NaN), 10_000).unref();
    });
    await execa('ip', ['netns', 'exec', netns, ...breakIt]);
    return repaired;
  }

  close(): void {
    this.child.kill();
  }
}

async function main(): Promise<void> {
  process.stderr.write(`bench agent: lab up (1 node, 1 pod)\n`);
  const doc = JSON.parse(String((await execa(CLI, ['lab', 'up', '--json', '--nodes', '1', '--pods-per-node', '1', '--components', BENCH_COMPONENTS])).stdout)) as LabDocument;
  try {
    const node = doc.nodes[0]!;
    const pid = node.agentPid!;
    process.stderr.write(`bench agent: idle for ${IDLE_S} s\n`);
    // RSS over the run, for the chart: every 5 s while idle, then every 10 repairs
    const runStart = performance.now();
    const rssSeries: { seconds: number; phase: 'idle' | 'repairs'; repairs: number; rssMiB: number }[] = [];
    const sample = (phase: 'idle' | 'repairs', repairs: number): void => {
      rssSeries.push({ seconds: (performance.now() - runStart) / 1000, phase, repairs, rssMiB: procStats(pid).rssKiB / 1024 });
    };
    const a = procStats(pid);
    for (let t = 0; t < IDLE_S; t += 5) {
      sample('idle', 0);
      await new Promise((r) => setTimeout(r, Math.min(5, IDLE_S - t) * 1000));
    }
    const b = procStats(pid);
    const cpuPercent = ((b.cpuTicks - a.cpuTicks) / CLK_TCK / IDLE_S) * 100;
    process.stderr.write(`bench agent: ${TRIALS} device deletions and ${TRIALS} FDB flushes\n`);
    const linkDel: number[] = [];
    const fdbFlush: number[] = [];
    const monitor = new FdbMonitor(node.netns);
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < TRIALS; i++) {
      linkDel.push(await monitor.timeToRepair(node.netns, ['ip', 'link', 'del', DEV]));
      await new Promise((r) => setTimeout(r, 200));
      fdbFlush.push(await monitor.timeToRepair(node.netns, ['bridge', 'fdb', 'flush', 'dev', DEV]));
      await new Promise((r) => setTimeout(r, 200));
      if ((2 * (i + 1)) % 10 === 0) sample('repairs', 2 * (i + 1));
    }
    const after = procStats(pid);
    const ld = summary(linkDel);
    const ff = summary(fdbFlush);
    // the long run: repairs until REPAIRS in all, timed too but apart (50 ms between, not 200)
    const more = Math.max(0, Math.ceil((REPAIRS - 2 * TRIALS) / 2));
    if (more > 0) process.stderr.write(`bench agent: ${more} more of each, to ${2 * (TRIALS + more)} repairs in all\n`);
    const longRun: number[] = [];
    let unrepaired = 0;
    for (let i = 0; i < more; i++) {
      for (const breakIt of [['ip', 'link', 'del', DEV], ['bridge', 'fdb', 'flush', 'dev', DEV]]) {
        const t = await monitor.timeToRepair(node.netns, breakIt);
        if (Number.isNaN(t)) unrepaired++;
        else longRun.push(t);
        await new Promise((r) => setTimeout(r, 50));
      }
      const done = 2 * (TRIALS + i + 1);
      if (done % 50 === 0) sample('repairs', done);
      if (done % 200 === 0) process.stderr.write(`bench agent: ${done} repairs, RSS ${(procStats(pid).rssKiB / 1024).toFixed(1)} MiB\n`);
    }
    monitor.close();
    const afterLong = procStats(pid);
    const lr = summary(longRun);
    process.stderr.write(`bench agent: ${STARTS} restarts (SIGKILL), start to ready\n`);
    const starts: number[] = [];
    const loads: number[] = [];
    for (let i = 0; i < STARTS; i++) {
      const s = await startToReady(doc);
      starts.push(s.readyMs);
      loads.push(s.loadedMs);
      // the supervisor restarts a process that lived 3 s after 1 s, as a kubelet's first restart
      await new Promise((r) => setTimeout(r, 3_500));
    }
    const st = summary(starts);
    const lo = summary(loads);
    const results = {
      components: BENCH_COMPONENTS, idleSeconds: IDLE_S, trials: TRIALS, repairs: 2 * TRIALS,
      agent: { rssMiBIdleStart: a.rssKiB / 1024, rssMiBIdleEnd: b.rssKiB / 1024, rssMiBAfterRepairs: after.rssKiB / 1024, cpuPercentIdle: cpuPercent },
      longRun: { repairs: 2 * (TRIALS + more), rssMiBAfter: afterLong.rssKiB / 1024, growthMiB: (afterLong.rssKiB - after.rssKiB) / 1024, repairMs: lr, unrepaired },
      repairAfterLinkDelMs: ld, repairAfterFdbFlushMs: ff, startToReadyMs: st, startToLoadedMs: lo, rssSeries,
    };
    console.log(table([
      ['measure', 'value'],
      ['agent run from', BENCH_COMPONENTS],
      ['agent RSS, idle (start / end)', `${(a.rssKiB / 1024).toFixed(1)} / ${(b.rssKiB / 1024).toFixed(1)} MiB`],
      [`agent CPU over ${IDLE_S} s idle`, `${cpuPercent.toFixed(2)} %`],
      [`agent RSS after ${2 * TRIALS} repairs`, `${(after.rssKiB / 1024).toFixed(1)} MiB`],
      [`agent RSS after ${2 * (TRIALS + more)} repairs (growth since ${2 * TRIALS})`, `${(afterLong.rssKiB / 1024).toFixed(1)} MiB (${((afterLong.rssKiB - after.rssKiB) / 1024).toFixed(1)} MiB)`],
      [`  repairs of the long run, both kinds (n=${lr.n}, ${unrepaired} not seen within 10 s)`, `p50 ${ms(lr.p50)}  p99 ${ms(lr.p99)}`],
      [`repair after ip link del (n=${ld.n})`, `p50 ${ms(ld.p50)}  p95 ${ms(ld.p95)}  p99 ${ms(ld.p99)}`],
      [`repair after fdb flush (n=${ff.n})`, `p50 ${ms(ff.p50)}  p95 ${ms(ff.p95)}  p99 ${ms(ff.p99)}`],
      [`agent start to ready (n=${st.n})`, `p50 ${ms(st.p50)}  max ${ms(st.max)}`],
      ['  of which: start to code loaded and serving (log "agent started")', `p50 ${ms(lo.p50)}  max ${ms(lo.max)}`],
    ]));
    console.log(`saved ${saveResults('agent', results)}`);
  } finally {
    await execa(CLI, ['lab', 'down', '--prefix', doc.prefix], { reject: false });
  }
}

await main();
