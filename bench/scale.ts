/**
 * Scale sync, churn and steady state (control plane), ours against the older Citrix node
 * controller's behaviour in the same harness. For each N in BENCH_NODES (default 1000,5000):
 *   - initial sync: coordinator start -> every node's route and arp on the (emulated) ADC;
 *     coordinator peak RSS; API requests/writes and NITRO calls in total and per node; the
 *     largest ConfigMap;
 *   - steady state: a window of resyncs with nothing changed: API writes and NITRO writes;
 *   - churn: BENCH_CHURN nodes added then deleted at BENCH_RATE per second: latency from the Node
 *     event to the ADC being programmed (route present / gone), p50/p95/p99, writes per event.
 * Nothing is asserted; results go to bench/results/scale-*.json.
 */
import { readFileSync } from 'node:fs';
import type { V1Node } from '@kubernetes/client-node';
import { planCoordinator } from '../coordinator/plan.ts';
import { podCIDRsBySource } from '../coordinator/podcidr-sources.ts';
import { BaselineCnc } from './baseline-cnc.ts';
import { OVERLAY, PASSWORD, USER, VTEP, WRITE_VERBS, addNodes, nodeBody, programmedOnDevice, resource, startBench, startCoordinatorProcess, waitFor, type Bench } from './harness.ts';
import { saveResults, summary, table, ms } from './stats.ts';
import { ANNOTATION_OVERLAY_IP } from '../shared/keys.ts';

const SIZES = (process.env.BENCH_NODES ?? '1000,5000').split(',').map(Number).filter((n) => n > 0);
const CHURN = Number(process.env.BENCH_CHURN ?? '20');
const RATE = Number(process.env.BENCH_RATE ?? '5');
const STEADY_S = Number(process.env.BENCH_STEADY_S ?? '8');

/** The API writes since `from`, by verb and resource, and how many distinct objects they touched (a burst finishing, or the same objects rewritten). */
function writesByKind(b: Bench, from: number): { kinds: Record<string, number>; objects: number } {
  const writes = b.audit.slice(from).filter((r) => WRITE_VERBS.has(r.verb) && r.resource !== 'leases' && r.resource !== 'events');
  const kinds: Record<string, number> = {};
  for (const w of writes) kinds[`${w.verb} ${w.resource}`] = (kinds[`${w.verb} ${w.resource}`] ?? 0) + 1;
  return { kinds, objects: new Set(writes.map((w) => `${w.resource}/${w.name ?? ''}`)).size };
}
const apiWrites = (b: Bench, from = 0): number => b.audit.slice(from).filter((r) => WRITE_VERBS.has(r.verb) && r.resource !== 'leases' && r.resource !== 'events').length;
const deviceWrites = (b: Bench, from = 0): number => b.emulator.calls.slice(from).filter((c) => c.write).length;
const annotatedNodes = (b: Bench): number => b.api.store.list(resource(b.api, 'nodes'), undefined, () => true, () => true).items.filter((n) => (n.metadata.annotations ?? {})[ANNOTATION_OVERLAY_IP]).length;
const podNetwork = (i: number): string => `10.${Math.floor(i / 256) % 256}.${i % 256}.0`;
const routed = (b: Bench, network: string): boolean => b.emulator.store.list('route').some((r) => r.network === network);

/**
 * CPU time (user + system) a process has used, in ms, from /proc/<pid>/stat (clock ticks of 10 ms).
 * Unlike latency it hardly moves with the load beside it: per node event, it shows whether the
 * coordinator's work grows with the cluster.
 */
