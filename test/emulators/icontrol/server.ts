/**
 * The iControl REST emulator: an HTTPS server that answers like a BIG-IP's /mgmt API (token
 * login, renewal, expiry and release; HTTP Basic; `~Partition~name` paths; `items` envelopes;
 * `$filter=partition eq P` and `$select`; numbers as strings where the device sends them; FDB
 * records with `ip%0` endpoints; transactions that apply all or nothing; failover status; the
 * error bodies of the reference). It records every call and can inject faults (5xx bursts,
 * requests that never answer, expired tokens, a STANDBY unit). After each change it calls
 * onChange so the data plane (dataplane.ts) follows the configuration. Test and lab only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { COLLECTIONS, F5Error, IControlStore, type F5Obj } from './store.ts';
import { HttpsEmulator } from '../https-emulator.ts';

export interface IControlCall {
  readonly method: string;
  /** The path without the query, `~P~name` parts kept. */
  readonly path: string;
  readonly status: number;
  /** Any request but a GET, a login or a token renewal/release (transactions and queued requests count). */
  readonly write: boolean;
  /** Set when the request was queued in a transaction rather than applied. */
  readonly transaction?: string;
  /** The unit answered failover-status with STANDBY when the request arrived. */
  readonly standby: boolean;
  /** When the request arrived (ms since the epoch). */
  readonly at: number;
}

export interface IControlEmulatorOptions {
  readonly username: string;
  readonly password: string;
  readonly tls: { cert: Buffer; key: Buffer };
  /** Lifetime of a token from login, seconds (BIG-IP: 1200). */
  readonly tokenTimeoutS?: number;
  /**
   * The TMOS version it answers as (default the newest, 17.1.0). Since 14.x a tunnel's FDB
   * records are a sub-collection (`recordsReference`), inline only with expandSubcollections=true;
   * 12.1 answers them inline (captures in F5's controller issues; F5's SDK reads both).
   */
  readonly tmosVersion?: string;
  /** How far the BIG-IP's clock is off ours, ms: it shows in the token times it answers. */
  readonly clockSkewMs?: number;
  readonly onChange?: () => void;
}

interface Token { readonly user: string; expires: number; timeoutS: number; readonly started: number; lastUpdate: number }
interface Queued { readonly method: string; readonly path: string; readonly body: F5Obj }
interface Transaction { readonly id: string; readonly queued: Queued[]; readonly created: number }

const MCPD_LOST = 'The connection to mcpd has been lost, try again.';
export const NEWEST_TMOS = '17.1.0';
const MAX_TOKENS = 100;
const TRANSACTION_TIMEOUT_MS = 120_000; // *unconfirmed*: the reference gives 30–120 s

const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');

/** `~Common~name` -> `/Common/name`. */
const pathOfTilde = (segment: string): string => decodeURIComponent(segment).replace(/~/g, '/');

export class IControlEmulator extends HttpsEmulator {
  store = new IControlStore();
  readonly calls: IControlCall[] = [];
  private readonly o: IControlEmulatorOptions;
  private readonly tokens = new Map<string, Token>();
  private readonly transactions = new Map<string, Transaction>();
  private nextTransaction = 1_700_000_000_000;
  /** Answer failover-status with STANDBY (and refuse nothing: a real standby accepts writes). */
  standby = false;
  /** The TMOS version it answers as (tests may change it between requests). */
  tmosVersion: string;
  /** How far the BIG-IP's clock is off ours, ms. */
  clockSkewMs: number;

  constructor(o: IControlEmulatorOptions) {
    super(o.tls, 500);
    this.o = o;
    this.tmosVersion = o.tmosVersion ?? NEWEST_TMOS;
    this.clockSkewMs = o.clockSkewMs ?? 0;
  }

  /** The BIG-IP's own clock (ours plus the configured skew), in ms. */
  private deviceNow(at = Date.now()): number {
    return at + this.clockSkewMs;
  }

  /** Tokens the user holds now (a user may hold at most 100). */
  liveTokens(): number {
    return [...this.tokens.values()].filter((t) => t.expires > Date.now()).length;
  }

  protected crash(res: ServerResponse, err: unknown): void {
    const e = err instanceof F5Error ? err : new F5Error(500, `Internal error: ${err instanceof Error ? err.message : String(err)}`);
    this.reply(res, e.status, e.body());
  }

