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
}

export interface IControlEmulatorOptions {
  readonly username: string;
  readonly password: string;
  readonly tls: { cert: Buffer; key: Buffer };
  /** Lifetime of a token from login, seconds (BIG-IP: 1200). */
  readonly tokenTimeoutS?: number;
  readonly onChange?: () => void;
}

interface Token { readonly user: string; expires: number; timeoutS: number; readonly started: number }
interface Queued { readonly method: string; readonly path: string; readonly body: F5Obj }
interface Transaction { readonly id: string; readonly queued: Queued[]; readonly created: number }

const MCPD_LOST = 'The connection to mcpd has been lost, try again.';
const MAX_TOKENS = 100;
const TRANSACTION_TIMEOUT_MS = 120_000; // *unconfirmed*: the reference gives 30–120 s

const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');

/** `~Common~name` -> `/Common/name`. */
const pathOfTilde = (segment: string): string => decodeURIComponent(segment).replace(/~/g, '/');

/** Fields a real BIG-IP answers as strings (numbers kept as numbers elsewhere). */
const AS_STRING = new Set(['key', 'mtu']);

export class IControlEmulator extends HttpsEmulator {
  store = new IControlStore();
  readonly calls: IControlCall[] = [];
  private readonly o: IControlEmulatorOptions;
  private readonly tokens = new Map<string, Token>();
  private readonly transactions = new Map<string, Transaction>();
  private nextTransaction = 1_700_000_000_000;
  /** Answer failover-status with STANDBY (and refuse nothing: a real standby accepts writes). */
  standby = false;

  constructor(o: IControlEmulatorOptions) {
    super(o.tls, 500);
    this.o = o;
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
    return [...this.tokens.values()].filter((t) => t.expires > Date.now()).length;
  }

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
    const path = url.pathname;
    const txHeader = req.headers['x-f5-rest-coordination-id'];
    const tx = typeof txHeader === 'string' ? txHeader : undefined;
    // logins and token renewals are not configuration writes; transactions and queued requests are
    const auth = path.startsWith('/mgmt/shared/') || path.startsWith('/emulator/');
    const record = (status: number): void => {
      this.calls.push({ method, path, status, write: method !== 'GET' && !auth, ...(tx ? { transaction: tx } : {}) });
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
    if (tx && !path.startsWith('/mgmt/tm/transaction') && method !== 'GET') return { status: 200, body: this.enqueue(tx, method, path, body) };
    return this.route(method, path, r.url.searchParams, body);
  }

  /** Queues a request in a transaction (applied at commit) and returns the device's answer. */
  private enqueue(tx: string, method: string, path: string, body: F5Obj): F5Obj {
    const t = this.transactions.get(tx);
    if (!t) throw new F5Error(404, `Transaction ${tx} was not found.`);
    t.queued.push({ method, path, body });
    return { ...body, kind: 'tm:transaction:commandsstate', method, uri: path };
  }

  /** A 5xx burst or a request that never answers, when injected. */
  private injectedFault(res: ServerResponse, record: (status: number) => void): boolean {
    const fault = this.takeFault(res);
    if (!fault) return false;
    if (fault.kind === 'hang') record(0);
    else {
      record(fault.status);
      this.reply(res, fault.status, new F5Error(fault.status, MCPD_LOST).body());
    }
    return true;
  }

  private tokenItem(value: string, t: Token): F5Obj {
    return {
      token: value, name: value, userName: t.user, timeout: t.timeoutS,
      startTime: new Date(t.started).toISOString(), expirationMicros: t.expires * 1000, lastUpdateMicros: Date.now() * 1000,
      kind: 'shared:authz:tokens:authtokenitemstate', selfLink: `https://localhost/mgmt/shared/authz/tokens/${value}`,
    };
  }

  private login(b: F5Obj): F5Obj {
    if (b.username !== this.o.username || b.password !== this.o.password) throw new F5Error(401, 'Authentication failed.');
    for (const [k, t] of this.tokens) if (t.expires <= Date.now()) this.tokens.delete(k);
    if ([...this.tokens.values()].filter((t) => t.user === this.o.username).length >= MAX_TOKENS) throw new F5Error(400, `User ${this.o.username} has reached the maximum of ${MAX_TOKENS} active login tokens.`);
    const value = randomBytes(18).toString('base64url').toUpperCase();
    const timeoutS = this.o.tokenTimeoutS ?? 1200;
    const t: Token = { user: this.o.username, timeoutS, started: Date.now(), expires: Date.now() + timeoutS * 1000 };
    this.tokens.set(value, t);
    return { username: this.o.username, loginProviderName: str(b.loginProviderName) || 'tmos', token: this.tokenItem(value, t) };
  }

