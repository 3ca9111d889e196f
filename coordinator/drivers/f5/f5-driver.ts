/**
 * F5 BIG-IP driver over iControl REST. The entries are objects.ts's; this module reads them off
 * the device and writes the difference:
 *   - observe: one GET per collection, narrowed to our partition ($filter) and to the fields we
 *     compare ($select), plus the FDB of our tunnel; only objects named with our prefix and
 *     carrying our marker count (other clusters' and hand-made objects are never seen);
 *   - apply: deletes (reverse dependency order), updates, adds; every FDB change of a pass is one
 *     PUT of the tunnel's whole record set; several requests go in one transaction
 *     (X-F5-REST-Coordination-Id) so the device never holds half a change. When the device
 *     refuses a transaction (4xx), the requests are sent one by one: "not found" on delete and
 *     "already exists" on add of an object that is ours count as done; an object of our name that
 *     is not ours, and every other refusal, is reported per change (per node Event), so one bad
 *     entry cannot block the other nodes. 5xx and timeouts throw: the loop retries
 *     with backoff and jitter;
 *   - after changes, the config is saved (debounced) and, when a device group is named, synced;
 *   - HA: with several management addresses, the ACTIVE unit is used (checked before every
 *     observation and every apply, so a failover between resyncs is followed); a unit that says STANDBY
 *     is never written to.
 */
import type { Logger } from '../../../shared/log.ts';
import type { CoordinatorPlan } from '../../plan.ts';
import type { Peer } from '../../../shared/tables.ts';
import { DeviceOwnershipError, PeerEntries, type DeviceChange, type DeviceDriver, type DeviceEntry, type DeviceFailure } from '../driver.ts';
import { Debounced, type JsonResponse, type WriteFence } from '../https-json.ts';
import { ICONTROL, IControlClient, errorOf, type IControlClientOptions } from './icontrol-client.ts';
import { DeviceApiError, listIn } from '../https-json.ts';
import { vtepSubnets } from '../../routing.ts';
import {
  COLLECTIONS, F5_KINDS, FDB_TUNNELS, createBody, desiredEntries, desiredPeerEntries, failoverStatus, fdbRecordsBody, foreignOwner, isOwned, itemPath, names, observedEntries, ownerMarker, ownershipConflict, selfAddresses, updateBody,
  type F5Kind, type F5Layout, type F5Object,
} from './objects.ts';

export interface F5Options extends Omit<IControlClientOptions, 'baseURL'>, F5Layout {
  /** Management address(es) as https URLs: one unit, or both units of an HA pair. */
  readonly baseURLs: readonly string[];
  readonly saveConfig: boolean;
  readonly saveDebounceMs?: number;
  /** Device group to sync to after saving (HA pairs without automatic sync). */
  readonly syncGroup?: string;
  /** Most requests in one transaction. */
  readonly transactionSize?: number;
  /** The IPv6 overlay network of a dual-stack overlay: static NDP entries are then read too. */
  readonly overlayNetworkIPv6?: string | undefined;
  readonly log: Logger;
}

/** One HTTP request of an apply, and the changes it carries. */
interface Op {
  readonly method: 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  readonly path: string;
  readonly body?: F5Object;
  readonly changes: readonly DeviceChange[];
  readonly what: string;
}

const SELECTS: Record<Exclude<F5Kind, 'fdb'>, string> = {
  profile: 'name,partition,port,floodingType,description',
  tunnel: 'name,partition,key,localAddress,profile,description',
  self: 'name,partition,address,vlan,allowService,trafficGroup,description',
  arp: 'name,partition,ipAddress,macAddress,description',
  route: 'name,partition,network,gw,tmInterface,description',
  ndp: 'name,partition,ipAddress,macAddress,description',
};

const STANDBY_HINT = 'a STANDBY unit: changes there would be lost or synced the wrong way; give the coordinator the management addresses of both units (--device-address https://a,https://b) so it follows the active one';

export class F5Driver implements DeviceDriver {
  readonly type = 'f5';
  readonly deviceMACs = 'learned' as const;
  private readonly o: F5Options;
  private readonly clients: IControlClient[];
  private active = 0;
  private warnedNoFailoverAccess = false;
  private readonly save: Debounced;
  /** Each node's entries, built once per planned peer (a node event builds only its own). */
  private readonly entriesOfPeers = new PeerEntries();

  constructor(o: F5Options) {
    if (o.baseURLs.length === 0) throw new Error('F5 driver: no management address');
    this.o = o;
    this.clients = o.baseURLs.map((baseURL) => new IControlClient({ ...o, baseURL }));
    this.save = new Debounced(() => this.saveNow(), o.saveDebounceMs ?? 2_000);
    if (o.insecureSkipVerify) o.log.warn({ device: o.baseURLs }, 'TLS certificate verification of the BIG-IP is OFF (--insecure-skip-tls-verify): use a CA bundle instead');
  }

