/**
 * Host facts and knobs outside the overlay device's own state: sysctls, ethtool offloads and the
 * host's own networks. Each function touches exactly one thing and says what it found.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { runCommand } from '../shared/command.ts';

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

/** Turns tx-checksum-ip-generic off on `dev` when mode is off; true when it changed. */
export async function ensureTxChecksum(dev: string, mode: TxChecksumMode): Promise<boolean> {
  if (mode === 'keep') return false;
  const r = await runCommand('ethtool', ['-k', dev]);
  if (r.exitCode !== 0) throw new Error(`ethtool -k ${dev} failed: ${r.stderr.trim()}`);
  const m = /^\s*tx-checksum-ip-generic: (on|off)/m.exec(r.stdout);
  if (!m || m[1] === 'off') return false;
  const set = await runCommand('ethtool', ['-K', dev, 'tx-checksum-ip-generic', 'off']);
  if (set.exitCode !== 0) throw new Error(`ethtool -K ${dev} tx-checksum-ip-generic off failed: ${set.stderr.trim()}`);
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

/** This host's knobs: /proc/sys (or where setProcSys points) and ethtool. */
export const LINUX_HOST: HostKnobs = { ipForwardEnabled, ipv6ForwardEnabled, ensureRpFilterLoose, ensureTxChecksum };
