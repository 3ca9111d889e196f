/**
 * One reconcile of an overlay endpoint against the kernel: observe, diff, apply, and remove any
 * other device of ours (a device left from a previous VNI). Shared by the node agent and gateway.
 */
import type { IpRoute } from '../../shared/iproute.ts';
import type { Logger } from '../../shared/log.ts';
import { diffOverlay } from './diff.ts';
import { applyOps, opCommand } from './apply.ts';
import { observeOverlay } from './observe.ts';
import type { DesiredOverlay, Op } from './state.ts';

const OWNED_DEVICE = /^chorus-\d+$/;

export async function staleOwnedDevices(ip: IpRoute, keep: string): Promise<string[]> {
  const links = (await ip.json('ip', ['-d', 'link', 'show', 'type', 'vxlan'])) as { ifname: string }[];
  return links.map((l) => l.ifname).filter((n) => OWNED_DEVICE.test(n) && n !== keep);
}

export async function programOverlay(ip: IpRoute, desired: DesiredOverlay, log: Logger): Promise<Op[]> {
  const stale = await staleOwnedDevices(ip, desired.vxlan.name);
  const observed = await observeOverlay(ip, desired.vxlan.name);
  const ops: Op[] = [
    ...stale.map((name): Op => ({ kind: 'link-delete', name, reason: `not the current overlay device ${desired.vxlan.name}` })),
    ...diffOverlay(desired, observed),
  ];
  if (ops.length === 0) return ops;
  for (const op of ops) if (op.kind === 'link-delete') log.info({ dev: op.name, reason: op.reason }, 'recreating overlay device');
  const started = performance.now();
  await applyOps(ip, ops);
  log.info({ op: 'apply', ops: ops.length, durationMs: Math.round(performance.now() - started), sample: ops.slice(0, 5).map((o) => opCommand(o).line) }, 'overlay programmed');
  return ops;
}

/** Removes every overlay device of ours (with it go its addresses, FDB, neighbours and routes). */
export async function removeOverlay(ip: IpRoute): Promise<string[]> {
  const devices = await staleOwnedDevices(ip, '');
  if (devices.length > 0) await ip.batch('ip', devices.map((d) => `link del ${d}`));
  return devices;
}
