/**
 * The NITRO emulator: an HTTPS server that answers like a Citrix ADC's NITRO REST API (URL forms,
 * args/filter/count, login sessions and expiry, envelopes, error codes and statuses, bulk with
 * 207, idempotent adds), records every call, and can inject faults: 5xx bursts, requests that
 * never answer, expired sessions, and the answers of a secondary HA node. After each change it
 * calls onChange so the data plane (dataplane.ts) follows the configuration. Test and lab only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { ERR, NITRO_SPECIFIC, NitroError, NitroStore, NO_SUCH_RESOURCE, RESOURCES, keyOf, type NitroObject } from './store.ts';
import { HttpsEmulator } from '../https-emulator.ts';

export interface NitroCall {
  method: string; resource: string; action?: string; items: number; status: number; write: boolean; errorcode: number;
  /** The session the call came in (its NITRO_AUTH_TOKEN), to tell two clients apart; when it arrived (ms since the epoch). */
  session?: string; at: number;
  /** This node was the secondary of its HA pair when the call arrived. */
  secondary: boolean;
}

export interface NitroEmulatorOptions {
  readonly username: string;
  readonly password: string;
  readonly tls: { cert: Buffer; key: Buffer };
  readonly hostname?: string;
  /** The other node of an HA pair (its address); absent: a standalone ADC. */
  readonly haPeer?: string;
  readonly onChange?: () => void;
}

const PREFIX = '/nitro/v1/config/';

type Recorder = (status: number, items: number, errorcode?: number) => void;

function envelope(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { errorcode: 0, message: 'Done', severity: 'NONE', ...extra };
}

/**
 * A GET filter: `prop:value` compares the value as text (case-insensitive, as the NITRO
 * examples `filter=servicetype:ssl` and `filter=curstate:DOWN` use it), `prop:/regex/` is a
 * regular expression (the NITRO reference; an issue's research for this project). A value such as
 * `^4096$` is text, and matches nothing.
 */
export function filterMatches(filter: NitroObject, o: NitroObject): boolean {
  return Object.entries(filter).every(([k, v]) => {
    const want = String(v);
    const have = typeof o[k] === 'string' || typeof o[k] === 'number' || typeof o[k] === 'boolean' ? String(o[k]) : '';
    const re = /^\/(.*)\/$/.exec(want);
    return re ? new RegExp(re[1] ?? '').test(have) : have.toLowerCase() === want.toLowerCase();
  });
}

/** Resources a DELETE must name by every key (the reference's documented forms). */
const MULTI_KEY_DELETE: Readonly<Record<string, readonly string[]>> = {
  vxlan_srcip_binding: ['id', 'srcip'], bridgetable: ['mac', 'vxlan', 'vtep'], policystringmap_pattern_binding: ['name', 'key'],
  // `rm route6 <network> <gateway>`: this emulator needs the gateway (the ADC may take the network alone when it has one route to it: unconfirmed)
  route6: ['network', 'gateway'],
};

/**
 * An nd6 entry is deleted by name with the VLAN or VXLAN it is on (the official Terraform
 * provider always sends one, `vlan:1` when it knows neither); on another one it is not found.
 */
function checkNd6Delete(args: NitroObject, entry: NitroObject | undefined): void {
  if (args.vlan === undefined && args.vxlan === undefined) throw new NitroError(ERR.REQUIRED_ARGUMENT, 400, 'Required argument missing [vlan or vxlan]');
  if (entry && args.vxlan !== undefined && String(entry.vxlan ?? '') !== String(args.vxlan)) throw NO_SUCH_RESOURCE();
  if (entry && args.vlan !== undefined && String(entry.vlan ?? '') !== String(args.vlan)) throw NO_SUCH_RESOURCE();
}

/** `k:v,k:v` (args) -> object; values may be URL-encoded. */
function parsePairs(text: string | null): NitroObject {
  const out: NitroObject = {};
  if (!text) return out;
  for (const part of text.split(',')) {
    const i = part.indexOf(':');
    if (i > 0) out[part.slice(0, i)] = decodeURIComponent(part.slice(i + 1));
  }
  return out;
}

