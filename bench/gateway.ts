/**
 * The Linux device at scale: the gateway's kernel programming for BENCH_GATEWAY_NODES (default
 * 5,000) nodes (an FDB entry, a static neighbour and a route each: 15,000 entries) into a fresh
 * network namespace, with our batched programmer; and, for comparison, the naive way (one `ip`
 * or `bridge` process per entry) timed on a sample and extrapolated.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { ipRoute } from '../shared/iproute.ts';
import { silentLogger } from '../shared/log.ts';
import { macFromOverlayIP } from '../shared/mac.ts';
import { formatIPv4, parseIPv4 } from '../shared/ipv4.ts';
import { planGatewayOverlay } from '../agent/overlay/plan.ts';
import { programOverlay } from '../agent/overlay/program.ts';
import { opCommand } from '../agent/overlay/apply.ts';
import { diffOverlay } from '../agent/overlay/diff.ts';
import { EMPTY_OBSERVED } from '../agent/overlay/state.ts';
import type { Peer } from '../shared/tables.ts';
import { saveResults, table } from './stats.ts';

const N = Number(process.env.BENCH_GATEWAY_NODES ?? '5000');
const SAMPLE = Number(process.env.BENCH_NAIVE_SAMPLE ?? '300');
// not a lab's name (ckrXXXXX-...): a test run's sweep of killed labs must not take it while the bench runs
const ns = `ckrbench-${randomBytes(3).toString('hex')}`;
const hub = { vni: 4096, port: 4789, overlayNetwork: '198.18.32.0/19', deviceVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.32.1'] };

function peers(n: number): Peer[] {
  const base = parseIPv4('198.18.32.2');
  return Array.from({ length: n }, (_, i) => {
    const overlayIP = formatIPv4(base + i);
    return { node: `node-${i}`, underlayIP: `198.18.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`, overlayIP, vtepMAC: macFromOverlayIP(overlayIP), podCIDRs: [`198.19.${Math.floor((i * 8) / 256)}.${(i * 8) % 256}/29`] };
  });
}

async function namespace(): Promise<void> {
  await execa('ip', ['netns', 'add', ns]);
  await ipRoute(ns).batch('ip', ['link set lo up', 'link add ul0 type veth peer name ul1', 'addr add 198.18.0.3/20 dev ul0', 'link set ul0 up', 'link set ul1 up']);
}

try {
  await namespace();
  const ip = ipRoute(ns);
  const plan = planGatewayOverlay(hub, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, peers(N));
  const entries = plan.desired.fdb.length + plan.desired.neighbours.length + plan.desired.routes.length;
  let t0 = performance.now();
  await programOverlay(ip, plan.desired, silentLogger());
  const oursMs = performance.now() - t0;
  t0 = performance.now();
  const again = await programOverlay(ip, plan.desired, silentLogger());
  const noChangeMs = performance.now() - t0;
  // the naive way: one process per entry, on a fresh device, timed on a sample
  await execa('ip', ['-n', ns, 'link', 'del', 'chorus-4096']);
  const small = planGatewayOverlay(hub, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, peers(Math.ceil(SAMPLE / 3)));
  const ops = diffOverlay(small.desired, EMPTY_OBSERVED);
  const setup = ops.filter((o) => o.kind === 'link-create' || o.kind === 'link-set' || o.kind === 'addr-add');
  for (const o of setup) await execa(opCommand(o).tool, ['-n', ns, ...opCommand(o).line.split(' ')]);
  const perEntry = ops.filter((o) => !setup.includes(o));
  t0 = performance.now();
  for (const o of perEntry) await execa(opCommand(o).tool, ['-n', ns, ...opCommand(o).line.split(' ')]);
  const naivePerEntryMs = (performance.now() - t0) / perEntry.length;
  const results = { nodes: N, entries, oursMs, noChangePassMs: noChangeMs, noChangeOps: again.ops.length, naivePerEntryMs, naiveExtrapolatedMs: naivePerEntryMs * entries, naiveSample: perEntry.length };
  console.log(table([
    ['measure', 'value'],
    [`gateway programs ${N} nodes (${entries} entries), batched`, `${oursMs.toFixed(0)} ms`],
    ['a pass with nothing to change', `${noChangeMs.toFixed(0)} ms, ${again.ops.length} changes`],
    [`naive: one process per entry (sample of ${perEntry.length})`, `${naivePerEntryMs.toFixed(2)} ms per entry`],
    [`naive, extrapolated to ${entries} entries`, `${(naivePerEntryMs * entries / 1000).toFixed(1)} s`],
    ['ours / naive', `${(oursMs / (naivePerEntryMs * entries)).toFixed(3)}x`],
  ]));
  console.log(`saved ${saveResults('gateway', results)}`);
} finally {
  await execa('ip', ['netns', 'del', ns], { reject: false });
}
