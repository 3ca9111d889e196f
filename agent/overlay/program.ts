/**
 * One reconcile of an overlay endpoint against the kernel: observe, diff, apply, and remove any
 * other device of ours (a device left from a previous VNI). Shared by the node agent and gateway.
 */
import { DEFAULT_NAMES } from '../../shared/keys.ts';
import type { IpRoute } from '../../shared/iproute.ts';
import type { Logger } from '../../shared/log.ts';
import { diffOverlay, expectedAfter } from './diff.ts';
import { applyOps, opCommand } from './apply.ts';
import { iprouteReader, type KernelReader } from './observe.ts';
import { EMPTY_OBSERVED, type DesiredOverlay, type ObservedOverlay, type Op } from './state.ts';
import type { EntryWriter } from './netlink-writer.ts';

export interface ProgramResult {
  readonly ops: readonly Op[];
  /** The kernel state after the pass: as observed, or (something changed) what the applied ops made of it, with the device read again if an op changed it. */
  readonly observed: ObservedOverlay;
}

/** How one endpoint reaches the kernel besides `ip`. */
export interface KernelAccess {
  /** Whether a device name is this instance's (another instance's devices are never touched). */
  readonly owns?: (name: string) => boolean;
  /** How the kernel is read (default: iproute2 through `ip`, in its namespace if it has one). */
  readonly reader?: KernelReader | undefined;
  /** How FDB entries, neighbours and routes are written (default: `ip`/`bridge` batches). */
  readonly writer?: EntryWriter | undefined;
}

export async function programOverlay(ip: IpRoute, desired: DesiredOverlay, log: Logger, kernel: KernelAccess = {}): Promise<ProgramResult> {
  const owns = kernel.owns ?? DEFAULT_NAMES.ownsDevice;
  const reader = kernel.reader ?? iprouteReader(ip);
  const { observed, staleDevices } = await reader.overlay(desired.vxlan.name, owns, desired.directDevice);
  const opsFor = (localInPlace: boolean): Op[] => [
    ...staleDevices.map((name): Op => ({ kind: 'link-delete', name, reason: `not the current overlay device ${desired.vxlan.name}` })),
    ...diffOverlay(desired, observed, { localInPlace }),
  ];
  let ops = opsFor(true);
  if (ops.length === 0) return { ops, observed };
  const started = performance.now();
  try {
    await applyOps(ip, logRecreations(ops, log), kernel.writer);
  } catch (err) {
    // a kernel whose VXLAN changelink refuses a new local address: recreate the device instead
    if (!ops.some((o) => o.kind === 'link-set' && o.local !== undefined)) throw err;
    log.warn({ dev: desired.vxlan.name, err: err instanceof Error ? err.message : String(err) }, 'the kernel would not change the local address in place; recreating the device');
    ops = opsFor(false);
    await applyOps(ip, logRecreations(ops, log), kernel.writer);
  }
  log.info({ op: 'apply', ops: ops.length, durationMs: Math.round(performance.now() - started), sample: ops.slice(0, 5).map((o) => opCommand(o).line) }, 'overlay programmed');
  // every op was applied (a refused one throws above): the kernel holds what the diff aimed at,
  // so only a device an op created or changed is read again, not its thousands of entries
  // (a gateway's read-back of 15,000 entries took 100-190 ms); the next pass observes it all anyway
  const vxlan = ops.some((o) => o.kind.startsWith('link-')) ? await reader.vxlan(desired.vxlan.name) : observed.vxlan;
  return { ops, observed: { ...expectedAfter(desired, ops.some((o) => o.kind === 'link-delete' && o.name === desired.vxlan.name) ? EMPTY_OBSERVED : observed), vxlan } };
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
