/**
 * Executes ops from diff.ts, in the order diff.ts chose: consecutive ops for the same tool go to
 * one `ip -batch` / `bridge -batch` process, or (for the agent and gateway, which have a netlink
 * writer) FDB entries, neighbours and routes to a few rtnetlink datagrams (netlink-writer.ts).
 */
import type { IpRoute, IpTool } from '../../shared/iproute.ts';
import { isFloodEntry } from './diff.ts';
import { writableOverNetlink, type EntryOp } from './netlink-encode.ts';
import { NetlinkWriteError, type EntryWriter } from './netlink-writer.ts';
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

/** A run of ops for one tool: lines for `ip`/`bridge`, or entries for the netlink writer. */
export type Batch = { readonly tool: IpTool; readonly lines: string[] } | { readonly tool: 'netlink'; readonly ops: EntryOp[] };

/**
 * Groups ops into runs of the same tool, keeping their order. With `netlink`, FDB entries,
 * neighbours and routes go to the netlink writer; links and addresses stay with `ip`.
 */
export function batchesOf(ops: readonly Op[], netlink = false): Batch[] {
  const batches: Batch[] = [];
  for (const op of ops) {
    const last = batches[batches.length - 1];
    if (netlink && writableOverNetlink(op)) {
      if (last?.tool === 'netlink') last.ops.push(op);
      else batches.push({ tool: 'netlink', ops: [op] });
      continue;
    }
    const { tool, line } = opCommand(op);
    if (last && last.tool === tool) last.lines.push(line);
    else batches.push({ tool, lines: [line] });
  }
  return batches;
}

/** Applies ops in order: `ip`/`bridge` batches, and the entries through `writer` when there is one. */
export async function applyOps(ip: IpRoute, ops: readonly Op[], writer?: EntryWriter): Promise<void> {
  for (const b of batchesOf(ops, writer !== undefined)) {
    if (b.tool !== 'netlink') {
      await ip.batch(b.tool, b.lines);
      continue;
    }
    const failed = await writer!.write(b.ops);
    if (failed.length > 0) {
      const shown = failed.slice(0, 5).map((f) => `  ${opCommand(f.op).line}: ${f.reason}`).join('\n');
      throw new NetlinkWriteError(`netlink: ${failed.length} of ${b.ops.length} changes failed${failed.length > 5 ? ' (the first 5)' : ''}:\n${shown}`);
    }
  }
}
