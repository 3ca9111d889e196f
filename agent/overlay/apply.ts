/**
 * Executes ops from diff.ts with iproute2 batches: consecutive ops for the same tool go to one
 * `ip -batch` / `bridge -batch` process, in the order diff.ts chose.
 */
import type { IpRoute, IpTool } from '../../shared/iproute.ts';
import { isFloodEntry } from './diff.ts';
import { ROUTE_PROTOCOL, type Op } from './state.ts';

export function opCommand(op: Op): { tool: IpTool; line: string } {
  switch (op.kind) {
    case 'link-create': {
      const s = op.spec;
      return { tool: 'ip', line: `link add ${s.name} address ${s.mac} mtu ${s.mtu} type vxlan id ${s.vni} local ${s.local} dstport ${s.port} nolearning` };
    }
    case 'link-delete':
      return { tool: 'ip', line: `link del ${op.name}` };
    case 'link-set':
      return { tool: 'ip', line: ['link set', op.name, op.mtu !== undefined ? `mtu ${op.mtu}` : '', op.mac !== undefined ? `address ${op.mac}` : '', op.up ? 'up' : '', op.local !== undefined ? `type vxlan local ${op.local}` : ''].filter((s) => s !== '').join(' ') };
    case 'addr-add':
      // an IPv6 overlay address is unique by allocation: without duplicate address detection it is usable at once, not a second later
      return { tool: 'ip', line: `addr replace ${op.cidr} dev ${op.dev}${op.cidr.includes(':') ? ' nodad' : ''}` };
    case 'addr-del':
      return { tool: 'ip', line: `addr del ${op.cidr} dev ${op.dev}` };
    case 'fdb-add':
      // the all-zeros (flood) entry may point at several VTEPs: append; a unicast MAC has one
      return { tool: 'bridge', line: `fdb ${isFloodEntry(op.entry.mac) ? 'append' : 'replace'} ${op.entry.mac} dev ${op.dev} dst ${op.entry.dst} self permanent` };
    case 'fdb-del':
      return { tool: 'bridge', line: `fdb del ${op.entry.mac} dev ${op.dev} dst ${op.entry.dst} self` };
    case 'neigh-replace':
      return { tool: 'ip', line: `neigh replace ${op.entry.ip} lladdr ${op.entry.mac} dev ${op.dev} nud permanent` };
    case 'neigh-del':
      return { tool: 'ip', line: `neigh del ${op.entry.ip} dev ${op.dev}` };
    case 'route-replace':
      // an empty `via` is a route onto the link itself (the F5 emulator's routes via the tunnel interface)
      // a direct route (entry.dev) goes via a neighbour on the underlay subnet: no onlink
      if (op.entry.via === '') return { tool: 'ip', line: `route replace ${op.entry.dst} dev ${op.dev} proto ${ROUTE_PROTOCOL}` };
      return { tool: 'ip', line: `route replace ${op.entry.dst} via ${op.entry.via} dev ${op.dev} proto ${ROUTE_PROTOCOL}${op.entry.dev === undefined ? ' onlink' : ''}` };
    case 'route-del':
      return { tool: 'ip', line: `route del ${op.entry.dst} dev ${op.dev} proto ${ROUTE_PROTOCOL}` };
  }
}

/** Groups ops into runs of the same tool, keeping their order. */
export function batchesOf(ops: readonly Op[]): { tool: IpTool; lines: string[] }[] {
  const batches: { tool: IpTool; lines: string[] }[] = [];
  for (const op of ops) {
    const { tool, line } = opCommand(op);
    const last = batches[batches.length - 1];
    if (last && last.tool === tool) last.lines.push(line);
    else batches.push({ tool, lines: [line] });
  }
  return batches;
}

export async function applyOps(ip: IpRoute, ops: readonly Op[]): Promise<void> {
  for (const b of batchesOf(ops)) await ip.batch(b.tool, b.lines);
}
