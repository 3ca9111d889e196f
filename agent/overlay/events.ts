/**
 * Event-driven drift repair: an rtnetlink socket joined to the link, neighbour (FDB is a neighbour
 * of family AF_BRIDGE), IPv4 address and IPv4 route groups calls back whenever something changes
 * on the overlay device (or a link with its name appears or goes). `nft monitor` does the same for
 * the firewall table. Our own changes cause one more pass, which finds nothing to do.
 *
 * Neither source may take the agent down or leave it deaf: a netlink socket error (ENOBUFS when
 * a busy host overflows its receive buffer: events were lost) asks for a full check ('resync') and
 * opens a fresh socket; an `nft monitor` that dies (or cannot start) is started again after a
 * second and then asks for a firewall check, for what changed while nobody listened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createRtNetlink, type rt } from 'netlink';
import type { Logger } from '../../shared/log.ts';
import { FIREWALL_TABLE } from '../firewall/ruleset.ts';

export interface KernelWatcher { close(): void }

type RtMessage = rt.Message;

type Group = 'LINK' | 'NEIGH' | 'IPV4_IFADDR' | 'IPV4_ROUTE';

/** What the watcher uses of an rtnetlink socket (netlink's RtNetlinkSocket; a fake in tests). */
export interface RtEvents {
  addMembership(group: Group): void;
  on(event: 'message', listener: (msgs: RtMessage[]) => void): unknown;
  /** The underlying netlink socket: its errors are not re-emitted by the rtnetlink one. */
  readonly socket: { on(event: 'error', listener: (err: Error) => void): unknown; close(): void };
}

export interface KernelWatchDeps {
  readonly createSocket: () => RtEvents;
  readonly spawnMonitor: () => ChildProcess;
  /** Delay before a new socket or monitor (default 1 s). */
  readonly restartMs?: number;
}

const DEFAULT_DEPS: KernelWatchDeps = {
  createSocket: () => createRtNetlink(),
  spawnMonitor: () => spawn('nft', ['monitor'], { stdio: ['ignore', 'pipe', 'ignore'] }),
};

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
export function watchKernel(opts: { device: () => string | undefined; index: () => number | undefined; onChange: (kind: string) => void; log: Logger; firewall: boolean; table?: string }, deps: KernelWatchDeps = DEFAULT_DEPS): KernelWatcher {
  // our table by its exact name (another instance's table shares the prefix)
  const ourTable = new RegExp(` ${(opts.table ?? FIREWALL_TABLE).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( |$)`);
  const restartMs = deps.restartMs ?? 1_000;
  let closed = false;
  let socket: RtEvents | undefined;
  const openSocket = (): void => {
    const s = deps.createSocket();
    socket = s;
    for (const g of ['LINK', 'NEIGH', 'IPV4_IFADDR', 'IPV4_ROUTE'] as const) s.addMembership(g);
    s.on('message', (msgs) => {
      const dev = opts.device();
      if (!dev) return;
      for (const m of msgs) {
        if (concernsDevice(m, dev, opts.index())) {
          opts.onChange(m.kind);
          return;
        }
      }
    });
    s.socket.on('error', (err) => {
      if (closed || socket !== s) return;
      opts.log.warn({ err: err.message }, 'netlink socket error (events may have been lost): checking everything, and listening on a fresh socket');
      socket = undefined;
      try {
        s.socket.close();
      } catch {
        // already closed: nothing to release
      }
      opts.onChange('resync');
      setTimeout(() => {
        if (!closed) openSocket();
      }, restartMs).unref();
    });
  };
  openSocket();
  let monitor: ChildProcess | undefined;
  const startMonitor = (restarted: boolean): void => {
    const m = deps.spawnMonitor();
    monitor = m;
    let ended = false;
    const restart = (why: Record<string, unknown>): void => {
      if (ended || closed) return;
      ended = true;
      opts.log.warn({ ...why, restartInMs: restartMs }, 'nft monitor ended; starting it again (and checking the firewall table then)');
      setTimeout(() => {
        if (!closed) startMonitor(true);
      }, restartMs).unref();
    };
    m.on('error', (err) => restart({ err: err.message }));
    m.on('exit', (code, signal) => restart({ code, signal }));
    if (m.stdout) {
      createInterface({ input: m.stdout }).on('line', (line) => {
        if (ourTable.test(line)) opts.onChange('firewall');
      });
    }
    // what changed while no monitor listened
    if (restarted) opts.onChange('firewall');
  };
  if (opts.firewall) startMonitor(false);
  return {
    close(): void {
      closed = true;
      monitor?.kill();
      socket?.socket.close();
    },
  };
}