  /** The client of the unit in use (the ACTIVE one when several are given). */
  get client(): IControlClient {
    return this.clients[this.active] ?? (this.clients[0] as IControlClient);
  }

  desired(plan: CoordinatorPlan): DeviceEntry[] {
    return desiredEntries(plan, this.o, this.entriesOfPeers);
  }

  peerEntries(_plan: CoordinatorPlan, peer: Peer): readonly DeviceEntry[] {
    return desiredPeerEntries(this.o, this.entriesOfPeers, peer);
  }

  setWriteFence(fence: WriteFence): void {
    for (const c of this.clients) c.setWriteFence(fence);
  }

  private async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> {
    return this.client.send(method, path, body, headers);
  }

  /** A failed request that retrying may cure (server side or no answer) throws; others are returned. */
  private transient(method: string, what: string, r: JsonResponse): void {
    if (r.status >= 500 || r.status === 0) throw errorOf(method, what, r, 'the device is busy or unreachable; retrying with backoff');
  }

  private async list(kind: Exclude<F5Kind, 'fdb'>): Promise<F5Object[]> {
    const q = `$filter=${encodeURIComponent(`partition eq ${this.o.partition}`)}&$select=${SELECTS[kind]}`;
    const r = await this.request('GET', `${COLLECTIONS[kind]}?${q}`);
    this.transient('GET', kind, r);
    if (r.status !== ICONTROL.OK) throw errorOf('GET', kind, r);
    return listIn(r, 'items', `GET ${kind}`);
  }

  /**
   * Our tunnel's FDB records, whichever shape the unit answers: inline `records` (TMOS 12.x, or
   * 14+ when asked to expand sub-collections) or a `recordsReference` to the `records`
   * sub-collection (14+), which is then read.
   */
  private async fdbTunnel(): Promise<F5Object | undefined> {
    const path = itemPath(this.o, FDB_TUNNELS, names(this.o).tunnel);
    const r = await this.request('GET', `${path}?expandSubcollections=true`);
    if (r.status === ICONTROL.NOT_FOUND) return undefined;
    this.transient('GET', 'fdb tunnel', r);
    if (r.status !== ICONTROL.OK) throw errorOf('GET', 'fdb tunnel', r);
    if (r.body.recordsReference === undefined || r.body.records !== undefined) return { ...r.body, records: listIn(r, 'records', 'GET fdb tunnel') };
    const sub = await this.request('GET', `${path}/records`);
    this.transient('GET', 'fdb records', sub);
    if (sub.status !== ICONTROL.OK) throw errorOf('GET', 'fdb records', sub);
    return { ...r.body, records: listIn(sub, 'items', 'GET fdb records') };
  }

