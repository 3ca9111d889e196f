/**
 * Host facts and knobs outside the overlay device's own state: sysctls, ethtool offloads and the
 * host's own networks. Each function touches exactly one thing and says what it found.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { runCommand } from '../shared/command.ts';
import type { Logger } from '../shared/log.ts';
import { EthtoolUnavailableError, ethtoolNetlink, type DeviceFeatures } from './ethtool-netlink.ts';

/**
 * Where the host's sysctls are: /proc/sys, or where the DaemonSet mounts the host's
 * /proc/sys/net (a container's own /proc/sys is read-only without full privilege).
 */
let procSys = '/proc/sys';

export function setProcSys(path: string): void {
  procSys = path.replace(/\/+$/, '');
}

export async function readSysctl(key: string): Promise<string> {
  return (await readFile(`${procSys}/${key.replace(/\./g, '/')}`, 'utf8')).trim();
}

export async function ipForwardEnabled(): Promise<boolean> {
  return (await readSysctl('net.ipv4.ip_forward')) === '1';
}

export async function ipv6ForwardEnabled(): Promise<boolean> {
  return (await readSysctl('net.ipv6.conf.all.forwarding')) === '1';
}

/** Reverse-path filtering in loose mode (2) on the overlay device; true when it changed. */
export async function ensureRpFilterLoose(dev: string): Promise<boolean> {
  const path = `${procSys}/net/ipv4/conf/${dev}/rp_filter`;
  if ((await readFile(path, 'utf8')).trim() === '2') return false;
  await writeFile(path, '2');
  return true;
}

export type TxChecksumMode = 'off' | 'keep';

const TX_CHECKSUM = 'tx-checksum-ip-generic';

/** `ethtool -k` and `ethtool -K`, one process each: kernels without ethtool netlink (before 5.6). */
export function ethtoolCommandFeatures(deadlineMs?: number): DeviceFeatures {
  const opts = deadlineMs !== undefined ? { deadlineMs } : {};
  return {
    async get(dev) {
      const r = await runCommand('ethtool', ['-k', dev], opts);
      if (r.exitCode !== 0) throw new Error(`ethtool -k ${dev} failed: ${r.stderr.trim()}`);
      return new Map([...r.stdout.matchAll(/^\s*([a-z0-9-]+): (on|off)/gm)].map((m) => [m[1] ?? '', m[2] === 'on']));
    },
    async set(dev, wanted) {
      const words = [...wanted].flatMap(([name, on]) => [name, on ? 'on' : 'off']);
      const r = await runCommand('ethtool', ['-K', dev, ...words], opts);
      if (r.exitCode !== 0) throw new Error(`ethtool -K ${dev} ${words.join(' ')} failed: ${r.stderr.trim()}`);
    },
    close: () => undefined,
  };
}

/**
 * Features over ethtool netlink (no process), or through the ethtool command from the first time
 * the kernel says it has no ethtool family on (said once, in the log).
 */
export function deviceFeatures(deadlineMs: number, log: Pick<Logger, 'info'>, netlink: DeviceFeatures = ethtoolNetlink(deadlineMs), command: DeviceFeatures = ethtoolCommandFeatures(deadlineMs)): DeviceFeatures {
  let use = netlink;
  const fallBack = (err: unknown): DeviceFeatures => {
    if (!(err instanceof EthtoolUnavailableError) || use === command) throw err;
    log.info({ reason: err.message }, 'device features through the ethtool command');
    netlink.close();
    use = command;
    return command;
  };
  return {
    get: (dev) => use.get(dev).catch((err: unknown) => fallBack(err).get(dev)),
    set: (dev, wanted) => use.set(dev, wanted).catch((err: unknown) => fallBack(err).set(dev, wanted)),
    close: () => use.close(),
  };
}

/** Turns tx-checksum-ip-generic off on `dev` when mode is off; true when it changed. */
export async function ensureTxChecksum(dev: string, mode: TxChecksumMode, features: DeviceFeatures = ethtoolCommandFeatures()): Promise<boolean> {
  if (mode === 'keep') return false;
  if ((await features.get(dev)).get(TX_CHECKSUM) !== true) return false;
  await features.set(dev, new Map([[TX_CHECKSUM, false]]));
  // a feature the driver cannot change is left as it was without an error over netlink
  if ((await features.get(dev)).get(TX_CHECKSUM) === true) throw new Error(`${TX_CHECKSUM} stays on on ${dev}: the kernel did not turn it off (set --tx-checksum-offload keep to leave it)`);
  return true;
}

/**
 * The host knobs an overlay endpoint checks and sets, as a port (unit tests use a fake). Every
 * method touches one knob and says what it found or whether it changed it.
 */
export interface HostKnobs {
  ipForwardEnabled(): Promise<boolean>;
  /** IPv6 forwarding (a dual-stack overlay); absent: not checked. */
  ipv6ForwardEnabled?(): Promise<boolean>;
  ensureRpFilterLoose(dev: string): Promise<boolean>;
  ensureTxChecksum(dev: string, mode: TxChecksumMode): Promise<boolean>;
}

/** This host's knobs: /proc/sys (or where setProcSys points), and device features as `features` reaches them. */
export function linuxHost(features: DeviceFeatures): HostKnobs {
  return { ipForwardEnabled, ipv6ForwardEnabled, ensureRpFilterLoose, ensureTxChecksum: (dev, mode) => ensureTxChecksum(dev, mode, features) };
}

/** This host's knobs with the ethtool command (what tests and one-off commands use). */
export const LINUX_HOST: HostKnobs = linuxHost(ethtoolCommandFeatures());
