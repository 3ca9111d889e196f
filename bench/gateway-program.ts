/**
 * Run by bench/gateway.ts inside the bench's namespace (`ip netns exec`), as the gateway process
 * runs inside its own: programs the gateway plan for N nodes with the gateway's own kernel
 * reader, then a pass with nothing to change, and prints the timings as one JSON line.
 *   node bench/gateway-program.ts N netlink|iproute
 */
import { ipRoute } from '../shared/iproute.ts';
import { silentLogger } from '../shared/log.ts';
import { planGatewayOverlay } from '../agent/overlay/plan.ts';
import { programOverlay } from '../agent/overlay/program.ts';
import { iprouteReader, type KernelReader } from '../agent/overlay/observe.ts';
import { netlinkReader } from '../agent/overlay/netlink-reader.ts';
import { netlinkWriter } from '../agent/overlay/netlink-writer.ts';
import { GATEWAY_BENCH_HUB, gatewayBenchPeers } from './gateway-peers.ts';

const n = Number(process.argv[2] ?? '5000');
const readerName = process.argv[3] ?? 'netlink';
const ip = ipRoute();
const netlink = netlinkReader();
const netlinkWrites = netlinkWriter();
// netlink: read and write over rtnetlink, as the gateway does; iproute: `ip -j` to read, `ip`/`bridge -batch` to write
const reader: KernelReader = readerName === 'netlink' ? netlink : iprouteReader(ip);
const writer = readerName === 'netlink' ? netlinkWrites : undefined;
try {
  const plan = planGatewayOverlay(GATEWAY_BENCH_HUB, { underlayIP: '198.18.0.3', underlayMtu: 1500 }, gatewayBenchPeers(n));
  let t0 = performance.now();
  const first = await programOverlay(ip, plan.desired, silentLogger(), { reader, writer });
  const programMs = performance.now() - t0;
  t0 = performance.now();
  const again = await programOverlay(ip, plan.desired, silentLogger(), { reader, writer });
  const noChangeMs = performance.now() - t0;
  t0 = performance.now();
  await reader.overlay(plan.desired.vxlan.name);
  const readMs = performance.now() - t0;
  console.log(JSON.stringify({ reader: readerName, programMs, noChangeMs, noChangeOps: again.ops.length, firstOps: first.ops.length, readMs }));
} finally {
  netlink.close();
  netlinkWrites.close();
}