  /** Picks the ACTIVE unit; throws when the unit (or every unit) is STANDBY. */
  private async chooseActiveUnit(): Promise<void> {
    const order = [this.active, ...this.clients.keys()].filter((v, i, a) => a.indexOf(v) === i);
    const seen: string[] = [];
    for (const i of order) {
      const c = this.clients[i];
      if (!c) continue;
      let r: JsonResponse;
      try {
        r = await c.send('GET', '/mgmt/tm/cm/failover-status');
      } catch (err) {
        if (this.clients.length === 1) throw err;
        seen.push(`${c.baseURL}: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      const status = r.status === ICONTROL.OK ? failoverStatus(r.body) : '';
      if (r.status === ICONTROL.FORBIDDEN && !this.warnedNoFailoverAccess) {
        this.warnedNoFailoverAccess = true;
        this.o.log.warn({ device: c.baseURL }, 'the BIG-IP user may not read /mgmt/tm/cm/failover-status (HTTP 403): assuming this unit is active; grant read access to let the coordinator tell a standby unit');
      }
      if (!([ICONTROL.OK, ICONTROL.NOT_FOUND, ICONTROL.FORBIDDEN] as number[]).includes(r.status)) {
        // an error answer is that error (not a standby unit): say what the unit said
        this.transient('GET', 'failover-status', r);
        const err = errorOf('GET', 'failover-status', r);
        if (this.clients.length === 1) throw err;
        seen.push(`${c.baseURL}: ${err.message}`);
        continue;
      }
      // a standalone unit (or one that does not answer the question) is used as it is
      if (status !== 'STANDBY') {
        if (i !== this.active) this.o.log.warn({ device: c.baseURL, status }, 'using this BIG-IP unit: it is the active one');
        this.active = i;
        return;
      }
      seen.push(`${c.baseURL}: STANDBY`);
    }
    throw new DeviceApiError(0, 0, `no ACTIVE BIG-IP unit (${seen.join('; ')}): ${this.clients.length === 1 ? `the unit is ${STANDBY_HINT}` : 'every unit given is STANDBY or unreachable'}`);
  }

  async observe(): Promise<DeviceEntry[]> {
    await this.chooseActiveUnit();
    const [profiles, tunnels, selfs, fdbTunnel, arps, routes, ndps] = await Promise.all([
      this.list('profile'), this.list('tunnel'), this.list('self'), this.fdbTunnel(), this.list('arp'), this.list('route'),
      // NDP entries exist only in a dual-stack overlay: an IPv4-only one never asks
      this.o.overlayNetworkIPv6 === undefined ? Promise.resolve([]) : this.list('ndp'),
    ]);
    const conflict = ownershipConflict(tunnels, this.o);
    if (conflict) throw new DeviceOwnershipError(conflict);
    return observedEntries({ profiles, tunnels, selfs, fdbTunnel, arps, ndps, routes }, this.o);
  }

  /** The requests that make the changes, in dependency order. */
  private opsFor(changes: readonly DeviceChange[], desired: () => readonly DeviceEntry[]): Op[] {
    const of = (op: DeviceChange['op'], kind: F5Kind): DeviceChange[] => changes.filter((c) => c.op === op && c.entry.kind === kind);
    const fdbChanges = changes.filter((c) => c.entry.kind === 'fdb');
    // the whole record set, worked out only when a record changes
    const fdbOp = (): Op => ({ method: 'PUT', path: itemPath(this.o, FDB_TUNNELS, names(this.o).tunnel), body: { records: fdbRecordsBody(desired()) }, changes: fdbChanges, what: `fdb records (${fdbChanges.length} changed)` });
    const fdbAfterAdds = fdbChanges.some((c) => c.op !== 'delete');
    const ops: Op[] = [];
    for (const kind of [...F5_KINDS].reverse()) {
      if (kind === 'fdb') {
        if (fdbChanges.length > 0 && !fdbAfterAdds) ops.push(fdbOp());
        continue;
      }
      for (const c of of('delete', kind)) ops.push({ method: 'DELETE', path: itemPath(this.o, COLLECTIONS[kind], c.entry.key), changes: [c], what: `${kind} ${c.entry.key}` });
    }
    for (const kind of F5_KINDS) {
      if (kind === 'fdb') continue;
      for (const c of of('update', kind)) ops.push({ method: 'PATCH', path: itemPath(this.o, COLLECTIONS[kind], c.entry.key), body: updateBody(c.entry, this.o), changes: [c], what: `${kind} ${c.entry.key}` });
    }
    for (const kind of F5_KINDS) {
      if (kind === 'fdb') {
        if (fdbChanges.length > 0 && fdbAfterAdds) ops.push(fdbOp());
        continue;
      }
      for (const c of of('add', kind)) ops.push({ method: 'POST', path: COLLECTIONS[kind], body: createBody(c.entry, this.o), changes: [c], what: `${kind} ${c.entry.key}` });
    }
    return ops;
  }

  async apply(changes: readonly DeviceChange[], desired: () => readonly DeviceEntry[]): Promise<DeviceFailure[]> {
    // a failover since the last observation is seen before anything is written (one GET): the
    // new ACTIVE unit is read afresh, since what we knew came from the other one
    const was = this.active;
    await this.chooseActiveUnit();
    if (this.active !== was) throw new DeviceApiError(0, 0, `the ACTIVE BIG-IP unit is now ${this.client.baseURL} (failover): reading it before writing`);
    const ops = this.opsFor(changes, desired);
    const size = this.o.transactionSize ?? 200;
    const failures: DeviceFailure[] = [];
    for (let i = 0; i < ops.length; i += size) {
      const chunk = ops.slice(i, i + size);
      if (chunk.length === 1 || !(await this.inTransaction(chunk))) failures.push(...(await this.oneByOne(chunk)));
    }
    if (failures.length < changes.length && this.o.saveConfig) this.save.schedule();
    return failures;
  }

  /** Sends the requests as one transaction; false when the device refused it (nothing applied). */
  private async inTransaction(ops: readonly Op[]): Promise<boolean> {
    const t = await this.request('POST', '/mgmt/tm/transaction', {});
    this.transient('POST', 'transaction', t);
    const id = t.body.transId;
    if (t.status !== ICONTROL.OK) throw errorOf('POST', 'transaction', t);
    if (typeof id !== 'number' && !(typeof id === 'string' && /^\d+$/.test(id))) throw new DeviceApiError(t.status, 0, `POST transaction: the BIG-IP answered 200 without a transaction id (transId ${JSON.stringify(id ?? null)}): an answer in a shape this driver does not know`, t.body);
    const header = { 'X-F5-REST-Coordination-Id': String(id) };
    for (const op of ops) {
      const r = await this.request(op.method, op.path, op.body, header);
      if (r.status === ICONTROL.OK) continue;
      await this.request('DELETE', `/mgmt/tm/transaction/${String(id)}`).catch(() => undefined);
      this.transient(op.method, op.what, r);
      this.o.log.warn({ op: op.what, status: r.status }, 'the BIG-IP refused a request of a transaction; sending the changes one by one');
      return false;
    }
    const commit = await this.request('PATCH', `/mgmt/tm/transaction/${String(id)}`, { state: 'VALIDATING' });
    this.transient('PATCH', 'transaction commit', commit);
    if (commit.status === ICONTROL.OK && commit.body.state === 'COMPLETED') return true;
    // a 200 that does not say COMPLETED: whether anything was applied is unknown, so nothing is
    // counted as applied; the next pass reads the device afresh
    if (commit.status === ICONTROL.OK) throw new DeviceApiError(commit.status, 0, `PATCH transaction commit: the BIG-IP answered 200 without state COMPLETED (state ${JSON.stringify(commit.body.state ?? null)}): not known to be applied; reading the device again`, commit.body);
    this.o.log.warn({ requests: ops.length, status: commit.status, message: typeof commit.body.message === 'string' ? commit.body.message : undefined }, 'the BIG-IP refused the transaction (nothing applied); sending the changes one by one');
    return false;
  }

  /**
   * Sends each request on its own: 404 on delete is done; 409 on add is done when the object
   * there is ours (an earlier answer got lost), and a failure naming the object when it is not
   * (made by hand or by another tool: never adopted, never changed). Other refusals are failures.
   */
  private async oneByOne(ops: readonly Op[]): Promise<DeviceFailure[]> {
    const failures: DeviceFailure[] = [];
    for (const op of ops) {
      const r = await this.request(op.method, op.path, op.body);
      if (r.status === ICONTROL.OK || (op.method === 'DELETE' && r.status === ICONTROL.NOT_FOUND)) continue;
      this.transient(op.method, op.what, r);
      let reason = errorOf(op.method, op.what, r).message;
      if (op.method === 'POST' && r.status === ICONTROL.ALREADY_EXISTS) {
        const name = typeof op.body?.name === 'string' ? op.body.name : '';
        const there = await this.request('GET', `${itemPath(this.o, op.path, name)}?$select=name,partition,description`);
        this.transient('GET', op.what, there);
        if (there.status === ICONTROL.OK && isOwned(there.body, this.o)) continue;
        const owner = there.status === ICONTROL.OK ? foreignOwner(there.body, this.o) : undefined;
        reason = owner !== undefined
          ? `${op.what} exists on the BIG-IP and belongs to cluster "${owner}" (its description says so); this cluster is "${this.o.clusterId}": it is left alone; give this cluster another --f5-name-prefix or --f5-partition`
          : `${op.what} exists on the BIG-IP but is not marked as this cluster's (description "${ownerMarker(this.o)}"): it was made by hand or by another tool, so it is left alone; delete or rename it and the coordinator creates its own`;
      }
      for (const c of op.changes) failures.push({ change: c, reason });
    }
    return failures;
  }

  async saveNow(): Promise<void> {
    try {
      const r = await this.request('POST', '/mgmt/tm/sys/config', { command: 'save' });
      if (r.status !== ICONTROL.OK) throw errorOf('POST', 'sys config save', r);
      if (this.o.syncGroup) {
        const s = await this.request('POST', '/mgmt/tm/cm', { command: 'run', utilCmdArgs: `config-sync to-group ${this.o.syncGroup}` });
        if (s.status !== ICONTROL.OK) throw errorOf('POST', `config-sync to-group ${this.o.syncGroup}`, s);
      }
    } catch (err) {
      this.o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'saving (or syncing) the BIG-IP config failed; will try after the next change');
    }
  }

  /** The subnet of each VTEP from the self IP holding its address (any partition): `GET net/self`, its /prefix. */
  async underlaySubnets(vteps: readonly string[]): Promise<string[]> {
    await this.chooseActiveUnit();
    const r = await this.request('GET', `${COLLECTIONS.self}?$select=name,partition,address`);
    this.transient('GET', 'self IPs', r);
    if (r.status !== ICONTROL.OK) throw errorOf('GET', 'self IPs', r);
    return vtepSubnets(vteps, selfAddresses(listIn(r, 'items', 'GET self IPs')), 'self IP');
  }

  async close(): Promise<void> {
    await this.save.flush();
    await Promise.all(this.clients.map((c) => c.close()));
  }
}
