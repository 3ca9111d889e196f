/**
 * The Linux device at scale: the gateway's kernel programming for BENCH_GATEWAY_NODES (default
 * 5,000) nodes (an FDB entry, a static neighbour and a route each: 15,000 entries) into a fresh
 * network namespace, with our batched programmer run inside the namespace as the gateway runs
 * (reading the kernel over netlink; the iproute2 reader is timed too, for comparison); and the
 * naive way (one `ip` or `bridge` process per entry) timed on a sample and extrapolated.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ipRoute } from '../shared/iproute.ts';
import { planGatewayOverlay } from '../agent/overlay/plan.ts';
import { opCommand } from '../agent/overlay/apply.ts';
import { diffOverlay } from '../agent/overlay/diff.ts';
import { EMPTY_OBSERVED } from '../agent/overlay/state.ts';
import { GATEWAY_BENCH_HUB as hub, gatewayBenchPeers as peers } from './gateway-peers.ts';
import { saveResults, table } from './stats.ts';

const N = Number(process.env.BENCH_GATEWAY_NODES ?? '5000');
const SAMPLE = Number(process.env.BENCH_NAIVE_SAMPLE ?? '300');
// not a lab's name (ckrXXXXX-...): a test run's sweep of killed labs must not take it while the bench runs
const ns = `ckrbench-${randomBytes(3).toString('hex')}`;
const PROGRAM = fileURLToPath(new URL('./gateway-program.ts', import.meta.url));

interface ProgramTimes { reader: string; programMs: number; noChangeMs: number; noChangeOps: number; firstOps: number; readMs: number }

async function namespace(): Promise<void> {
  await execa('ip', ['netns', 'add', ns]);
  await ipRoute(ns).batch('ip', ['link set lo up', 'link add ul0 type veth peer name ul1', 'addr add 198.18.0.3/20 dev ul0', 'link set ul0 up', 'link set ul1 up']);
}

/** Programs a fresh device inside the namespace with one reader, then removes the device. */
async function programInNamespace(reader: 'netlink' | 'iproute'): Promise<ProgramTimes> {
  const r = await execa('ip', ['netns', 'exec', ns, process.execPath, '--disable-warning=ExperimentalWarning', PROGRAM, String(N), reader]);
  await execa('ip', ['-n', ns, 'link', 'del', 'chorus-4096']);
  return JSON.parse(r.stdout) as ProgramTimes;
}

try {
  await namespace();
  const plan = planGatewayOverlay(hub, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, peers(N));
  const entries = plan.desired.fdb.length + plan.desired.neighbours.length + plan.desired.routes.length;
  const viaNetlink = await programInNamespace('netlink');
  const viaIproute = await programInNamespace('iproute');
  const oursMs = viaNetlink.programMs;
  const noChangeMs = viaNetlink.noChangeMs;
  // the naive way: one process per entry, on a fresh device, timed on a sample
  const small = planGatewayOverlay(hub, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, peers(Math.ceil(SAMPLE / 3)));
  const ops = diffOverlay(small.desired, EMPTY_OBSERVED);
  const setup = ops.filter((o) => o.kind === 'link-create' || o.kind === 'link-set' || o.kind === 'addr-add');
  for (const o of setup) await execa(opCommand(o).tool, ['-n', ns, ...opCommand(o).line.split(' ')]);
  const perEntry = ops.filter((o) => !setup.includes(o));
  const t0 = performance.now();
  for (const o of perEntry) await execa(opCommand(o).tool, ['-n', ns, ...opCommand(o).line.split(' ')]);
  const naivePerEntryMs = (performance.now() - t0) / perEntry.length;
  const results = { nodes: N, entries, oursMs, noChangePassMs: noChangeMs, noChangeOps: viaNetlink.noChangeOps, readMs: viaNetlink.readMs, iprouteReaderMs: viaIproute.programMs, iprouteNoChangeMs: viaIproute.noChangeMs, iprouteReadMs: viaIproute.readMs, naivePerEntryMs, naiveExtrapolatedMs: naivePerEntryMs * entries, naiveSample: perEntry.length };
  console.log(table([
    ['measure', 'value'],
    [`gateway programs ${N} nodes (${entries} entries), batched`, `${oursMs.toFixed(0)} ms`],
    ['a pass with nothing to change', `${noChangeMs.toFixed(0)} ms, ${viaNetlink.noChangeOps} changes`],
    [`reading the ${entries} entries back over netlink / with ip and bridge`, `${viaNetlink.readMs.toFixed(0)} ms / ${viaIproute.readMs.toFixed(0)} ms`],
    ['the same programming with the iproute2 reader (first / nothing to change)', `${viaIproute.programMs.toFixed(0)} ms / ${viaIproute.noChangeMs.toFixed(0)} ms`],
    [`naive: one process per entry (sample of ${perEntry.length})`, `${naivePerEntryMs.toFixed(2)} ms per entry`],
    [`naive, extrapolated to ${entries} entries`, `${(naivePerEntryMs * entries / 1000).toFixed(1)} s`],
    ['ours / naive', `${(oursMs / (naivePerEntryMs * entries)).toFixed(3)}x`],
  ]));
  console.log(`saved ${saveResults('gateway', results)}`);
} finally {
  await execa('ip', ['netns', 'del', ns], { reject: false });
}