  // fault injection (failNext, hangNext: HttpsEmulator)
  expireTokens(): void {
    for (const t of this.tokens.values()) t.expires = 0;
  }
  activeTokens(): number {
    return this.liveTokens();
  }
  /** Logins answered with a token (tests count them). */
  logins = 0;

  private async body(req: IncomingMessage): Promise<F5Obj> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    if (text.trim() === '') return {};
    try {
      const v: unknown = JSON.parse(text);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
      return v as F5Obj;
    } catch {
      throw new F5Error(400, 'Found invalid JSON body in the request.');
    }
  }

  /** The user a request is authenticated as, or undefined (with the reason to answer). */
  private authenticate(req: IncomingMessage): { user?: string; reason: string } {
    const token = req.headers['x-f5-auth-token'];
    if (typeof token === 'string') {
      const t = this.tokens.get(token);
      if (!t || t.expires <= Date.now()) return { reason: 'X-F5-Auth-Token does not exist.' };
      return { user: t.user, reason: '' };
    }
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (basic) {
      const [u, ...p] = Buffer.from(basic, 'base64').toString().split(':');
      if (u === this.o.username && p.join(':') === this.o.password) return { user: u, reason: '' };
      return { reason: 'Authentication failed.' };
    }
    return { reason: `Authorization failed: no user authentication header or token detected. Uri:${req.url ?? ''} Referrer:unknown Sender:unknown` };
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://bigip');
    const method = req.method ?? 'GET';
    // a collection URI with a trailing slash is the same collection (F5's SDK sends both)
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    const txHeader = req.headers['x-f5-rest-coordination-id'];
    const tx = typeof txHeader === 'string' ? txHeader : undefined;
    // logins and token renewals are not configuration writes; transactions and queued requests are
    const auth = path.startsWith('/mgmt/shared/') || path.startsWith('/emulator/');
    const standby = this.standby;
    const at = Date.now();
    const record = (status: number): void => {
      this.calls.push({ method, path, status, write: method !== 'GET' && !auth, ...(tx ? { transaction: tx } : {}), standby, at });
    };
    try {
      const answer = await this.answer(req, res, { method, path, url, tx, record });
      if (!answer) return;
      record(answer.status);
      const configChange = method !== 'GET' && !auth && !path.startsWith('/mgmt/tm/transaction') && tx === undefined;
      if (configChange && answer.status < 300) this.o.onChange?.();
      return this.reply(res, answer.status, answer.body);
    } catch (err) {
      const e = err instanceof F5Error ? err : new F5Error(500, `Internal error: ${err instanceof Error ? err.message : String(err)}`);
      record(e.status);
      return this.reply(res, e.status, e.body());
    }
  }

  /** The answer to a request, or undefined when the fault injection took it over. */
  private async answer(req: IncomingMessage, res: ServerResponse, r: { method: string; path: string; url: URL; tx: string | undefined; record: (status: number) => void }): Promise<{ status: number; body: F5Obj } | undefined> {
    const { method, path, tx } = r;
    if (path !== '/mgmt/shared/authn/login' && this.injectedFault(res, r.record)) return undefined;
    if (path === '/mgmt/shared/authn/login' && method === 'POST') return { status: 200, body: this.login(await this.body(req)) };
    const who = this.authenticate(req);
    if (!who.user) return { status: 401, body: { code: 401, message: who.reason, referer: 'unknown', restOperationId: this.calls.length, kind: ':resterrorresponse' } };
    if (path === '/emulator/calls') return { status: 200, body: { calls: this.calls } };
    const body = method === 'GET' || method === 'DELETE' ? {} : await this.body(req);
    if (tx && !path.startsWith('/mgmt/tm/transaction') && method !== 'GET') return { status: 200, body: this.enqueue(tx, method, `${path}${r.url.search}`, body) };
    return this.route(method, path, r.url.searchParams, body);
  }

  /** Queues a request in a transaction (applied at commit) and answers with the command object, as a BIG-IP does. */
  private enqueue(tx: string, method: string, path: string, body: F5Obj): F5Obj {
    const t = this.transactions.get(tx);
    if (!t) throw new F5Error(404, `Transaction ${tx} was not found.`);
    t.queued.push({ method, path, body });
    const n = t.queued.length;
    return {
      method, uri: `https://localhost${path}`, body, evalOrder: n, commandId: n,
      kind: 'tm:transaction:commandsstate', selfLink: `https://localhost/mgmt/tm/transaction/${tx}/commands/${n}?ver=${this.tmosVersion}`,
    };
  }

  /** A 5xx burst or a request that never answers, when injected. */
  private injectedFault(res: ServerResponse, record: (status: number) => void): boolean {
    const fault = this.takeFault(res);
    if (!fault) return false;
    if (fault.kind === 'hang') record(0);
    else if (fault.kind === 'answer') {
      record(fault.status);
      this.reply(res, fault.status, fault.body);
    } else if (fault.kind === 'stream') {
      record(fault.answer.status);
      this.sendStream(res, fault.answer);
    } else {
      record(fault.status);
      this.reply(res, fault.status, new F5Error(fault.status, MCPD_LOST).body());
    }
    return true;
  }

  /** A token as the BIG-IP describes it: its times on the BIG-IP's own clock. */
  private tokenItem(value: string, t: Token): F5Obj {
    return {
      token: value, name: value, userName: t.user, timeout: t.timeoutS,
      startTime: new Date(this.deviceNow(t.started)).toISOString(), expirationMicros: Math.floor(this.deviceNow(t.expires)) * 1000, lastUpdateMicros: Math.floor(this.deviceNow(t.lastUpdate)) * 1000,
      kind: 'shared:authz:tokens:authtokenitemstate', selfLink: `https://localhost/mgmt/shared/authz/tokens/${value}`,
    };
  }

  private login(b: F5Obj): F5Obj {
    if (b.username !== this.o.username || b.password !== this.o.password) throw new F5Error(401, 'Authentication failed.');
    for (const [k, t] of this.tokens) if (t.expires <= Date.now()) this.tokens.delete(k);
    if ([...this.tokens.values()].filter((t) => t.user === this.o.username).length >= MAX_TOKENS) throw new F5Error(400, `User ${this.o.username} has reached the maximum of ${MAX_TOKENS} active login tokens.`);
    const value = randomBytes(18).toString('base64url').toUpperCase();
    const timeoutS = this.o.tokenTimeoutS ?? 1200;
    const t: Token = { user: this.o.username, timeoutS, started: Date.now(), lastUpdate: Date.now(), expires: Date.now() + timeoutS * 1000 };
    this.tokens.set(value, t);
    this.logins++;
    return { username: this.o.username, loginProviderName: str(b.loginProviderName) || 'tmos', token: this.tokenItem(value, t) };
  }

  /** Everything after authentication, outside a transaction. */
  private route(method: string, path: string, q: URLSearchParams, body: F5Obj): { status: number; body: F5Obj } {
    const tokenPath = /^\/mgmt\/shared\/authz\/tokens\/([^/]+)$/.exec(path);
    if (tokenPath) return this.tokenRequest(method, decodeURIComponent(tokenPath[1] ?? ''), body);
    if (path === '/mgmt/shared/authz/tokens' && method === 'GET') {
      const items = [...this.tokens].filter(([, t]) => t.expires > Date.now()).map(([v, t]) => this.tokenItem(v, t));
      return { status: 200, body: { items, generation: 1, kind: 'shared:authz:tokens:authtokencollectionstate', selfLink: 'https://localhost/mgmt/shared/authz/tokens' } };
    }
    const system = method === 'GET' ? this.systemAnswer(path) : undefined;
    if (system) return { status: 200, body: system };
    if (path === '/mgmt/tm/transaction' || path.startsWith('/mgmt/tm/transaction/')) return this.transactionRequest(method, path, body);
    if (path === '/mgmt/tm/cm/failover-status' && method === 'GET') return { status: 200, body: this.failoverStatus() };
    if (path === '/mgmt/tm/cm' && method === 'POST') {
      if (body.command !== 'run' || !/^config-sync to-group \S+$/.test(str(body.utilCmdArgs))) throw new F5Error(400, 'Found invalid JSON body in the request.');
      this.store.syncs++;
      return { status: 200, body: { kind: 'tm:cm:runstate', ...body } };
    }
    if (path === '/mgmt/tm/sys/config' && method === 'POST') {
      if (body.command !== 'save') throw new F5Error(400, `Found invalid JSON body in the request.`);
      this.store.saves++;
      return { status: 200, body: { kind: 'tm:sys:config:savestate', command: 'save' } };
    }
    return { status: 200, body: execute(this.store, method, path, q, body, this.tmosVersion) };
  }

  private tokenRequest(method: string, value: string, body: F5Obj): { status: number; body: F5Obj } {
    const t = this.tokens.get(value);
    if (!t || t.expires <= Date.now()) throw new F5Error(404, `Token ${value.slice(0, 4)}... does not exist.`);
    if (method === 'DELETE') {
      this.tokens.delete(value);
      return { status: 200, body: {} };
    }
    if (method === 'PATCH') {
      const timeout = Number(body.timeout);
      if (!Number.isInteger(timeout) || timeout < 1) throw new F5Error(400, 'Found invalid JSON body in the request.');
      if (timeout > 36000) throw new F5Error(406, 'Timeout value is greater than the maximum 36000 seconds.');
      // *unconfirmed*: we treat the new timeout as counted from now
      t.timeoutS = timeout;
      t.lastUpdate = Date.now();
      t.expires = Date.now() + timeout * 1000;
    }
    return { status: 200, body: this.tokenItem(value, t) };
  }

  /** What every SDK asks first: the sys collection (version probe), the version, folders and partitions. */
  private systemAnswer(path: string): F5Obj | undefined {
    const v = this.tmosVersion;
    const link = (p: string): F5Obj => ({ reference: { link: `https://localhost/mgmt/tm/${p}?ver=${v}` } });
    if (path === '/mgmt/tm/sys') return { kind: 'tm:sys:syscollectionstate', selfLink: `https://localhost/mgmt/tm/sys?ver=${v}`, items: ['sys/config', 'sys/folder', 'sys/version', 'sys/global-settings'].map(link) };
    if (path === '/mgmt/tm/sys/version') {
      const entries = { Build: '0.0.4', Date: 'Thu Jan  1 00:00:00 UTC 2026', Edition: 'Final', Product: 'BIG-IP', Title: 'Main Package', Version: v };
      return { kind: 'tm:sys:version:versionstats', selfLink: `https://localhost/mgmt/tm/sys/version?ver=${v}`, entries: { [`https://localhost/mgmt/tm/sys/version/0`]: { nestedStats: { entries: Object.fromEntries(Object.entries(entries).map(([k, d]) => [k, { description: d }])) } } } };
    }
    const partitions = [...this.store.partitions];
    if (path === '/mgmt/tm/sys/folder') {
      const folders = [{ name: '/', fullPath: '/' }, ...partitions.map((p) => ({ name: p, partition: 'none', fullPath: `/${p}` }))];
      return { kind: 'tm:sys:folder:foldercollectionstate', selfLink: `https://localhost/mgmt/tm/sys/folder?ver=${v}`, items: folders.map((f) => ({ kind: 'tm:sys:folder:folderstate', ...f, deviceGroup: 'none', inheritedDevicegroup: 'true', inheritedTrafficGroup: 'true', trafficGroup: '/Common/traffic-group-1' })) };
    }
    if (path === '/mgmt/tm/auth/partition') {
      return { kind: 'tm:auth:partition:partitioncollectionstate', selfLink: `https://localhost/mgmt/tm/auth/partition?ver=${v}`, items: partitions.map((p) => ({ kind: 'tm:auth:partition:partitionstate', name: p, fullPath: p, generation: 1, defaultRouteDomain: 0 })) };
    }
    return undefined;
  }

  private failoverStatus(): F5Obj {
    const status = this.standby ? 'STANDBY' : 'ACTIVE';
    return {
      kind: 'tm:cm:failover-status:failover-statusstats', selfLink: 'https://localhost/mgmt/tm/cm/failover-status?ver=16.1.0',
      entries: { 'https://localhost/mgmt/tm/cm/failover-status/0': { nestedStats: { entries: { color: { description: this.standby ? 'gray' : 'green' }, status: { description: status }, summary: { description: `1/1 ${status.toLowerCase()}` } } } } },
    };
  }

  private transactionRequest(method: string, path: string, body: F5Obj): { status: number; body: F5Obj } {
    for (const [k, t] of this.transactions) if (Date.now() - t.created > TRANSACTION_TIMEOUT_MS) this.transactions.delete(k);
    if (path === '/mgmt/tm/transaction' && method === 'POST') {
      const id = String(this.nextTransaction++);
      this.transactions.set(id, { id, queued: [], created: Date.now() });
      return { status: 200, body: { transId: Number(id), state: 'STARTED', timeoutSeconds: 120, asyncExecution: false, validateOnly: false, executionTimeout: 300, kind: 'tm:transactionstate', selfLink: `https://localhost/mgmt/tm/transaction/${id}?ver=${this.tmosVersion}` } };
    }
    const id = path.split('/')[4] ?? '';
    const t = this.transactions.get(id);
    if (!t) throw new F5Error(404, `Transaction ${id} was not found.`);
    if (method === 'GET') return { status: 200, body: { transId: Number(id), state: 'STARTED', commands: t.queued.length } };
    if (method === 'DELETE') {
      this.transactions.delete(id);
      return { status: 200, body: {} };
    }
    if (method === 'PATCH' && body.state === 'VALIDATING') return this.commit(t, body.validateOnly === true);
    throw new F5Error(400, 'Found invalid JSON body in the request.');
  }

  /** Applies a transaction's commands all or none; with validateOnly, checks them and applies nothing. */
  private commit(t: Transaction, validateOnly: boolean): { status: number; body: F5Obj } {
    // *unconfirmed* wording; the refusal of an empty commit is from an issue's research
    if (t.queued.length === 0) throw new F5Error(400, `transaction failed: Transaction ${t.id} has no commands to commit (nothing to commit).`);
    const next = this.store.clone();
    for (const [i, c] of t.queued.entries()) {
      try {
        const [p, query = ''] = c.path.split('?');
        execute(next, c.method, p ?? '', new URLSearchParams(query), c.body, this.tmosVersion);
      } catch (err) {
        this.transactions.delete(t.id);
        const e = err instanceof F5Error ? err : new F5Error(500, String(err));
        throw new F5Error(e.status >= 500 ? 500 : 400, `transaction failed: command ${i + 1} (${c.method} ${c.path}): ${e.message}`);
      }
    }
    if (validateOnly) return { status: 200, body: { transId: Number(t.id), state: 'VALIDATING', validateOnly: true, kind: 'tm:transactionstate' } };
    this.transactions.delete(t.id);
    this.store.adopt(next);
    this.o.onChange?.();
    return { status: 200, body: { transId: Number(t.id), state: 'COMPLETED', kind: 'tm:transactionstate' } };
  }
}

