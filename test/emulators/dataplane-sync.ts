/**
 * What every device emulator's data plane shares: a MAC for the emulated device's VXLAN device,
 * and a syncer that keeps the device's network namespace in step with the emulated
 * configuration, using the agent's own overlay programmer (so traffic proves the configuration
 * the driver sent). Calls are serialized and coalesced.
 */
import { parseIPv4 } from '../../shared/ipv4.ts';
import { parseIp } from '../../shared/ip.ts';
import type { IpRoute } from '../../shared/iproute.ts';
import type { Logger } from '../../shared/log.ts';
import { programOverlay } from '../../agent/overlay/program.ts';
import { readInterfaces, type HostInterface } from '../../agent/overlay/observe.ts';
import type { DesiredOverlay, RouteEntry } from '../../agent/overlay/state.ts';
import { cidrContains, parseCidr } from '../../shared/ipv4.ts';

/** 02:ad:<IPv4 bytes> (an IPv6 VTEP: its last four bytes): a stable, locally administered MAC for an emulated device's VTEP. */
export function emulatedMac(ip: string): string {
  const v = ip.includes(':') ? Number(parseIp(ip).value & 0xffffffffn) : parseIPv4(ip);
  return ['02', 'ad', v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].map((b) => (typeof b === 'number' ? b.toString(16).padStart(2, '0') : b)).join(':');
}

/** The namespace's own addresses, leaving out the emulated VXLAN device(s) named with `vxlanPrefix`. */
export function underlayAddresses(interfaces: readonly HostInterface[], vxlanPrefix: string): string[] {
  return interfaces.filter((i) => !i.name.startsWith(vxlanPrefix)).flatMap((i) => i.cidrs.map((c) => c.split('/')[0] ?? ''));
}

/**
 * Where the device puts each configured route, as the ADC and the BIG-IP do: a gateway on a
 * subnet of the underlay interface (the one holding `local`, the VTEP) is a direct route on that
 * interface; any other gateway is reached through the VXLAN device (onlink, via an overlay
 * neighbour). Returns the routes and, when any is direct, the interface they are on.
 */
export function placeRoutes(routes: readonly RouteEntry[], interfaces: readonly HostInterface[], local: string): { routes: RouteEntry[]; directDevice?: string } {
  const underlay = interfaces.find((i) => i.cidrs.some((c) => c.split('/')[0] === local));
  if (!underlay) return { routes: [...routes] };
  const subnets = underlay.cidrs.filter((c) => !c.includes(':')).map((c) => parseCidr(c, false));
  // an IPv6 gateway is an overlay address (the underlay is IPv4): always through the VXLAN device
  const placed = routes.map((r) => (r.via !== '' && !r.via.includes(':') && subnets.some((n) => cidrContains(n, parseIPv4(r.via))) ? { ...r, dev: underlay.name } : r));
  return { routes: placed, directDevice: underlay.name };
}

/** Returns sync(): programs `desiredFor(interfaces)` into this namespace (nothing while undefined). */
export function dataPlaneSyncer(desiredFor: (interfaces: readonly HostInterface[]) => DesiredOverlay | undefined, ip: IpRoute, log: Logger): () => void {
  let running = false;
  let again = false;
  const run = async (): Promise<void> => {
    running = true;
    do {
      again = false;
      try {
        const desired = desiredFor(await readInterfaces(ip));
        if (desired) await programOverlay(ip, desired, log);
      } catch (err) {
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'data plane sync failed');
      }
    } while (again);
    running = false;
  };
  return () => {
    if (running) again = true;
    else void run();
  };
}
