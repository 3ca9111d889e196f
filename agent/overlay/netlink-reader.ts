/**
 * Reads the overlay's kernel state over one rtnetlink socket instead of iproute2 processes: the
 * agent and gateway observe the device on every pass (twice when they change something), and
 * five `ip`/`bridge` processes per observation were most of an event-driven repair's time and
 * garbage. A pass here is five dump requests on a socket kept open, no process.
 *
 * Netlink works in the namespace the process runs in, so this reader is for the agent and the
 * gateway themselves; code that reads another namespace (the lab, tests, `ip -n`) keeps the
 * iproute2 reader. Every request has the command deadline (past it the pass fails as a command
 * timeout does); a socket that errs or times out is closed and a fresh one opened on the next read.
 */
import { createRtNetlink, type RtNetlinkSocket } from 'netlink';
import { DEFAULT_NAMES } from '../../shared/keys.ts';
import { CommandTimeoutError } from '../../shared/command.ts';
import { EMPTY_OBSERVED, ROUTE_PROTOCOL, type ObservedVxlan } from './state.ts';
import type { HostInterface, KernelReader, OverlayObservation } from './observe.ts';
import { AF_BRIDGE, AF_INET, AF_INET6, AF_UNSPEC } from './netlink-encode.ts';
import { addressesOf, fdbOf, interfacesOf, neighboursOf, routesOf, vxlanLinkOf } from './netlink-parse.ts';


export class NetlinkReadError extends Error {}

export function netlinkReader(deadlineMs = 10_000, open: () => RtNetlinkSocket = () => createRtNetlink()): KernelReader & { close(): void } {
  let socket: RtNetlinkSocket | undefined;
  const reopen = (): void => {
    socket?.socket.close();
    socket = undefined;
  };
  const timeout = { timeout: deadlineMs };
  /** Runs the requests of one read; on any failure the socket is replaced before the next. */
  async function read<T>(what: string, requests: (s: RtNetlinkSocket) => Promise<T>): Promise<T> {
    if (!socket) {
      const fresh = open();
      // an error of a socket already replaced must not close its successor
      fresh.socket.on('error', () => {
        if (socket === fresh) reopen();
      });
      socket = fresh;
    }
    try {
      return await requests(socket);
    } catch (err) {
      reopen();
      // netlink@0.3 rejects a request past its `timeout` with this message
      if (err instanceof Error && err.message === 'Timeout has been reached') {
        throw new CommandTimeoutError(`netlink: reading ${what} got no answer within ${String(deadlineMs)} ms (the command deadline)`, { cause: err });
      }
      throw new NetlinkReadError(`netlink: reading ${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
  return {
    overlay(dev: string, owns: (name: string) => boolean = DEFAULT_NAMES.ownsDevice, directDevice?: string): Promise<OverlayObservation> {
      return read(`overlay device ${dev || '(none)'}`, async (s) => {
        const links = await s.getLinks(undefined, undefined, timeout);
        const vxlans = links.flatMap((l) => vxlanLinkOf(l) ?? []);
        const staleDevices = vxlans.map((l) => l.name).filter((n) => owns(n) && n !== dev);
        const vxlan = vxlans.find((l) => l.name === dev);
        if (!vxlan) return { observed: EMPTY_OBSERVED, staleDevices };
        // one after another: a netlink socket runs one dump at a time (the kernel answers EBUSY)
        // addresses, neighbours and routes of both families (a dual-stack overlay's IPv6 half)
        const addrs = await s.getAddresses({ family: AF_UNSPEC }, undefined, timeout);
        const fdb = await s.getNeighbors({ family: AF_BRIDGE }, undefined, timeout);
        // per family: an AF_UNSPEC dump would bring every bridge's FDB along
        const neigh = [...await s.getNeighbors({ family: AF_INET }, undefined, timeout), ...await s.getNeighbors({ family: AF_INET6 }, undefined, timeout)];
        const routes = await s.getRoutes({ family: AF_UNSPEC }, undefined, timeout);
        const i = vxlan.index;
        const directIndex = directDevice === undefined ? undefined : links.find((l) => l.attrs.ifname === directDevice)?.data.index;
        const direct = directIndex === undefined ? [] : routesOf(routes, directIndex, ROUTE_PROTOCOL).map((r) => ({ ...r, dev: directDevice ?? '' }));
        return { observed: { vxlan, addresses: addressesOf(addrs, i, true), fdb: fdbOf(fdb, i), neighbours: neighboursOf(neigh, i), routes: [...routesOf(routes, i, ROUTE_PROTOCOL), ...direct] }, staleDevices };
      });
    },
    vxlan(dev: string): Promise<ObservedVxlan | undefined> {
      return read(`device ${dev}`, async (s) => (await s.getLinks(undefined, undefined, timeout)).flatMap((l) => vxlanLinkOf(l) ?? []).find((l) => l.name === dev));
    },
    interfaces(): Promise<HostInterface[]> {
      return read('interfaces', async (s) => {
        const links = await s.getLinks(undefined, undefined, timeout);
        // both families: an IPv6 underlay's VTEP is an IPv6 address
        return interfacesOf(links, await s.getAddresses({ family: AF_UNSPEC }, undefined, timeout));
      });
    },
    close: reopen,
  };
}