/** An object as a GET returns it (with `$select` applied). */
function render(collection: string, o: F5Obj, select: readonly string[] | undefined): F5Obj {
  const out: F5Obj = { kind: COLLECTIONS[collection]?.kind ?? '', generation: 1, selfLink: `https://localhost/mgmt/tm/${collection}/${str(o.fullPath).replace(/\//g, '~')}?ver=16.1.0` };
  for (const [k, v] of Object.entries(o)) out[k] = v;
  if (!select) return out;
  return Object.fromEntries(select.filter((k) => out[k] !== undefined).map((k) => [k, out[k]]));
}

/** Since TMOS 14 a tunnel's FDB records are a sub-collection, answered inline only when asked to expand. */
const recordsAreSubcollection = (tmos: string): boolean => Number.parseInt(tmos, 10) >= 14;

function recordItems(store: IControlStore, tunnelPath: string, tmos: string): F5Obj[] {
  const tilde = tunnelPath.replace(/\//g, '~');
  return [...store.fdbRecords(tunnelPath)].map(([name, endpoint]) => ({
    kind: 'tm:net:fdb:tunnel:records:recordsstate', name, endpoint, selfLink: `https://localhost/mgmt/tm/net/fdb/tunnel/${tilde}/records/${name}?ver=${tmos}`,
  }));
}

function fdbTunnel(store: IControlStore, tunnelPath: string, select: readonly string[] | undefined, q: URLSearchParams, tmos: string): F5Obj {
  const [, partition = 'Common', name = ''] = tunnelPath.split('/');
  const tilde = tunnelPath.replace(/\//g, '~');
  const inline = !recordsAreSubcollection(tmos) || q.get('expandSubcollections') === 'true';
  const records = store.fdbRecords(tunnelPath).size > 0 ? (recordsAreSubcollection(tmos) ? recordItems(store, tunnelPath, tmos) : [...store.fdbRecords(tunnelPath)].map(([n, endpoint]) => ({ name: n, endpoint }))) : [];
  // a tunnel without records answers without `records`, as a BIG-IP does
  const full: F5Obj = {
    kind: 'tm:net:fdb:tunnel:tunnelstate', name, partition, fullPath: tunnelPath, selfLink: `https://localhost/mgmt/tm/net/fdb/tunnel/${tilde}?ver=${tmos}`,
    ...(inline ? (records.length > 0 ? { records } : {}) : { recordsReference: { link: `https://localhost/mgmt/tm/net/fdb/tunnel/${tilde}/records?ver=${tmos}`, isSubcollection: true } }),
  };
  return select ? Object.fromEntries(select.filter((k) => full[k] !== undefined).map((k) => [k, full[k]])) : full;
}

/** `partition eq X` (the only $filter the driver and CIS use). */
function partitionFilter(q: URLSearchParams): string | undefined {
  const f = q.get('$filter');
  if (f === null) return undefined;
  const m = /^partition\s+eq\s+(\S+)$/.exec(f.trim());
  if (!m) throw new F5Error(400, `Query parameter $filter "${f}" is not supported.`);
  return m[1];
}

/** One configuration request against a store (used directly and when a transaction commits). */
export function execute(store: IControlStore, method: string, path: string, q: URLSearchParams, body: F5Obj, tmos: string = NEWEST_TMOS): F5Obj {
  const select = q.get('$select')?.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const fdb = /^\/mgmt\/tm\/net\/fdb\/tunnel(?:\/([^/]+)(?:\/records(?:\/([^/]+))?)?)?$/.exec(path);
  if (fdb) return executeFdb(store, { method, path, tunnelSeg: fdb[1], recordSeg: fdb[2], body, select, q, tmos });
  const m = /^\/mgmt\/tm\/(net\/tunnels\/vxlan|net\/tunnels\/tunnel|net\/self|net\/arp|net\/ndp|net\/route)(?:\/([^/]+))?$/.exec(path);
  if (!m) throw new F5Error(404, `URI path ${path} not registered.  Please verify URI is supported and wait for /available suffix to be responsive.`);
  const collection = m[1] ?? '';
  const item = m[2] === undefined ? undefined : pathOfTilde(m[2]);
  if (item === undefined) {
    if (method === 'GET') {
      const partition = partitionFilter(q);
      const items = store.list(collection).filter((o) => partition === undefined || o.partition === partition).map((o) => render(collection, o, select));
      return { kind: `${COLLECTIONS[collection]?.kind.replace(/state$/, 'collectionstate') ?? ''}`, selfLink: `https://localhost/mgmt/tm/${collection}?ver=16.1.0`, items };
    }
    if (method === 'POST') return render(collection, store.create(collection, body), undefined);
    throw new F5Error(405, `Method ${method} is not allowed on ${path}.`);
  }
  switch (method) {
    case 'GET': return render(collection, store.get(collection, item), select);
    case 'PATCH': return render(collection, store.modify(collection, item, body, false), undefined);
    case 'PUT': return render(collection, store.modify(collection, item, body, true), undefined);
    case 'DELETE': store.remove(collection, item); return {};
    default: throw new F5Error(405, `Method ${method} is not allowed on ${path}.`);
  }
}

interface FdbRequest {
  readonly method: string; readonly path: string; readonly tunnelSeg: string | undefined; readonly recordSeg: string | undefined;
  readonly body: F5Obj; readonly select: readonly string[] | undefined; readonly q: URLSearchParams; readonly tmos: string;
}

function executeFdb(store: IControlStore, r: FdbRequest): F5Obj {
  const { method, path, body, select, q, tmos } = r;
  if (r.tunnelSeg === undefined) {
    if (method !== 'GET') throw new F5Error(405, `Method ${method} is not allowed on ${path}.`);
    return { kind: 'tm:net:fdb:tunnel:tunnelcollectionstate', items: [...store.records.keys()].map((t) => fdbTunnel(store, t, select, q, tmos)) };
  }
  const tunnel = pathOfTilde(r.tunnelSeg);
  if (path.endsWith('/records') && method === 'POST') {
    store.addFdbRecord(tunnel, body);
    return body;
  }
  if (path.endsWith('/records') && method === 'GET') {
    return { kind: 'tm:net:fdb:tunnel:records:recordscollectionstate', selfLink: `https://localhost${path}?ver=${tmos}`, items: recordItems(store, tunnel, tmos) };
  }
  if (r.recordSeg !== undefined && method === 'DELETE') {
    store.deleteFdbRecord(tunnel, decodeURIComponent(r.recordSeg));
    return {};
  }
  if (r.recordSeg === undefined && !path.endsWith('/records')) {
    if (method === 'GET') return fdbTunnel(store, tunnel, select, q, tmos);
    if (method === 'PUT' || method === 'PATCH') {
      // `records: null` clears the set; a PUT without records replaces it with none
      if (body.records === null) store.setFdbRecords(tunnel, []);
      else if (body.records !== undefined) store.setFdbRecords(tunnel, body.records);
      else if (method === 'PUT') store.setFdbRecords(tunnel, []);
      return fdbTunnel(store, tunnel, undefined, q, tmos);
    }
  }
  throw new F5Error(405, `Method ${method} is not allowed on ${path}.`);
}
