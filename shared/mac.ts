/**
 * VTEP MAC addresses are derived from overlay IPs, so the device can be programmed for a node
 * (FDB, static ARP) before that node's agent has even started, and both ends always agree.
 * 02:xx is a locally administered unicast prefix; 0xc4 marks Chorus.
 */
import { parseIPv4 } from './ipv4.ts';

export const DERIVED_MAC_PREFIX = '02:c4';

export function macFromOverlayIP(overlayIP: string): string {
  const v = parseIPv4(overlayIP);
  const bytes = [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
  return [DERIVED_MAC_PREFIX, ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

export const ALL_ZEROS_MAC = '00:00:00:00:00:00';

export function normalizeMac(mac: string): string {
  return mac.toLowerCase();
}

/** The six bytes of "aa:bb:cc:dd:ee:ff"; anything else is an error that names it. */
export function parseMac(mac: string): Uint8Array {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new Error(`not a MAC address: "${mac}"`);
  return Uint8Array.from(parts.map((p) => Number.parseInt(p, 16)));
}
