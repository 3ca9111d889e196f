/**
 * One overlay endpoint kept right: the part the node agent and the gateway share. Its owner
 * supplies `plan()` (inputs -> EndpointPlan | Problem); this class runs the reconcile loop, keeps
 * programming the last good plan when inputs go bad (never half-applies), repairs drift as the
 * kernel reports it (netlink, nft monitor), counts what it changes, and serves health.
 */
import type { IpRoute } from '../shared/iproute.ts';
import type { Logger } from '../shared/log.ts';
import { Metrics } from '../shared/metrics.ts';
import { DONE, ReconcileLoop, retry, type PassOutcome } from '../shared/reconcile-loop.ts';
import type { HealthSource } from '../shared/health.ts';
import type { EventRecorder } from '../shared/kube/events.ts';
import { errorMessage } from '../shared/errors.ts';
import { CommandTimeoutError } from '../shared/command.ts';
import { CHANGE_KINDS, EndpointProgrammer } from './endpoint-programmer.ts';
import type { ObservedOverlay } from './overlay/state.ts';
import type { KernelReader } from './overlay/observe.ts';
import type { EntryWriter } from './overlay/netlink-writer.ts';
import { LINUX_HOST, type HostKnobs, type TxChecksumMode } from './host.ts';
import { watchKernel, type KernelWatcher } from './overlay/events.ts';
import type { Nft } from './firewall/nft.ts';
import { isDirect, isProblem, type DirectPlan, type EndpointPlan, type Problem } from './plan-types.ts';

/** A pass running longer than this is wedged (each of its commands has a 10 s deadline by default). */
const STUCK_PASS_MS = 180_000;

/** How an endpoint reaches the kernel, and its kernel-side settings (agent and gateway alike). */
export interface KernelSettings {
  readonly ip: IpRoute;
  /** How the kernel is read (default: iproute2 through `ip`; the agent and gateway use netlink). */
  readonly reader?: KernelReader;
  /** How FDB entries, neighbours and routes are written (default: `ip`/`bridge` batches; the agent and gateway use netlink). */
  readonly writer?: EntryWriter;
  readonly nft: Nft;
  readonly log: Logger;
  readonly resyncMs: number;
  readonly txChecksum: TxChecksumMode;
  readonly firewall: boolean;
  /** Whether a VXLAN device name is this instance's (default: the default instance's). */
  readonly ownsDevice?: (name: string) => boolean;
  /** sysctls and offloads (default: this host's; unit tests pass a fake). */
  readonly host?: HostKnobs;
}

export interface EndpointOptions extends KernelSettings {
  /** Metric name prefix: chorus_agent or chorus_gateway. */
  readonly role: 'agent' | 'gateway';
  /** A node forwards pod traffic, so net.ipv4.ip_forward must be on; the gateway only originates. */
  readonly requireForwarding: boolean;
  readonly events?: EventRecorder;
  /** Watch netlink and nft for changes (off only where passes are driven by hand). */
  readonly watchKernel?: boolean;
  /** Called after a pass that programmed the current plan without a problem. */
  readonly onProgrammed?: () => void;
}

export class OverlayEndpoint implements HealthSource {
  private readonly o: EndpointOptions;
  private readonly plan: () => Promise<EndpointPlan | DirectPlan | Problem>;
  private readonly programmer: EndpointProgrammer;
  private kernel: KernelWatcher | undefined;
  readonly loop: ReconcileLoop;
  readonly registry = new Metrics();
  private readonly m;
  private lastGood: EndpointPlan | DirectPlan | undefined;
  private lastAppliedKey: string | undefined;
  private againTimer: NodeJS.Timeout | undefined;
  private observed: ObservedOverlay | undefined;
  private deviceIndex: number | undefined;
  private problem: Problem | undefined = { kind: 'waiting', reason: 'starting' };
  private lastError: string | undefined;

