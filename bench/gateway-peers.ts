/** The gateway bench's hub and N synthetic peers (bench/gateway.ts and the program it runs in the namespace). */
import { macFromOverlayIP } from '../shared/mac.ts';
import { formatIPv4, parseIPv4 } from '../shared/ipv4.ts';
import type { Peer } from '../shared/tables.ts';

export const GATEWAY_BENCH_HUB = { vni: 4096, port: 4789, overlayNetwork: '198.18.32.0/19', deviceVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.32.1'] };

export function gatewayBenchPeers(n: number): Peer[] {
  const base = parseIPv4('198.18.32.2');
  return Array.from({ length: n }, (_, i) => {
    const overlayIP = formatIPv4(base + i);
    return { node: `node-${i}`, underlayIP: `198.18.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`, overlayIP, vtepMAC: macFromOverlayIP(overlayIP), podCIDRs: [`198.19.${Math.floor((i * 8) / 256)}.${(i * 8) % 256}/29`] };
  });
}
