/**
 * Run inside a network namespace (`ip netns exec NS node read-kernel.ts DEV...`): prints what the
 * iproute2 reader and the netlink reader each see there, as one JSON document, for
 * test/e2e/kernel-readers.test.ts. Netlink reads the namespace the process is in, so it cannot
 * be driven from the test process itself.
 */
import { ipRoute } from '../../shared/iproute.ts';
import { iprouteReader, type KernelReader } from '../../agent/overlay/observe.ts';
import { netlinkReader } from '../../agent/overlay/netlink-reader.ts';

async function readAll(reader: KernelReader, devices: readonly string[]): Promise<unknown> {
  const overlays: Record<string, unknown> = {};
  for (const dev of devices) overlays[dev] = await reader.overlay(dev);
  return { overlays, interfaces: await reader.interfaces() };
}

const devices = process.argv.slice(2);
const netlink = netlinkReader();
try {
  console.log(JSON.stringify({ iproute: await readAll(iprouteReader(ipRoute()), devices), netlink: await readAll(netlink, devices) }));
} finally {
  netlink.close();
}
