/**
 * Event-driven drift repair: an rtnetlink socket joined to the link, neighbour (FDB is a neighbour
 * of family AF_BRIDGE), IPv4 address and IPv4 route groups calls back whenever something changes
 * on the overlay device (or a link with its name appears or goes). `nft monitor` does the same for
 * the firewall table. Our own changes cause one more pass, which finds nothing to do.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createRtNetlink, type rt } from 'netlink';
import type { Logger } from '../../shared/log.ts';
import { FIREWALL_TABLE } from '../firewall/ruleset.ts';

export interface KernelWatcher { close(): void }

type RtMessage = rt.Message;

function concernsDevice(m: RtMessage, dev: string, index: number | undefined): boolean {
  switch (m.kind) {
    case 'link': return m.attrs.ifname === dev || m.data.index === index;
    case 'address': return m.data.index === index;
    case 'neighbor': return m.data.ifindex === index;
    case 'route': return m.attrs.oif === index;
    default: return false;
  }
}

/**
 * Calls onChange(kind) for kernel changes that concern `device()` (read at each event, so the
 * watcher follows a recreated device). `indexOf` maps the current name to its ifindex.
 */
export function watchKernel(opts: { device: () => string | undefined; index: () => number | undefined; onChange: (kind: string) => void; log: Logger; firewall: boolean; table?: string }): KernelWatcher {
  // our table by its exact name (another instance's table shares the prefix)
  const ourTable = new RegExp(` ${(opts.table ?? FIREWALL_TABLE).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( |$)`);
  const socket = createRtNetlink();
  for (const g of ['LINK', 'NEIGH', 'IPV4_IFADDR', 'IPV4_ROUTE'] as const) socket.addMembership(g);
  socket.on('message', (msgs) => {
    const dev = opts.device();
    if (!dev) return;
    for (const m of msgs) {
      if (concernsDevice(m, dev, opts.index())) {
        opts.onChange(m.kind);
        return;
      }
    }
  });
  let monitor: ChildProcess | undefined;
  let closed = false;
  const startMonitor = (): void => {
    monitor = spawn('nft', ['monitor'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const lines = createInterface({ input: monitor.stdout! });
    lines.on('line', (line) => {
      if (ourTable.test(line)) opts.onChange('firewall');
    });
    monitor.on('exit', (code) => {
      if (closed) return;
      opts.log.warn({ code }, 'nft monitor exited; restarting it in 5 s (the periodic resync still covers the firewall)');
      setTimeout(() => {
        if (!closed) startMonitor();
      }, 5_000).unref();
    });
  };
  if (opts.firewall) startMonitor();
  return {
    close(): void {
      closed = true;
      monitor?.kill();
      socket.socket.close();
    },
  };
}
