/**
 * The F5 driver at scale (control plane): the coordinator as a child process programs the
 * iControl REST emulator (in this process, on loopback). For each N in BENCH_F5_NODES (default
 * 1000): initial sync time and iControl requests (all, writes, transactions); a steady-state
 * window (writes must be 0); churn: nodes joining and leaving at BENCH_RATE per second, latency
 * from the Node event to the route being on the BIG-IP, and iControl requests per event.
 * Nothing is asserted; results go to bench/results/f5-*.json.
 */
import { join } from 'node:path';
import { IControlEmulator } from '../test/emulators/icontrol/server.ts';
import { makeServerCertificate, readTls } from '../test/emulators/tls.ts';
import { PASSWORD, USER, addNodes, nodeBody, resource, startBench, startCoordinatorProcess, waitFor, type Bench } from './harness.ts';
import { ms, saveResults, summary, table } from './stats.ts';

const SIZES = (process.env.BENCH_F5_NODES ?? '1000').split(',').map(Number).filter((n) => n > 0);
const CHURN = Number(process.env.BENCH_CHURN ?? '20');
const RATE = Number(process.env.BENCH_RATE ?? '5');
const STEADY_S = Number(process.env.BENCH_STEADY_S ?? '8');
const TUNNEL = '/Common/chorus-100000';

const podNetwork = (i: number): string => `10.${Math.floor(i / 256) % 256}.${i % 256}.0/24`;
const routeName = (i: number): string => `/Common/chorus-100000-${podNetwork(i).replace('/', '_')}`;
const routed = (e: IControlEmulator, i: number): boolean => e.store.table('net/route').has(routeName(i));
const programmed = (e: IControlEmulator): number => Math.min(e.store.records.get(TUNNEL)?.size ?? 0, [...e.store.table('net/route').keys()].filter((k) => k.startsWith('/Common/chorus-100000-')).length);
const writes = (e: IControlEmulator, from = 0): number => e.calls.slice(from).filter((c) => c.write).length;

async function churn(b: Bench, e: IControlEmulator, first: number): Promise<{ join: number[]; leave: number[]; callsPerEvent: number; writesPerEvent: number }> {
  const nodes = resource(b.api, 'nodes');
  const c0 = e.calls.length;
  const join: number[] = [];
  const leave: number[] = [];
  const pending: Promise<void>[] = [];
  for (const [phase, list] of [['join', join], ['leave', leave]] as const) {
    for (let k = 0; k < CHURN; k++) {
      const i = first + k;
      const t0 = performance.now();
      if (phase === 'join') b.api.store.create(nodes, undefined, nodeBody(i));
      else b.api.store.delete(nodes, undefined, `node-${i}`);
      pending.push(waitFor(`node-${i} ${phase}`, () => routed(e, i) === (phase === 'join'), 60_000, 2).then(() => void list.push(performance.now() - t0)));
      await new Promise((r) => setTimeout(r, 1000 / RATE));
    }
    await Promise.all(pending.splice(0));
  }
  await new Promise((r) => setTimeout(r, 2_500)); // the debounced config save
  return { join, leave, callsPerEvent: (e.calls.length - c0) / (2 * CHURN), writesPerEvent: writes(e, c0) / (2 * CHURN) };
}

async function run(n: number): Promise<Record<string, unknown>> {
  const b = await startBench();
  const tls = await makeServerCertificate(join(b.dir, 'tls'), ['127.0.0.1']);
  const e = new IControlEmulator({ username: USER, password: PASSWORD, tls: readTls(tls) });
  const port = await e.listen('127.0.0.1', 0);
  addNodes(b, 0, n);
  const t0 = performance.now();
  const coordinator = startCoordinatorProcess(b, ['--resync', '3s', '--device-resync', '3s'], ['--device-type', 'f5', '--device-address', `https://127.0.0.1:${port}`, '--ca-file', b.caFile, '--credentials-dir', b.credentialsDir]);
  try {
    await waitFor(`${n} nodes on the BIG-IP`, () => programmed(e) === n, 900_000, 20);
    const syncMs = performance.now() - t0;
    const initial = { calls: e.calls.length, writes: writes(e), transactions: e.calls.filter((c) => c.method === 'PATCH' && c.path.startsWith('/mgmt/tm/transaction/') && c.status === 200).length };
    await new Promise((r) => setTimeout(r, 3_000)); // settle (debounced save)
    const s0 = e.calls.length;
    await new Promise((r) => setTimeout(r, STEADY_S * 1000));
    const steady = { seconds: STEADY_S, calls: e.calls.length - s0, writes: writes(e, s0) };
    const c = await churn(b, e, n + 10);
    return { n, syncMs, peakRssMiB: coordinator.peakRssMiB(), initial, steady, churn: { join: summary(c.join), leave: summary(c.leave), callsPerEvent: c.callsPerEvent, writesPerEvent: c.writesPerEvent } };
  } finally {
    await coordinator.stop();
    await e.close();
    await b.close();
  }
}

const results: Record<string, unknown>[] = [];
for (const n of SIZES) {
  process.stderr.write(`bench f5: ${n} nodes\n`);
  const r = await run(n);
  results.push(r);
  const i = r.initial as { calls: number; writes: number; transactions: number };
  const s = r.steady as { calls: number; writes: number };
  const c = r.churn as { join: ReturnType<typeof summary>; leave: ReturnType<typeof summary>; callsPerEvent: number; writesPerEvent: number };
  console.log(`\n${n} nodes, F5 driver`);
  console.log(table([
    ['measure', 'value'],
    ['initial sync to the BIG-IP', ms(r.syncMs as number)],
    ['iControl requests (initial): all / writes / transactions', `${i.calls} / ${i.writes} / ${i.transactions}`],
    ['coordinator peak RSS', `${(r.peakRssMiB as number).toFixed(0)} MiB`],
    [`steady state ${STEADY_S} s: requests / writes`, `${s.calls} / ${s.writes}`],
    ['churn: join -> BIG-IP p50/p95/p99', `${ms(c.join.p50)} / ${ms(c.join.p95)} / ${ms(c.join.p99)}`],
    ['churn: leave -> BIG-IP p50/p95/p99', `${ms(c.leave.p50)} / ${ms(c.leave.p95)} / ${ms(c.leave.p99)}`],
    ['iControl requests per node event: all / writes', `${c.callsPerEvent.toFixed(2)} / ${c.writesPerEvent.toFixed(2)}`],
  ]));
}
console.log(`saved ${saveResults('f5', { churn: CHURN, rate: RATE, results })}`);
process.exit(0);
