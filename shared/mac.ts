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
  const bytes = new Uint8Array(6);
  const hex = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1);
  for (let i = 0; i < 6; i++) {
    const hi = hex(mac.charCodeAt(i * 3));
    const lo = hex(mac.charCodeAt(i * 3 + 1));
    if (hi < 0 || lo < 0 || (i < 5 ? mac.charCodeAt(i * 3 + 2) !== 58 : mac.length !== 17)) throw new Error(`not a MAC address: "${mac}"`);
    bytes[i] = hi * 16 + lo;
  }
  return bytes;
}
