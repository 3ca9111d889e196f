/**
 * What every device emulator's data plane shares: a MAC for the emulated device's VXLAN device,
 * and a syncer that keeps the device's network namespace in step with the emulated
 * configuration, using the agent's own overlay programmer (so traffic proves the configuration
 * the driver sent). Calls are serialized and coalesced.
 */
import { parseIPv4 } from '../../shared/ipv4.ts';
import type { IpRoute } from '../../shared/iproute.ts';
import type { Logger } from '../../shared/log.ts';
import { programOverlay } from '../../agent/overlay/program.ts';
import { readInterfaces, type HostInterface } from '../../agent/overlay/observe.ts';
import type { DesiredOverlay } from '../../agent/overlay/state.ts';

/** 02:ad:<IPv4 bytes>: a stable, locally administered MAC for an emulated device's VTEP. */
export function emulatedMac(ip: string): string {
  const v = parseIPv4(ip);
  return ['02', 'ad', v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].map((b) => (typeof b === 'number' ? b.toString(16).padStart(2, '0') : b)).join(':');
}

/** The namespace's own addresses, leaving out the emulated VXLAN device(s) named with `vxlanPrefix`. */
export function underlayAddresses(interfaces: readonly HostInterface[], vxlanPrefix: string): string[] {
  return interfaces.filter((i) => !i.name.startsWith(vxlanPrefix)).flatMap((i) => i.cidrs.map((c) => c.split('/')[0] ?? ''));
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