  constructor(o: EndpointOptions, plan: () => Promise<EndpointPlan | DirectPlan | Problem>) {
    this.o = o;
    this.plan = plan;
    this.programmer = new EndpointProgrammer({ ip: o.ip, ...(o.reader ? { reader: o.reader } : {}), ...(o.writer ? { writer: o.writer } : {}), nft: o.nft, log: o.log, txChecksum: o.txChecksum, firewall: o.firewall, ...(o.ownsDevice ? { ownsDevice: o.ownsDevice } : {}), ...(o.host ? { host: o.host } : {}) });
    this.loop = new ReconcileLoop({ name: `${o.role}-overlay`, pass: (reasons) => this.pass(reasons), log: o.log, resyncMs: o.resyncMs });
    const p = `chorus_${o.role}`;
    this.m = {
      reconciles: this.registry.counter(`${p}_reconciles_total`, 'Reconcile passes, by result.', { result: ['ok', 'error'] }),
      repairs: this.registry.counter(`${p}_repairs_total`, 'Kernel state put back after it drifted from an unchanged plan, by kind.', { kind: CHANGE_KINDS }),
      changes: this.registry.counter(`${p}_changes_total`, 'Kernel changes made, by kind (first programming, input changes and repairs).', { kind: CHANGE_KINDS }),
      passSeconds: this.registry.histogram(`${p}_reconcile_duration_seconds`, 'Duration of reconcile passes.'),
      errors: this.registry.counter(`${p}_errors_total`, 'Reconcile passes that failed.'),
      timeouts: this.registry.counter(`${p}_command_timeouts_total`, 'ip, bridge, nft or ethtool commands killed at their deadline, and netlink reads unanswered by it.'),
      lastSuccess: this.registry.gauge(`${p}_last_success_timestamp_seconds`, 'Unix time of the last successful reconcile.'),
      fdb: this.registry.gauge(`${p}_fdb_entries`, 'FDB entries programmed on the overlay device.'),
      neighbours: this.registry.gauge(`${p}_neighbour_entries`, 'Static neighbour entries on the overlay device, by family (ARP: ipv4, NDP: ipv6).', { family: ['ipv4', 'ipv6'] }),
      routes: this.registry.gauge(`${p}_route_entries`, 'Routes of ours (on the overlay device and toward directly routed nodes), by family.', { family: ['ipv4', 'ipv6'] }),
      ready: this.registry.gauge(`${p}_ready`, '1 when the overlay matches the plan and the inputs are good.'),
    };
  }

  /** Starts the kernel watchers and the loop; call once the inputs' caches have synced. */
  start(): void {
    if (this.o.watchKernel !== false) {
      this.kernel = watchKernel({
        device: () => (this.lastGood && !isDirect(this.lastGood) ? this.lastGood.overlay.vxlan.name : undefined), index: () => this.deviceIndex, log: this.o.log,
        firewall: this.o.firewall, table: this.o.nft.table, onChange: (kind) => this.loop.trigger(`kernel:${kind}`),
      });
    }
    this.loop.start();
  }

  /** Stops watching; leaves every kernel object in place (traffic keeps flowing). */
  async stop(): Promise<void> {
    this.loop.stop();
    clearTimeout(this.againTimer);
    this.againTimer = undefined;
    this.kernel?.close();
    await this.loop.idle();
  }

  trigger(reason: string): void {
    this.loop.trigger(reason);
  }

  private setProblem(p: Problem | undefined): void {
    if (p && p.reason !== this.problem?.reason) {
      this.o.log[p.kind === 'invalid' ? 'warn' : 'info']({ reason: p.reason, keeping: this.lastGood ? 'last good state' : 'nothing programmed yet' }, 'not ready');
      if (p.kind === 'invalid') this.o.events?.warning('OverlayInputInvalid', `${p.reason}; keeping the last good overlay state`);
    }
    if (!p && this.problem) this.o.log.info(this.lastGood && isDirect(this.lastGood) ? { path: 'direct' } : { dev: this.lastGood?.overlay.vxlan.name }, 'overlay converged');
    this.problem = p;
    this.m.ready(p ? 0 : 1);
  }

  private async pass(reasons: ReadonlySet<string>): Promise<PassOutcome> {
    const started = performance.now();
    try {
      const planned = await this.plan();
      if (!isProblem(planned)) this.lastGood = planned;
      const plan = this.lastGood;
      const fullCheck = reasons.has('start') || reasons.has('timer') || reasons.has('retry') || reasons.has('kernel:firewall') || reasons.has('kernel:resync');
      if (plan) await this.program(plan, fullCheck);
      const forwardProblem = this.o.requireForwarding ? await forwardingProblem(this.o.host ?? LINUX_HOST, plan) : undefined;
      const problem = isProblem(planned) ? planned : forwardProblem;
      this.setProblem(problem);
      this.lastError = undefined;
      if (!problem && plan) this.o.onProgrammed?.();
      this.m.reconciles({ result: 'ok' });
      this.m.passSeconds((performance.now() - started) / 1000);
      this.m.lastSuccess(Math.floor(Date.now() / 1000));
      // bad input with nothing to fall back on: look again with backoff, not only on the next event
      return problem?.kind === 'invalid' && !plan ? retry(problem.reason) : DONE;
    } catch (err) {
      this.lastError = errorMessage(err);
      this.m.reconciles({ result: 'error' });
      this.m.passSeconds((performance.now() - started) / 1000);
      this.m.errors();
      if (err instanceof CommandTimeoutError) {
        this.m.timeouts();
        this.o.events?.warning('KernelCommandTimedOut', `${this.lastError}; retrying with backoff`);
      }
      this.setProblem({ kind: 'waiting', reason: `programming failed: ${this.lastError}` });
      throw err;
    }
  }