export class NitroEmulator extends HttpsEmulator {
  store = new NitroStore();
  readonly calls: NitroCall[] = [];
  private readonly o: NitroEmulatorOptions;
  private readonly sessions = new Map<string, { expires: number; timeoutMs: number }>();
  /** Objects (resource + key) the ADC refuses, with the NITRO error it answers (fault injection). */
  private readonly refused = new Map<string, NitroError>();
  secondary = false;
  /** The other node of an HA pair (its address), or undefined: a standalone ADC. */
  haPeer: string | undefined;

  constructor(o: NitroEmulatorOptions) {
    super(o.tls, 503);
    this.o = o;
    this.haPeer = o.haPeer;
  }

  protected crash(res: ServerResponse, err: unknown): void {
    const e = err instanceof NitroError ? err : new NitroError(1, 500, `Internal error: ${err instanceof Error ? err.message : String(err)}`);
    this.reply(res, e.httpStatus, { errorcode: e.errorcode, message: e.message, severity: 'ERROR' });
  }

  // fault injection (failNext, hangNext: HttpsEmulator)
  expireSessions(): void {
    this.sessions.clear();
  }
  /** From now on the ADC refuses this object (add, update, delete) with a NITRO error and HTTP 599. */
  refuseObject(resource: string, key: NitroObject, errorcode: number = ERR.INVALID_VALUE, message = 'Invalid argument value [injected refusal]'): void {
    this.refused.set(`${resource}|${keyOf(resource, key)}`, new NitroError(errorcode, NITRO_SPECIFIC, message));
  }
  private refusal(resource: string, obj: NitroObject): NitroError | undefined {
    try {
      return this.refused.get(`${resource}|${keyOf(resource, obj)}`);
    } catch {
      return undefined;
    }
  }
  writes(): NitroCall[] {
    return this.calls.filter((c) => c.write);
  }

  private authenticated(req: IncomingMessage): boolean {
    const user = req.headers['x-nitro-user'];
    if (user !== undefined) return user === this.o.username && req.headers['x-nitro-pass'] === this.o.password;
    const token = /NITRO_AUTH_TOKEN=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    const s = token ? this.sessions.get(token) : undefined;
    if (!s) return false;
    if (Date.now() > s.expires) {
      this.sessions.delete(token ?? '');
      return false;
    }
    s.expires = Date.now() + s.timeoutMs;
    return true;
  }

