/**
 * One reconcile of an overlay endpoint against the kernel: observe, diff, apply, and remove any
 * other device of ours (a device left from a previous VNI). Shared by the node agent and gateway.
 */
import { DEFAULT_NAMES } from '../../shared/keys.ts';
import type { IpRoute } from '../../shared/iproute.ts';
import type { Logger } from '../../shared/log.ts';
import { diffOverlay } from './diff.ts';
import { applyOps, opCommand } from './apply.ts';
import { iprouteReader, type KernelReader } from './observe.ts';
import type { DesiredOverlay, ObservedOverlay, Op } from './state.ts';

export interface ProgramResult {
  readonly ops: readonly Op[];
  /** The kernel state after the pass (observed again only when something was changed). */
  readonly observed: ObservedOverlay;
}

/**
 * `owns`: whether a device name is this instance's (another instance's devices are never touched).
 * `reader`: how the kernel is read (default: iproute2 through `ip`, in its namespace if it has one).
 */
export async function programOverlay(ip: IpRoute, desired: DesiredOverlay, log: Logger, owns: (name: string) => boolean = DEFAULT_NAMES.ownsDevice, reader: KernelReader = iprouteReader(ip)): Promise<ProgramResult> {
  const { observed, staleDevices } = await reader.overlay(desired.vxlan.name, owns, desired.directDevice);
  const opsFor = (localInPlace: boolean): Op[] => [
    ...staleDevices.map((name): Op => ({ kind: 'link-delete', name, reason: `not the current overlay device ${desired.vxlan.name}` })),
    ...diffOverlay(desired, observed, { localInPlace }),
  ];
  let ops = opsFor(true);
  if (ops.length === 0) return { ops, observed };
  const started = performance.now();
  try {
    await applyOps(ip, logRecreations(ops, log));
  } catch (err) {
    // a kernel whose VXLAN changelink refuses a new local address: recreate the device instead
    if (!ops.some((o) => o.kind === 'link-set' && o.local !== undefined)) throw err;
    log.warn({ dev: desired.vxlan.name, err: err instanceof Error ? err.message : String(err) }, 'the kernel would not change the local address in place; recreating the device');
    ops = opsFor(false);
    await applyOps(ip, logRecreations(ops, log));
  }
  log.info({ op: 'apply', ops: ops.length, durationMs: Math.round(performance.now() - started), sample: ops.slice(0, 5).map((o) => opCommand(o).line) }, 'overlay programmed');
  return { ops, observed: (await reader.overlay(desired.vxlan.name, owns, desired.directDevice)).observed };
}

function logRecreations(ops: readonly Op[], log: Logger): readonly Op[] {
  for (const op of ops) if (op.kind === 'link-delete') log.info({ dev: op.name, reason: op.reason }, 'recreating overlay device');
  return ops;
}

/** Removes every overlay device of ours (with it go its addresses, FDB, neighbours and routes). */
export async function removeOverlay(ip: IpRoute, owns: (name: string) => boolean = DEFAULT_NAMES.ownsDevice, reader: KernelReader = iprouteReader(ip)): Promise<string[]> {
  const { staleDevices } = await reader.overlay('', owns);
  if (staleDevices.length > 0) await ip.batch('ip', staleDevices.map((d) => `link del ${d}`));
  return [...staleDevices];
}
