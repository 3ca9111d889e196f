/**
 * Citrix ADC driver over NITRO: moves the objects of objects.ts (pure: desired and observed
 * entries, bodies, URLs, HA role) to and from the ADC.
 *
 * Ownership: only this cluster's objects are ever observed or changed (objects.ts says which);
 * when another cluster has claimed this VNI or overlay network on the ADC, observe throws
 * DeviceOwnershipError and nothing is written.
 * Changes go out grouped by resource, in dependency order, as bulk requests
 * (X-NITRO-ONERROR: continue) whose 207 answers are read item by item; "already exists" on add and
 * "no such resource" on delete count as done. An object the ADC refuses (a NITRO error, HTTP 4xx
 * or 599) fails only its node: the rest are programmed in the same pass. A transient failure of
 * the ADC (5xx other than 599, no answer) fails the pass, which the loop retries with backoff.
 * An arp whose MAC or VTEP changed is deleted and added again (NITRO has no update for arp). The
 * running config is saved after changes (debounced). A secondary of an HA pair is never written.
 */
import type { Logger } from '../../../shared/log.ts';
import type { CoordinatorPlan } from '../../plan.ts';
import type { Peer } from '../../../shared/tables.ts';
import { DeviceOwnershipError, PeerEntries, type DeviceChange, type DeviceDriver, type DeviceEntry, type DeviceFailure } from '../driver.ts';
import { Debounced, DeviceApiError, listIn, type WriteFence } from '../https-json.ts';
import { NitroClient, errorOf, type NitroClientOptions, type NitroResponse } from './nitro-client.ts';
import { ADD_ORDER, CLAIM, NITRO, OWNERS_MAP, ownershipConflict, REPLACED_NOT_UPDATED, bodyOf, deletePath, desiredEntries, deviceAddresses, isSecondary, observePaths, observedEntries, splitMakeBeforeBreak, desiredPeerEntries, type CitrixLayout, type NitroObject, type ObservedLists } from './objects.ts';
import { vtepSubnets } from '../../routing.ts';

export interface CitrixOptions extends NitroClientOptions {
  readonly vni: number;
  readonly overlayNetwork: string;
  /** The IPv6 overlay network of a dual-stack overlay: the driver then programs nsip6, nd6 and route6 too. */
  readonly overlayNetworkIPv6?: string | undefined;
  readonly neighbours: CitrixLayout['neighbours'];
  readonly netprofile?: string;
  /** route (default) or pbr (several clusters behind one ADC). */
  readonly routing?: CitrixLayout['routing'];
  readonly saveConfig: boolean;
  readonly saveDebounceMs?: number;
  /** This cluster's identity, claimed on the ADC beside its VNI and overlay network. */
  readonly clusterId: string;
  readonly log: Logger;
}

const SECONDARY_HINT = 'connected to the secondary node of an HA pair: changes there are not propagated; point --device-address at the primary (its NSIP, or a SNIP with management access that moves with the primary)';

/** An answer that fails only the object it was about (the ADC refused it), not the whole pass. */
const objectRefused = (r: NitroResponse): boolean => (r.status >= 400 && r.status < 500) || r.status === 599;

export class CitrixDriver implements DeviceDriver {
  readonly type = 'citrix';
  readonly deviceMACs = 'learned' as const;
  readonly client: NitroClient;
  private readonly o: CitrixOptions;
  private readonly layout: CitrixLayout;
  private readonly save: Debounced;
  /** Each node's entries, built once per planned peer (a node event builds only its own). */
  private readonly entriesOfPeers = new PeerEntries();

  constructor(o: CitrixOptions) {
    this.o = o;
    this.client = new NitroClient(o);
    this.layout = { vni: o.vni, overlayNetwork: o.overlayNetwork, overlayNetworkIPv6: o.overlayNetworkIPv6, neighbours: o.neighbours, routing: o.routing ?? 'route', netprofile: o.netprofile, clusterId: o.clusterId };
    this.save = new Debounced(() => this.saveNow(), o.saveDebounceMs ?? 2_000);
    if (o.insecureSkipVerify) o.log.warn({ device: o.baseURL }, 'TLS certificate verification of the ADC is OFF (--insecure-skip-tls-verify): use a CA bundle instead');
  }

  desired(plan: CoordinatorPlan): DeviceEntry[] {
    return desiredEntries(plan, this.layout, this.entriesOfPeers);
  }

  peerEntries(plan: CoordinatorPlan, peer: Peer): readonly DeviceEntry[] {
    return desiredPeerEntries(plan, this.layout, this.entriesOfPeers, peer);
  }

  setWriteFence(fence: WriteFence): void {
    this.client.setWriteFence(fence);
  }