function cpuMs(pid: number | undefined): number {
  const fields = readFileSync(`/proc/${pid ?? 0}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
}
const CLOCK_TICKS_PER_S = 100;

/** `idleCpuMsPerS`: what the coordinator spends per second with nothing changing (its resyncs), taken off the churn's. */
async function churn(b: Bench, first: number, coordinatorPid: number | undefined, idleCpuMsPerS: number): Promise<{ join: number[]; leave: number[]; apiWritesPerEvent: number; deviceWritesPerEvent: number; coordinatorCpuMsPerEvent: number }> {
  const nodes = resource(b.api, 'nodes');
  const cpu0 = cpuMs(coordinatorPid);
  const t0 = performance.now();
  const a0 = b.audit.length;
  const d0 = b.emulator.calls.length;
  const join: number[] = [];
  const leave: number[] = [];
  const pending: Promise<void>[] = [];
  for (let k = 0; k < CHURN; k++) {
    const i = first + k;
    const t0 = performance.now();
    b.api.store.create(nodes, undefined, nodeBody(i));
    pending.push(waitFor(`node-${i} routed`, () => routed(b, podNetwork(i)), 60_000, 2).then(() => void join.push(performance.now() - t0)));
    await new Promise((r) => setTimeout(r, 1000 / RATE));
  }
  await Promise.all(pending.splice(0));
  for (let k = 0; k < CHURN; k++) {
    const i = first + k;
    const t0 = performance.now();
    b.api.store.delete(nodes, undefined, `node-${i}`);
    pending.push(waitFor(`node-${i} unrouted`, () => !routed(b, podNetwork(i)), 60_000, 2).then(() => void leave.push(performance.now() - t0)));
    await new Promise((r) => setTimeout(r, 1000 / RATE));
  }
  await Promise.all(pending);
  await new Promise((r) => setTimeout(r, 2_500)); // the debounced config save
  const events = 2 * CHURN;
  // the bench's own Node creates and deletes go straight to the store, so the audit holds only the coordinator's
  return { join, leave, apiWritesPerEvent: apiWrites(b, a0) / events, deviceWritesPerEvent: deviceWrites(b, d0) / events, coordinatorCpuMsPerEvent: (cpuMs(coordinatorPid) - cpu0 - idleCpuMsPerS * (performance.now() - t0) / 1000) / events };
}

async function ours(n: number): Promise<Record<string, unknown>> {
  const b = await startBench();
  addNodes(b, 0, n);
  const a0 = b.audit.length;
  const t0 = performance.now();
  const coordinator = startCoordinatorProcess(b, ['--resync', '3s', '--device-resync', '3s']);
  try {
    await waitFor(`${n} nodes on the ADC`, () => programmedOnDevice(b) === n, 600_000, 20);
    const syncMs = performance.now() - t0;
    const cms = b.api.store.list(resource(b.api, 'configmaps'), 'chorus-system', () => true, () => true).items;
    const largest = Math.max(...cms.map((c) => Buffer.byteLength(JSON.stringify(c))));
    const initial = { apiRequests: b.audit.length - a0, apiWrites: apiWrites(b, a0), deviceCalls: b.emulator.calls.length, deviceWrites: deviceWrites(b), bulkRequests: b.emulator.calls.filter((c) => c.items > 1).length };
    // the device is programmed before every Node carries its annotation (written after, 16 at a
    // time): the steady-state window starts once the first sync has written all of them
    await waitFor(`${n} nodes annotated`, () => annotatedNodes(b) >= n, 600_000, 50);
    const annotatedMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 3_000)); // settle (debounced save)
    const sa = b.audit.length;
    const sd = b.emulator.calls.length;
    const sc = cpuMs(coordinator.child.pid);
    await new Promise((r) => setTimeout(r, STEADY_S * 1000));
    const idleCpuMsPerS = (cpuMs(coordinator.child.pid) - sc) / STEADY_S;
    const steady = { seconds: STEADY_S, coordinatorCpuMsPerS: idleCpuMsPerS, apiWrites: apiWrites(b, sa), apiWritesBy: writesByKind(b, sa), deviceWrites: deviceWrites(b, sd), deviceCalls: b.emulator.calls.length - sd };
    const c = await churn(b, n + 10, coordinator.child.pid, idleCpuMsPerS);
    return { n, syncMs, annotatedMs, peakRssMiB: coordinator.peakRssMiB(), largestConfigMapBytes: largest, initial, perNode: { apiWrites: initial.apiWrites / n, deviceCalls: initial.deviceCalls / n }, steady, churn: { join: summary(c.join), joinSamplesMs: c.join, leave: summary(c.leave), apiWritesPerEvent: c.apiWritesPerEvent, deviceWritesPerEvent: c.deviceWritesPerEvent, coordinatorCpuMsPerEvent: c.coordinatorCpuMsPerEvent } };
  } finally {
    await coordinator.stop();
    await b.close();
  }
}

async function baseline(n: number): Promise<Record<string, unknown>> {
  const b = await startBench();
  try {
    const nodes: V1Node[] = Array.from({ length: n }, (_, i) => nodeBody(i) as V1Node);
    const plan = planCoordinator({ config: { vni: 4096, port: 4789, overlayNetwork: OVERLAY, deviceVTEPs: [VTEP] }, nodes, podCIDRs: podCIDRsBySource('node', nodes, []), held: new Map(), highWater: new Map() });
    const cnc = new BaselineCnc(b.nitroURL, USER, PASSWORD, b.caFile, 4096);
    const t0 = performance.now();
    await cnc.start(VTEP, plan.hub.deviceOverlayIPs[0] ?? '', Number(OVERLAY.split('/')[1]), 4789);
    for (const p of plan.peers) await cnc.nodeEvent(p);
    const syncMs = performance.now() - t0;
    const calls = b.emulator.calls.length;
    // churn: one node event each, measured one by one (the CNC handles events in sequence)
    const lat: number[] = [];
    for (const p of plan.peers.slice(0, CHURN)) {
      const t = performance.now();
      await cnc.nodeEvent(p);
      lat.push(performance.now() - t);
    }
    await cnc.close();
    return { n, syncMs, deviceCalls: calls, deviceCallsPerNode: calls / n, bulkRequests: 0, churnNodeEvent: summary(lat), churnNodeEventSamplesMs: lat, callsPerEvent: 6 };
  } finally {
    await b.close();
  }
}

const results: Record<string, unknown>[] = [];
for (const n of SIZES) {
  process.stderr.write(`bench scale: ${n} nodes: ours\n`);
  const o = await ours(n);
  process.stderr.write(`bench scale: ${n} nodes: baseline (older CNC behaviour)\n`);
  const base = await baseline(n);
  results.push({ n, ours: o, baseline: base });
  const oi = o.initial as { apiWrites: number; deviceCalls: number; bulkRequests: number };
  const os = o.steady as { coordinatorCpuMsPerS: number; apiWrites: number; deviceWrites: number; apiWritesBy: { kinds: Record<string, number>; objects: number } };
  const oc = o.churn as { join: ReturnType<typeof summary>; leave: ReturnType<typeof summary>; apiWritesPerEvent: number; deviceWritesPerEvent: number; coordinatorCpuMsPerEvent: number };
  const bc = base.churnNodeEvent as ReturnType<typeof summary>;
  const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');
  console.log(`\n${n} nodes`);
  console.log(table([
    ['measure', 'ours', 'baseline (CNC-like)', 'ours / baseline'],
    ['initial sync to ADC', ms(o.syncMs as number), ms(base.syncMs as number), ratio(o.syncMs as number, base.syncMs as number)],
    ['NITRO calls (initial)', String(oi.deviceCalls), String(base.deviceCalls), ratio(oi.deviceCalls, base.deviceCalls as number)],
    ['NITRO calls per node', (oi.deviceCalls / n).toFixed(3), (base.deviceCallsPerNode as number).toFixed(2), ''],
    ['bulk requests', String(oi.bulkRequests), '0', ''],
    ['API writes until the device is programmed', String(oi.apiWrites), '-', ''],
    ['every Node annotated (first sync written to the API)', ms(o.annotatedMs as number), '-', ''],
    ['coordinator peak RSS', `${(o.peakRssMiB as number).toFixed(0)} MiB`, '-', ''],
    ['largest ConfigMap', `${((o.largestConfigMapBytes as number) / 1024).toFixed(0)} KiB`, '-', ''],
    [`steady state ${STEADY_S} s: API / NITRO writes`, `${os.apiWrites} / ${os.deviceWrites}`, '-', ''],
    ['  steady-state API writes by kind (distinct objects)', `${Object.entries(os.apiWritesBy.kinds).map(([k, v]) => `${k} ${String(v)}`).join(', ') || 'none'} (${String(os.apiWritesBy.objects)})`, '-', ''],
    ['churn: join -> ADC p50/p95/p99', `${ms(oc.join.p50)} / ${ms(oc.join.p95)} / ${ms(oc.join.p99)}`, `${ms(bc.p50)} / ${ms(bc.p95)} / ${ms(bc.p99)} (per event)`, ratio(oc.join.p50, bc.p50)],
    ['churn: leave -> ADC p50/p95/p99', `${ms(oc.leave.p50)} / ${ms(oc.leave.p95)} / ${ms(oc.leave.p99)}`, '-', ''],
    ['coordinator CPU per node event (churn, its idle rate taken off)', `${oc.coordinatorCpuMsPerEvent.toFixed(1)} ms`, '-', ''],
    ['coordinator CPU with nothing changing (resyncs)', `${os.coordinatorCpuMsPerS.toFixed(0)} ms/s`, '-', ''],
    ['writes per node event: API / NITRO', `${oc.apiWritesPerEvent.toFixed(2)} / ${oc.deviceWritesPerEvent.toFixed(2)}`, `- / ${String(base.callsPerEvent)} calls`, ''],
  ]));
}
console.log(`saved ${saveResults('scale', { churn: CHURN, rate: RATE, results })}`);
process.exit(0);