  private async program(plan: EndpointPlan | DirectPlan, fullCheck: boolean): Promise<void> {
    const key = JSON.stringify(plan);
    const { changes, observed, againInMs } = isDirect(plan) ? await this.programmer.applyDirect(plan, fullCheck) : await this.programmer.apply(plan, fullCheck);
    if (againInMs !== undefined) this.scheduleAgain(againInMs);
    const repairing = key === this.lastAppliedKey;
    for (const [kind, n] of changes) {
      this.m.changes({ kind }, n);
      if (repairing) this.m.repairs({ kind }, n);
    }
    if (repairing && changes.size > 0) this.o.log.info({ repairs: Object.fromEntries(changes) }, 'repaired drifted kernel state');
    // a pass that keeps the tunnel through a switch is not the plan's final state: what the next one changes is no repair
    this.lastAppliedKey = againInMs === undefined ? key : undefined;
    this.observed = observed;
    this.deviceIndex = observed.vxlan?.index;
    this.m.fdb(observed.fdb.length);
    const v6 = (ip: string): boolean => ip.includes(':');
    // static entries only (those the plan makes); what the kernel learned by ARP/NDP comes and goes
    const statics = observed.neighbours.filter((n) => n.permanent);
    const neighbours6 = statics.filter((n) => v6(n.ip)).length;
    const routes6 = observed.routes.filter((r) => v6(r.dst)).length;
    this.m.neighbours(statics.length - neighbours6, { family: 'ipv4' });
    this.m.neighbours(neighbours6, { family: 'ipv6' });
    this.m.routes(observed.routes.length - routes6, { family: 'ipv4' });
    this.m.routes(routes6, { family: 'ipv6' });
  }

  /** One pass again after `ms` (the tunnel kept through a switch to direct routing expires); one timer at a time. */
  private scheduleAgain(ms: number): void {
    if (this.againTimer) return;
    this.againTimer = setTimeout(() => {
      this.againTimer = undefined;
      this.loop.trigger('tunnel-kept');
    }, ms);
    this.againTimer.unref();
  }

  notReadyReason(): string | undefined {
    return this.problem?.reason;
  }

  /**
   * A pass is a handful of commands, each with a deadline: one running for minutes is wedged
   * (the kubelet restarts the process on /livez 503).
   */
  notAliveReason(): string | undefined {
    const ms = this.loop.runningForMs();
    return ms > STUCK_PASS_MS ? `the ${this.loop.name} reconcile pass has run for ${Math.round(ms / 1000)} s` : undefined;
  }

  status(): Record<string, unknown> {
    return {
      ready: this.problem === undefined,
      reason: this.problem?.reason ?? null,
      lastError: this.lastError ?? null,
      desired: this.lastGood ?? null,
      observed: this.observed ?? null,
      passes: this.loop.passes,
    };
  }

  metricsText(): Promise<string> {
    return this.registry.render();
  }
}

/** Why the node cannot forward to its pods (IPv4 forwarding off; IPv6 forwarding off in a dual-stack overlay), or undefined. */
async function forwardingProblem(host: HostKnobs, plan: EndpointPlan | DirectPlan | undefined): Promise<Problem | undefined> {
  if (!(await host.ipForwardEnabled())) return { kind: 'invalid', reason: 'net.ipv4.ip_forward is 0 on this node: pods cannot be reached through the overlay; enable it (sysctl -w net.ipv4.ip_forward=1)' };
  const dualStack = plan !== undefined && !isDirect(plan) && plan.overlay.addresses.some((a) => a.includes(':'));
  if (dualStack && host.ipv6ForwardEnabled && !(await host.ipv6ForwardEnabled())) return { kind: 'invalid', reason: 'net.ipv6.conf.all.forwarding is 0 on this node: its pods cannot be reached over IPv6 through the overlay; enable it (sysctl -w net.ipv6.conf.all.forwarding=1)' };
  return undefined;
}