  private async get(path: string | undefined, resource: string): Promise<NitroObject[]> {
    if (path === undefined) return [];
    const r = await this.client.send('GET', `/nitro/v1/config/${path}`);
    if (r.status === 404 && Number(r.body.errorcode) === NITRO.NO_SUCH_RESOURCE) return [];
    this.check('GET', resource, r);
    return listIn(r, resource, `GET ${resource}`);
  }

  private check(method: string, what: string, r: NitroResponse): void {
    if (Number(r.body.errorcode) === NITRO.SECONDARY_NODE) throw new DeviceApiError(r.status, NITRO.SECONDARY_NODE, `NITRO ${method} ${what}: ${SECONDARY_HINT}`);
    // an errorcode is an error whatever the HTTP status (a 200 that says otherwise is not success)
    if (r.status >= 300 || Number(r.body.errorcode ?? 0) !== 0) throw errorOf(method, what, r);
  }

  /** Checked on every pass, so a failover between resyncs is seen before anything is written. */
  private async checkHighAvailability(): Promise<void> {
    if (isSecondary(await this.get('hanode', 'hanode'))) throw new DeviceApiError(0, NITRO.SECONDARY_NODE, `the ADC at ${this.o.baseURL} is ${SECONDARY_HINT}`);
  }

  async observe(): Promise<DeviceEntry[]> {
    await this.checkHighAvailability();
    const paths = observePaths(this.layout);
    // the claims first: another cluster's VNI or network means nothing here is ours to read as such
    const claims = await this.get(paths.claims, CLAIM);
    const conflict = ownershipConflict(claims, this.layout);
    if (conflict) throw new DeviceOwnershipError(conflict);
    const [vxlans, bindings, nsips, arps, bridges, routes, profiles, pbrs, nsip6s, nd6s, route6s] = await Promise.all([
      this.get(paths.vxlans, 'vxlan'), this.get(paths.bindings, 'vxlan_srcip_binding'), this.get(paths.nsips, 'nsip'),
      this.get(paths.arps, 'arp'), this.get(paths.bridges, 'bridgetable'), this.get(paths.routes, 'route'),
      this.get(paths.profiles, 'netprofile'), this.get(paths.pbrs, 'nspbr'),
      this.get(paths.nsip6s, 'nsip6'), this.get(paths.nd6s, 'nd6'), this.get(paths.route6s, 'route6'),
    ]);
    const lists: ObservedLists = { vxlans, bindings, nsips, arps, bridges, routes, profiles, pbrs, claims, nsip6s, nd6s, route6s };
    return observedEntries(lists, this.layout);
  }

  async apply(changes: readonly DeviceChange[]): Promise<DeviceFailure[]> {
    // a failover since the last observation (or an answer we cannot read) stops the pass before any write
    await this.checkHighAvailability();
    const { now, later } = splitMakeBeforeBreak(changes);
    const failures = await this.applyInOrder(now);
    // a route that changed next hop: the old one goes once the new one is in (each kind in
    // parallel, the kinds in splitMakeBeforeBreak's order: a route before its claim)
    const kinds = [...new Set(later.map((c) => c.entry.kind))];
    for (const kind of kinds) failures.push(...(await this.deleteAll(later.filter((c) => c.entry.kind === kind))));
    if (changes.length > failures.length) this.scheduleSave();
    return failures;
  }

  /** Deletes (reverse dependency order), updates, adds (dependency order), then the PBR apply. */
  private async applyInOrder(changes: readonly DeviceChange[]): Promise<DeviceFailure[]> {
    // what NITRO cannot update in place is deleted and added again
    const replaced = changes.filter((c): c is Extract<DeviceChange, { op: 'update' }> => c.op === 'update' && REPLACED_NOT_UPDATED.has(c.entry.kind));
    const failures: DeviceFailure[] = [];
    const group = (op: DeviceChange['op'], kind: string): DeviceChange[] => changes.filter((c) => c.op === op && c.entry.kind === kind && !replaced.includes(c as Extract<DeviceChange, { op: 'update' }>));
    for (const kind of [...ADD_ORDER].reverse()) {
      const deletes = [...group('delete', kind), ...replaced.filter((c) => c.entry.kind === kind).map((c): DeviceChange => ({ op: 'delete', entry: c.previous }))];
      failures.push(...(await this.deleteAll(deletes)));
    }
    for (const kind of ADD_ORDER) failures.push(...(await this.write('PUT', kind, group('update', kind))));
    const failedDeletes = new Set(failures.map((f) => f.change.entry));
    for (const kind of ADD_ORDER) {
      const adds = [...group('add', kind), ...replaced.filter((c) => c.entry.kind === kind && !failedDeletes.has(c.previous)).map((c): DeviceChange => ({ op: 'add', entry: c.entry }))];
      failures.push(...(await this.write('POST', kind, adds)));
    }
    // PBR changes take effect only once applied
    if (changes.some((c) => c.entry.kind === 'nspbr')) {
      const r = await this.client.send('POST', '/nitro/v1/config/nspbrs?action=apply', { nspbrs: {} });
      this.check('POST', 'nspbrs?action=apply', r);
    }
    return failures;
  }

