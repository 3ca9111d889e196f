/**
 * An in-memory kernel behind the agent's kernel ports (IpRoute, Nft, HostKnobs), for unit tests
 * of OverlayEndpoint and EndpointProgrammer without root. It interprets the iproute2 commands the
 * agent sends (the exact batch lines apply.ts writes) and answers listings in iproute2's JSON
 * shapes. It is strict: a command it does not know, or one the kernel would refuse (a second
 * device of the same name, an entry on a missing device), fails as the kernel would, so the fake
 * never hides a command the real one would reject. The e2e suite runs the same code on a real
 * kernel; this fake is for the logic around it (what is changed, counted, reported, retried).
 */
import type { HostKnobs, TxChecksumMode } from '../../agent/host.ts';
import type { Nft } from '../../agent/firewall/nft.ts';
import { IpRouteError, type IpRoute, type IpTool } from '../../shared/iproute.ts';
import { ROUTE_PROTOCOL } from '../../agent/overlay/state.ts';

interface FakeLink {
  readonly ifindex: number;
  readonly name: string;
  mtu: number;
  mac: string;
  up: boolean;
  readonly vni: number;
  local: string;
  readonly port: number;
  readonly addrs: Set<string>;
  fdb: { mac: string; dst: string }[];
  readonly neigh: Map<string, string>;
  /** dst -> via ('' onto the link) */
  readonly routes: Map<string, string>;
}

/** One command line: `<object> <verb> <arg> key value ... flag ...`. */
class CommandLine {
  readonly line: string;
  private readonly words: string[];
  private readonly tool: IpTool;

  constructor(tool: IpTool, line: string) {
    this.tool = tool;
    this.line = line;
    this.words = line.trim().split(/\s+/);
  }

  get object(): string {
    return this.words[0] ?? '';
  }

  get verb(): string {
    return this.words[1] ?? '';
  }

  get arg(): string {
    const a = this.words[2];
    if (a === undefined) throw new IpRouteError(`${this.tool} ${this.line}: missing argument`);
    return a;
  }

  has(flag: string): boolean {
    return this.words.includes(flag);
  }

  opt(key: string): string | undefined {
    const i = this.words.indexOf(key);
    return i >= 0 ? this.words[i + 1] : undefined;
  }

  need(key: string): string {
    const v = this.opt(key);
    if (v === undefined) throw new IpRouteError(`${this.tool} ${this.line}: missing ${key}`);
    return v;
  }
}

export class FakeKernel {
  readonly links = new Map<string, FakeLink>();
  /** Every command run, in order, as `ip ...` / `bridge ...` / `nft ...` text. */
  readonly commands: string[] = [];
  private nextIndex = 10;
  table: string | undefined;
  forwarding = true;
  forwardingIPv6 = true;
  readonly rpFilter = new Map<string, string>();
  readonly txChecksum = new Map<string, 'on' | 'off'>();
  /**
   * Returns an error to fail a command with (matched on its text), or undefined to run it. The
   * error is the process's: a batch line that matches fails its whole batch with it.
   */
  failWith: ((command: string) => Error | undefined) | undefined;

  private check(command: string): void {
    this.commands.push(command);
    const err = this.failWith?.(command);
    if (err) throw err;
  }

  private link(name: string): FakeLink {
    const l = this.links.get(name);
    if (!l) throw new IpRouteError(`Cannot find device "${name}"`);
    return l;
  }

  /** Runs one iproute2 command line (as in a batch); throws as the kernel would refuse it. */
  private exec(tool: IpTool, line: string): void {
    const c = new CommandLine(tool, line);
    const handlers: Record<string, (() => void) | undefined> = {
      'ip link': () => this.linkCommand(c),
      'ip addr': () => this.addrCommand(c),
      'ip neigh': () => this.neighCommand(c),
      'ip route': () => this.routeCommand(c),
      'bridge fdb': () => this.fdbCommand(c),
    };
    const handler = handlers[`${tool} ${c.object}`];
    if (!handler) throw new IpRouteError(`fake kernel: unknown command: ${tool} ${line}`);
    handler();
  }