  private async body(req: IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    if (text.trim() === '') return {};
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new NitroError(278, 400, 'Invalid argument [body is not JSON]');
    }
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://adc');
    const method = req.method ?? 'GET';
    if (url.pathname === '/emulator/calls' && this.authenticated(req)) return this.reply(res, 200, { calls: this.calls });
    if (!url.pathname.startsWith(PREFIX)) return this.reply(res, 404, { errorcode: 258, message: 'No such resource', severity: 'ERROR' });
    const [resource = '', rawId] = url.pathname.slice(PREFIX.length).split('/');
    const action = url.searchParams.get('action') ?? undefined;
    const session = /NITRO_AUTH_TOKEN=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    const at = Date.now();
    const secondary = this.secondary;
    const record: Recorder = (status, items, errorcode = 0) => {
      this.calls.push({ method, resource, ...(action ? { action } : {}), items, status, write: method !== 'GET' && resource !== 'login' && resource !== 'logout', errorcode, ...(session ? { session } : {}), at, secondary });
    };
    if (this.injectedFault(resource, res, record)) return;
    if (resource === 'login' && method === 'POST') return this.login(req, res, record);
    if (!this.authenticated(req)) return this.unauthenticated(req, res, record);
    await this.delayWrite(method);
    if (await this.special(req, res, resource, method, action, record)) return;
    if (!RESOURCES[resource]) {
      record(400, 0, 278);
      return this.reply(res, 400, { errorcode: 278, message: `Invalid argument [resource ${resource}]`, severity: 'ERROR' });
    }
    return this.resourceRequest(req, res, url, method, resource, rawId, record);
  }

  /** A 5xx burst or a request that never answers, when injected. */
  private injectedFault(resource: string, res: ServerResponse, record: Recorder): boolean {
    if (resource === 'login') return false;
    const fault = this.takeFault(res);
    if (!fault) return false;
    if (fault.kind === 'hang') record(0, 0);
    else if (fault.kind === 'answer') {
      record(fault.status, 0, Number(fault.body.errorcode ?? 0));
      this.reply(res, fault.status, fault.body);
    } else if (fault.kind === 'stream') {
      record(fault.answer.status, 0);
      this.sendStream(res, fault.answer);
    }
    else {
      record(fault.status, 0, 1);
      this.reply(res, fault.status, { errorcode: 1, message: 'Internal error (injected)', severity: 'ERROR' });
    }
    return true;
  }

  private async login(req: IncomingMessage, res: ServerResponse, record: Recorder): Promise<void> {
    const b = (await this.body(req)).login as { username?: string; password?: string; timeout?: number } | undefined;
    if (b?.username !== this.o.username || b.password !== this.o.password) {
      record(401, 1, 354);
      return this.reply(res, 401, { errorcode: 354, message: 'Invalid username or password', severity: 'ERROR' });
    }
    const token = randomBytes(16).toString('hex');
    const timeoutMs = (b.timeout ?? 1800) * 1000;
    this.sessions.set(token, { expires: Date.now() + timeoutMs, timeoutMs });
    record(201, 1);
    return this.reply(res, 201, envelope({ sessionid: token }), { 'Set-Cookie': `NITRO_AUTH_TOKEN=${token}; Path=/nitro/v1; HttpOnly` });
  }

  private unauthenticated(req: IncomingMessage, res: ServerResponse, record: Recorder): void {
    const expired = /NITRO_AUTH_TOKEN=/.test(req.headers.cookie ?? '');
    record(401, 0, expired ? 444 : 1027);
    this.reply(res, 401, expired ? { errorcode: 444, message: 'Session expired or killed. Please login again', severity: 'ERROR' } : { errorcode: 1027, message: 'Not logged in or connection timed out', severity: 'ERROR' });
  }

  /** logout, hanode, the secondary-node answer, nsconfig save and nspbrs apply. */
  private async special(req: IncomingMessage, res: ServerResponse, resource: string, method: string, action: string | undefined, record: Recorder): Promise<boolean> {
    if (resource === 'logout') {
      const token = /NITRO_AUTH_TOKEN=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
      if (token) this.sessions.delete(token);
      record(201, 1);
      this.reply(res, 201, envelope());
      return true;
    }
    if (resource === 'hanode' && method === 'GET') {
      // the local node is id 0, its peer 1..64; each lists the other with the other's state
      const local = this.secondary ? 'Secondary' : 'Primary';
      const peer = this.haPeer ? [{ id: '1', ipaddress: this.haPeer, state: this.secondary ? 'Primary' : 'Secondary' }] : [];
      record(200, 0);
      this.reply(res, 200, envelope({ hanode: [{ id: '0', ipaddress: this.o.hostname ?? '', state: local }, ...peer] }));
      return true;
    }
    if (this.secondary && method !== 'GET') {
      // HTTP status of 1028 is unconfirmed in the reference; 403 is our choice
      record(403, 0, 1028);
      this.reply(res, 403, { errorcode: 1028, message: 'Connected to a secondary node: changes are not propagated', severity: 'ERROR' });
      return true;
    }
    if (resource === 'nsconfig' && action === 'save') {
      await this.body(req);
      this.store.saves++;
      record(200, 1);
      this.reply(res, 200, envelope());
      return true;
    }
    if (resource === 'nspbrs' && action === 'apply') {
      await this.body(req);
      this.store.applyPbrs();
      record(200, 1);
      this.o.onChange?.();
      this.reply(res, 200, envelope());
      return true;
    }
    if (action !== undefined) {
      // an action this ADC does not have for the resource is refused, never taken for an add (unconfirmed code)
      record(400, 0, ERR.INVALID_ARGUMENT);
      this.reply(res, 400, { errorcode: ERR.INVALID_ARGUMENT, message: `Invalid argument [action, value ${action}]`, severity: 'ERROR' });
      return true;
    }
    return false;
  }

  private async resourceRequest(req: IncomingMessage, res: ServerResponse, url: URL, method: string, resource: string, rawId: string | undefined, record: Recorder): Promise<void> {
    const id = rawId === undefined ? undefined : decodeURIComponent(decodeURIComponent(rawId));
    const idObj: NitroObject = id === undefined ? {} : { [RESOURCES[resource]?.keys[0] ?? 'id']: id };
    const args = { ...idObj, ...parsePairs(url.searchParams.get('args')) };
    switch (method) {
      case 'GET': return this.get(res, resource, args, parsePairs(url.searchParams.get('filter')), url.searchParams.get('count') === 'yes', id !== undefined, record);
      case 'DELETE': {
        try {
          // a binding or a bridge table entry is named by all its keys (`vxlan_srcip_binding/<id>?args=srcip:<ip>`)
          const missing = (MULTI_KEY_DELETE[resource] ?? []).find((k) => args[k] === undefined || args[k] === '');
          if (missing) throw new NitroError(ERR.REQUIRED_ARGUMENT, 400, `Required argument missing [${missing}]`);
          if (resource === 'nd6') checkNd6Delete(args, this.store.table('nd6').get(keyOf('nd6', args)));
          const refused = this.refusal(resource, args);
          if (refused) throw refused;
          this.store.delete(resource, args);
        } catch (err) {
          if (err instanceof NitroError) record(err.httpStatus, 1, err.errorcode);
          throw err;
        }
        record(200, 1);
        this.o.onChange?.();
        return this.reply(res, 200, envelope());
      }
      case 'POST':
      case 'PUT': {
        const payload = (await this.body(req))[resource];
        const items = (Array.isArray(payload) ? payload : [payload]).filter((x): x is NitroObject => typeof x === 'object' && x !== null);
        if (items.length === 0) throw new NitroError(1095, 400, `Required argument missing [${resource}]`);
        const onError = String(req.headers['x-nitro-onerror'] ?? 'exit');
        return this.write(res, method, resource, items, Array.isArray(payload), onError, url.searchParams.get('idempotent') === 'yes', record);
      }
      default:
        throw new NitroError(257, 405, 'Operation not permitted');
    }
  }

  private get(res: ServerResponse, resource: string, args: NitroObject, filter: NitroObject, count: boolean, byId: boolean, record: Recorder): void {
    const matches = (o: NitroObject): boolean =>
      Object.entries(args).every(([k, v]) => String(o[k] ?? '').toLowerCase() === String(v).toLowerCase()) && filterMatches(filter, o);
    const found = this.store.list(resource, matches);
    if (byId && found.length === 0) {
      record(404, 0, 258);
      throw NO_SUCH_RESOURCE();
    }
    record(200, 0);
    if (count) return this.reply(res, 200, envelope({ [resource]: [{ __count: found.length }] }));
    return this.reply(res, 200, envelope(found.length > 0 ? { [resource]: found.map((o) => this.store.render(resource, o)) } : {}));
  }

  private write(res: ServerResponse, method: string, resource: string, items: NitroObject[], bulk: boolean, onError: string, idempotent: boolean, record: Recorder): void {
    const results: Record<string, unknown>[] = [];
    const snapshot = onError === 'rollback' ? new Map([...this.store.table(resource)]) : undefined;
    let failed = 0;
    for (const item of items) {
      try {
        const refused = this.refusal(resource, item);
        if (refused) throw refused;
        if (method === 'PUT') this.store.update(resource, item);
        else this.store.add(resource, item, idempotent);
        results.push(envelope());
      } catch (err) {
        const e = err instanceof NitroError ? err : new NitroError(1, 500, String(err));
        failed++;
        results.push({ errorcode: e.errorcode, message: e.message, severity: 'ERROR' });
        if (!bulk) {
          record(e.httpStatus, 1, e.errorcode);
          if (results.length > 0) this.o.onChange?.();
          throw e;
        }
        if (onError !== 'continue') break;
      }
    }
    if (snapshot && failed > 0) {
      const t = this.store.table(resource);
      t.clear();
      for (const [k, v] of snapshot) t.set(k, v);
    }
    this.o.onChange?.();
    const okStatus = method === 'PUT' || idempotent ? 200 : 201;
    if (failed === 0) {
      record(okStatus, items.length);
      return this.reply(res, okStatus, envelope());
    }
    record(207, items.length, 1243);
    return this.reply(res, 207, { errorcode: 1243, message: 'Bulk operation failed', severity: 'ERROR', response: results });
  }
}
