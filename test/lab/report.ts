/** The table `make run` prints: one row per pod, reachable from the device or not. */
import type { LabDocument } from './lab.ts';

export function reachabilityTable(doc: LabDocument, rtt: ReadonlyMap<string, number | undefined>): string {
  const header = ['NODE', 'UNDERLAY IP', 'OVERLAY IP', 'PATH', 'POD CIDR', 'POD', 'POD IP', 'FROM DEVICE', 'RTT'];
  const rows: string[][] = [];
  for (const n of doc.nodes) {
    // one row per pod address: both families in a dual-stack lab
    for (const p of n.pods) {
      for (const ip of p.ips) {
        const t = rtt.get(ip);
        rows.push([n.name, n.underlayIP, n.overlayIP ?? '-', n.path, n.podCIDRs.join(','), p.name, ip, t === undefined ? 'NO' : 'yes', t === undefined ? '-' : `${t.toFixed(3)} ms`]);
      }
    }
    if (n.pods.length === 0) rows.push([n.name, n.underlayIP, n.overlayIP ?? '-', n.path, n.podCIDRs.join(','), '-', '-', '-', '-']);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const pods = doc.nodes.reduce((s, n) => s + n.pods.reduce((k, p) => k + p.ips.length, 0), 0);
  const ok = [...rtt.values()].filter((v) => v !== undefined).length;
  const direct = doc.nodes.filter((n) => n.path === 'direct').length;
  const how = direct === 0 ? 'through the VXLAN overlay' : direct === doc.nodes.length ? 'by direct routing (no tunnel)' : `(${direct} node(s) by direct routing, the rest through the VXLAN overlay)`;
  return [
    `device ${doc.device.type} ${doc.device.underlayIP} (overlay ${[...doc.device.overlayIPs, ...doc.device.overlayIPv6s].join(', ') || '-'}), ${doc.nodes.length} nodes; coordinator, agents and gateway run from the ${doc.components === 'bundle' ? 'bundle (dist/, as the images)' : 'TypeScript sources'}`,
    line(header), ...rows.map(line), '', `${ok}/${pods} ${doc.ipFamily !== 'ipv4' ? 'pod addresses (IPv4 and IPv6)' : 'pods'} reachable from the device ${how}`,
  ].join('\n');
}