  private linkCommand(c: CommandLine): void {
    const name = c.arg;
    if (c.verb === 'add') {
      if (this.links.has(name)) throw new IpRouteError('RTNETLINK answers: File exists');
      if (c.opt('type') !== 'vxlan' || !c.has('nolearning')) throw new IpRouteError(`fake kernel: unexpected link add: ${c.line}`);
      this.links.set(name, {
        ifindex: this.nextIndex++, name, mtu: Number(c.need('mtu')), mac: c.need('address'), up: false,
        vni: Number(c.need('id')), local: c.need('local'), port: Number(c.need('dstport')),
        addrs: new Set(), fdb: [], neigh: new Map(), routes: new Map(),
      });
      this.rpFilter.set(name, '1');
      this.txChecksum.set(name, 'on');
    } else if (c.verb === 'del') {
      this.link(name);
      this.links.delete(name);
    } else if (c.verb === 'set') {
      const l = this.link(name === 'dev' ? c.need('dev') : name);
      const mtu = c.opt('mtu');
      const mac = c.opt('address');
      if (mtu !== undefined) l.mtu = Number(mtu);
      if (mac !== undefined) l.mac = mac;
      const local = c.opt('local');
      if (local !== undefined) l.local = local;
      if (c.has('up')) l.up = true;
      if (c.has('down')) {
        l.up = false;
        // the kernel flushes the routes of a link that goes down
        l.routes.clear();
      }
    } else throw new IpRouteError(`fake kernel: unknown link command: ${c.line}`);
  }

  private addrCommand(c: CommandLine): void {
    const l = this.link(c.need('dev'));
    if (c.verb === 'replace') l.addrs.add(c.arg);
    else if (c.verb !== 'del') throw new IpRouteError(`fake kernel: unknown addr command: ${c.line}`);
    else if (!l.addrs.delete(c.arg)) throw new IpRouteError('RTNETLINK answers: Cannot assign requested address');
  }

  private neighCommand(c: CommandLine): void {
    const l = this.link(c.need('dev'));
    if (c.verb === 'replace') l.neigh.set(c.arg, c.need('lladdr'));
    else if (c.verb !== 'del') throw new IpRouteError(`fake kernel: unknown neigh command: ${c.line}`);
    else if (!l.neigh.delete(c.arg)) throw new IpRouteError('RTNETLINK answers: No such file or directory');
  }

  private routeCommand(c: CommandLine): void {
    const l = this.link(c.need('dev'));
    if (c.need('proto') !== String(ROUTE_PROTOCOL)) throw new IpRouteError(`fake kernel: route without proto ${ROUTE_PROTOCOL}: ${c.line}`);
    if (c.verb === 'replace') {
      if (!l.up) throw new IpRouteError('RTNETLINK answers: Network is down');
      l.routes.set(c.arg, c.opt('via') ?? '');
    } else if (c.verb !== 'del') throw new IpRouteError(`fake kernel: unknown route command: ${c.line}`);
    else if (!l.routes.delete(c.arg)) throw new IpRouteError('RTNETLINK answers: No such process');
  }

  private fdbCommand(c: CommandLine): void {
    const l = this.link(c.need('dev'));
    const dst = c.need('dst');
    const mac = c.arg;
    const has = l.fdb.some((e) => e.mac === mac && e.dst === dst);
    if (c.verb === 'append') {
      if (!has) l.fdb.push({ mac, dst });
    } else if (c.verb === 'replace') {
      l.fdb = [...l.fdb.filter((e) => e.mac !== mac), { mac, dst }];
    } else if (c.verb === 'del') {
      if (!has) throw new IpRouteError('RTNETLINK answers: No such file or directory');
      l.fdb = l.fdb.filter((e) => !(e.mac === mac && e.dst === dst));
    } else throw new IpRouteError(`fake kernel: unknown fdb command: ${c.line}`);
  }