  private async deleteAll(changes: readonly DeviceChange[]): Promise<DeviceFailure[]> {
    const failures: DeviceFailure[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < changes.length) {
        const c = changes[next++];
        if (!c) return;
        const r = await this.client.send('DELETE', `/nitro/v1/config/${deletePath(c.entry)}`);
        const code = Number(r.body.errorcode ?? 0);
        if (r.status === 404 || code === NITRO.NO_SUCH_RESOURCE) continue;
        if (r.status < 300 && code === 0) continue;
        if (code === NITRO.SECONDARY_NODE || !objectRefused(r)) this.check('DELETE', c.entry.kind, r);
        failures.push({ change: c, reason: errorOf('DELETE', `${c.entry.kind} ${c.entry.key}`, r).message });
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, changes.length) }, worker));
    return failures;
  }

  /** Adds (POST) or updates (PUT) a group of one resource: one request, bulk when several. */
  private async write(method: 'POST' | 'PUT', kind: string, changes: readonly DeviceChange[]): Promise<DeviceFailure[]> {
    if (changes.length === 0) return [];
    if (kind === CLAIM && method === 'POST') await this.ensureOwnersMap();
    const objects = changes.map((c) => bodyOf(c.entry));
    const body = { [kind]: objects.length === 1 ? objects[0] : objects };
    const r = await this.client.send(method, `/nitro/v1/config/${kind}`, body, objects.length > 1 ? { 'X-NITRO-ONERROR': 'continue' } : {});
    const code = Number(r.body.errorcode ?? 0);
    if ((r.status === 200 || r.status === 201) && code === 0) return [];
    if (r.status === 207 && Array.isArray(r.body.response)) return itemFailures(method, changes, r.body.response as NitroObject[]);
    if (method === 'POST' && (r.status === 409 || code === NITRO.ALREADY_EXISTS)) return [];
    if (code === NITRO.SECONDARY_NODE || !objectRefused(r)) this.check(method, kind, r);
    return changes.map((c) => ({ change: c, reason: errorOf(method, `${kind} ${c.entry.key}`, r).message }));
  }

  /** The string map the claims are bound to, shared by every cluster on the ADC (made once, never removed). */
  private async ensureOwnersMap(): Promise<void> {
    const r = await this.client.send('POST', '/nitro/v1/config/policystringmap', { policystringmap: { name: OWNERS_MAP, comment: 'chorus-kube-router: which cluster owns which VNI and overlay network on this ADC' } });
    if (r.status === 409 || Number(r.body.errorcode) === NITRO.ALREADY_EXISTS) return;
    this.check('POST', `policystringmap ${OWNERS_MAP}`, r);
  }

  private scheduleSave(): void {
    if (this.o.saveConfig) this.save.schedule();
  }

  async saveNow(): Promise<void> {
    try {
      const r = await this.client.send('POST', '/nitro/v1/config/nsconfig?action=save', { nsconfig: {} });
      this.check('POST', 'nsconfig?action=save', r);
    } catch (err) {
      this.o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'saving the ADC running config failed; will save after the next change');
    }
  }

  /** The subnet of each VTEP from the SNIP (or NSIP) holding its address: `GET nsip`, netmask. */
  async underlaySubnets(vteps: readonly string[]): Promise<string[]> {
    const nsips = await this.get('nsip', 'nsip');
    return vtepSubnets(vteps, deviceAddresses(nsips), 'SNIP or NSIP');
  }

  async close(): Promise<void> {
    await this.save.flush();
    await this.client.close();
  }
}

/** The failed items of a 207 Multi-Status answer, each with the ADC's own words. */
function itemFailures(method: string, changes: readonly DeviceChange[], items: readonly NitroObject[]): DeviceFailure[] {
  return changes.flatMap((c, i): DeviceFailure[] => {
    const item = items[i];
    const ec = Number(item?.errorcode ?? 0);
    if (ec === 0 || (method === 'POST' && ec === NITRO.ALREADY_EXISTS)) return [];
    return [{ change: c, reason: `${typeof item?.message === 'string' ? item.message : 'failed'} (errorcode ${ec})` }];
  });
}