  /** Everything after authentication, outside a transaction. */
  private route(method: string, path: string, q: URLSearchParams, body: F5Obj): { status: number; body: F5Obj } {
    const tokenPath = /^\/mgmt\/shared\/authz\/tokens\/([^/]+)$/.exec(path);
    if (tokenPath) return this.tokenRequest(method, decodeURIComponent(tokenPath[1] ?? ''), body);
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
    return { status: 200, body: execute(this.store, method, path, q, body) };
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
      t.expires = Date.now() + timeout * 1000;
    }
    return { status: 200, body: this.tokenItem(value, t) };
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
      return { status: 200, body: { transId: Number(id), state: 'STARTED', timeoutSeconds: 120, asyncExecution: false, validateOnly: false, executionTimeout: 300, kind: 'tm:transactionstate' } };
    }
    const id = path.split('/')[4] ?? '';
    const t = this.transactions.get(id);
    if (!t) throw new F5Error(404, `Transaction ${id} was not found.`);
    if (method === 'GET') return { status: 200, body: { transId: Number(id), state: 'STARTED', commands: t.queued.length } };
    if (method === 'DELETE') {
      this.transactions.delete(id);
      return { status: 200, body: {} };
    }
    if (method === 'PATCH' && body.state === 'VALIDATING') {
      this.transactions.delete(id);
      const next = this.store.clone();
      for (const [i, c] of t.queued.entries()) {
        try {
          const [p, query = ''] = c.path.split('?');
          execute(next, c.method, p ?? '', new URLSearchParams(query), c.body);
        } catch (err) {
          const e = err instanceof F5Error ? err : new F5Error(500, String(err));
          throw new F5Error(e.status >= 500 ? 500 : 400, `transaction failed: command ${i + 1} (${c.method} ${c.path}): ${e.message}`);
        }
      }
      this.store.adopt(next);
      this.o.onChange?.();
      return { status: 200, body: { transId: Number(id), state: 'COMPLETED', kind: 'tm:transactionstate' } };
    }
    throw new F5Error(400, 'Found invalid JSON body in the request.');
  }
}

/** An object as a GET returns it (with `$select` applied). */
function render(collection: string, o: F5Obj, select: readonly string[] | undefined): F5Obj {
  const out: F5Obj = { kind: COLLECTIONS[collection]?.kind ?? '', generation: 1, selfLink: `https://localhost/mgmt/tm/${collection}/${str(o.fullPath).replace(/\//g, '~')}?ver=16.1.0` };
  for (const [k, v] of Object.entries(o)) out[k] = AS_STRING.has(k) && typeof v === 'number' ? String(v) : v;
  if (!select) return out;
  return Object.fromEntries(select.filter((k) => out[k] !== undefined).map((k) => [k, out[k]]));
}

function fdbTunnel(store: IControlStore, tunnelPath: string, select: readonly string[] | undefined): F5Obj {
  const records = [...store.fdbRecords(tunnelPath)].map(([name, endpoint]) => ({ name, endpoint }));
  const [, partition = 'Common', name = ''] = tunnelPath.split('/');
  // a tunnel without records answers without the `records` field, as a BIG-IP does
  const full: F5Obj = { kind: 'tm:net:fdb:tunnel:tunnelstate', name, partition, fullPath: tunnelPath, ...(records.length > 0 ? { records } : {}) };
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
export function execute(store: IControlStore, method: string, path: string, q: URLSearchParams, body: F5Obj): F5Obj {
  const select = q.get('$select')?.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const fdb = /^\/mgmt\/tm\/net\/fdb\/tunnel(?:\/([^/]+)(?:\/records(?:\/([^/]+))?)?)?$/.exec(path);
  if (fdb) return executeFdb(store, method, path, fdb[1], fdb[2], body, select);
  const m = /^\/mgmt\/tm\/(net\/tunnels\/vxlan|net\/tunnels\/tunnel|net\/self|net\/arp|net\/route)(?:\/([^/]+))?$/.exec(path);
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

function executeFdb(store: IControlStore, method: string, path: string, tunnelSeg: string | undefined, recordSeg: string | undefined, body: F5Obj, select: readonly string[] | undefined): F5Obj {
  if (tunnelSeg === undefined) {
    if (method !== 'GET') throw new F5Error(405, `Method ${method} is not allowed on ${path}.`);
    return { kind: 'tm:net:fdb:tunnel:tunnelcollectionstate', items: [...store.records.keys()].map((t) => fdbTunnel(store, t, select)) };
  }
  const tunnel = pathOfTilde(tunnelSeg);
  if (path.endsWith('/records') && method === 'POST') {
    store.addFdbRecord(tunnel, body);
    return body;
  }
  if (path.endsWith('/records') && method === 'GET') return { items: [...store.fdbRecords(tunnel)].map(([name, endpoint]) => ({ name, endpoint })) };
  if (recordSeg !== undefined && method === 'DELETE') {
    store.deleteFdbRecord(tunnel, decodeURIComponent(recordSeg));
    return {};
  }
  if (recordSeg === undefined && !path.endsWith('/records')) {
    if (method === 'GET') return fdbTunnel(store, tunnel, select);
    if (method === 'PUT' || method === 'PATCH') {
      if (body.records !== undefined) store.setFdbRecords(tunnel, body.records);
      else if (method === 'PUT') store.setFdbRecords(tunnel, []);
      return fdbTunnel(store, tunnel, undefined);
    }
  }
  throw new F5Error(405, `Method ${method} is not allowed on ${path}.`);
}