  private listing(tool: IpTool, args: readonly string[]): unknown {
    const a = args.join(' ');
    if (tool === 'ip' && a === '-d link show type vxlan') {
      return [...this.links.values()].map((l) => ({
        ifindex: l.ifindex, ifname: l.name, mtu: l.mtu, address: l.mac, flags: l.up ? ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'] : ['BROADCAST', 'MULTICAST'],
        linkinfo: { info_kind: 'vxlan', info_data: { id: l.vni, local: l.local, port: l.port, learning: false } },
      }));
    }
    const dev = args[args.length - 1] ?? '';
    const l = this.link(dev);
    const v6 = (x: string): boolean => x.includes(':');
    if (tool === 'ip' && a === `addr show dev ${dev}`) {
      // both families, and the link-local address the kernel gives every IPv6 interface
      const addrInfo = [...l.addrs].map((c) => ({ family: v6(c) ? 'inet6' : 'inet', local: c.split('/')[0], prefixlen: Number(c.split('/')[1]), scope: 'global' }));
      return [{ ifname: l.name, mtu: l.mtu, addr_info: [...addrInfo, { family: 'inet6', local: 'fe80::c4:c6ff:fe12:1002', prefixlen: 64, scope: 'link' }] }];
    }
    if (tool === 'bridge' && a === `fdb show dev ${dev}`) {
      // the kernel lists the device's own address too (no dst)
      return [{ mac: l.mac, state: 'permanent' }, ...l.fdb.map((e) => ({ mac: e.mac, dst: e.dst, state: 'permanent' }))];
    }
    if (tool === 'ip' && a === `neigh show dev ${dev}`) {
      return [...l.neigh].map(([ip, mac]) => ({ dst: ip, lladdr: mac, state: ['PERMANENT'] }));
    }
    const family = /^-([46]) route show dev /.exec(a)?.[1];
    if (tool === 'ip' && family !== undefined && a === `-${family} route show dev ${dev}`) {
      const ofFamily = (x: string): boolean => v6(x) === (family === '6');
      const host = family === '6' ? '/128' : '/32';
      const connected = [...l.addrs].filter(ofFamily).map((c) => ({ dst: c, protocol: 'kernel', scope: 'link' }));
      return [...connected, ...[...l.routes].filter(([dst]) => ofFamily(dst)).map(([dst, via]) => ({ dst: dst.endsWith(host) ? dst.slice(0, -host.length) : dst, ...(via ? { gateway: via } : {}), protocol: String(ROUTE_PROTOCOL) }))];
    }
    throw new IpRouteError(`fake kernel: unknown listing: ${tool} -j ${a}`);
  }

  readonly ip: IpRoute = {
    json: (tool, args) => {
      try {
        this.check(`${tool} -j ${args.join(' ')}`);
        return Promise.resolve(this.listing(tool, args));
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    },
    run: (tool, args) => {
      try {
        this.check(`${tool} ${args.join(' ')}`);
        this.exec(tool, args.join(' '));
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    },
    // -force -batch: every line runs; the batch fails when any line did
    batch: (tool, lines) => {
      const failed: string[] = [];
      for (const line of lines) {
        try {
          this.check(`${tool} ${line}`);
        } catch (err) {
          // an injected failure is the process's (killed at its deadline, not found): the whole batch fails with it
          return Promise.reject(err instanceof Error ? err : new Error(String(err)));
        }
        try {
          this.exec(tool, line);
        } catch (err) {
          failed.push(`${line}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      return failed.length > 0 ? Promise.reject(new IpRouteError(`${tool} -batch: ${lines.length} commands, some failed:\n${failed.join('\n')}`)) : Promise.resolve();
    },
  };

  /** How `nft list` prints the table it holds (an nft version that prints otherwise: a test sets it). */
  nftPrints: (table: string) => string = (table) => table;

  readonly nft: Nft = {
    table: 'chorus-kube-router',
    list: () => this.nftStep('nft list', () => (this.table === undefined ? undefined : this.nftPrints(this.table))),
    replace: (ruleset) => this.nftStep('nft replace', () => {
      this.table = ruleset;
    }),
    remove: () => this.nftStep('nft delete', () => {
      const had = this.table !== undefined;
      this.table = undefined;
      return had;
    }),
    droppedPackets: () => Promise.resolve(0),
  };

  private nftStep<T>(command: string, fn: () => T): Promise<T> {
    try {
      this.check(command);
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  readonly host: HostKnobs = {
    ipForwardEnabled: () => Promise.resolve(this.forwarding),
    ipv6ForwardEnabled: () => Promise.resolve(this.forwardingIPv6),
    ensureRpFilterLoose: (dev) => {
      this.link(dev);
      if (this.rpFilter.get(dev) === '2') return Promise.resolve(false);
      this.rpFilter.set(dev, '2');
      return Promise.resolve(true);
    },
    ensureTxChecksum: (dev, mode: TxChecksumMode) => {
      if (mode === 'keep' || this.txChecksum.get(dev) === 'off') return Promise.resolve(false);
      this.txChecksum.set(dev, 'off');
      return Promise.resolve(true);
    },
  };

  /** Commands run since `mark` (a length of `commands` taken earlier) that change state. */
  writesSince(mark: number): string[] {
    return this.commands.slice(mark).filter((c) => !/ -j |^nft list/.test(c));
  }
}
