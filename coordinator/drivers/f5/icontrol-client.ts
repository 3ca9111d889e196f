/**
 * An iControl REST client for BIG-IP: token auth (POST /mgmt/shared/authn/login, header
 * X-F5-Auth-Token) renewed about a minute before it expires (PATCH /mgmt/shared/authz/tokens/<t>),
 * a fresh login when renewal fails or the device answers 401, the token released (DELETE) on
 * close; HTTP Basic as a fallback setting (local users only). Transport, TLS and timeouts are the
 * shared HttpsJson's. Credentials never leave this module: errors name the request, never the
 * password or the token.
 */
import { DeviceApiError, HttpsJson, LoginGuard, SingleFlight, deviceError, type HttpsJsonOptions, type JsonResponse, type WriteFence } from '../https-json.ts';

export interface IControlClientOptions extends HttpsJsonOptions {
  readonly username: string;
  readonly password: string;
  readonly auth: 'token' | 'basic';
  /** Token lifetime asked for at renewal, seconds (BIG-IP allows up to 36000). */
  readonly tokenTimeoutS?: number;
  /** Renew this long before expiry. */
  readonly renewBeforeMs?: number;
}

/** iControl REST answers the driver acts on (HTTP statuses; shared/reference/f5-icontrol.md, "Errors"). */
export const ICONTROL = {
  OK: 200,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
} as const;

const LOGIN = '/mgmt/shared/authn/login';
const TOKENS = '/mgmt/shared/authz/tokens/';

export class IControlClient {
  private readonly o: IControlClientOptions;
  private readonly http: HttpsJson;
  private token: { value: string; expiresAt: number } | undefined;
  private readonly pending = new SingleFlight();
  private readonly guard = new LoginGuard('iControl');
  private fence: WriteFence | undefined;
  /** Token renewals done (tests). */
  renewals = 0;

  constructor(o: IControlClientOptions) {
    this.o = o;
    this.http = new HttpsJson(o);
  }

  get baseURL(): string {
    return this.o.baseURL;
  }

  /** From now on every configuration change (not a read, login or token renewal) passes `fence` first. */
  setWriteFence(fence: WriteFence): void {
    this.fence = fence;
    this.http.setWriteFence(fence);
  }

  private async raw(method: string, path: string, body: unknown, headers: Record<string, string>, write = false): Promise<JsonResponse> {
    return asErrorStatus(await this.http.send(method, path, body, headers, 'iControl', write));
  }

  /**
   * When a token expires, on our clock: its lifetime as the BIG-IP states it (expirationMicros -
   * lastUpdateMicros, both on the device's clock) counted from now. The device's absolute times are
   * never compared with ours: its clock may be off by any amount.
   */
  private expiryOf(item: Record<string, unknown>, fallbackS: number): number {
    const lifetimeMs = (Number(item.expirationMicros) - Number(item.lastUpdateMicros)) / 1000;
    if (Number.isFinite(lifetimeMs) && lifetimeMs > 0) return Date.now() + lifetimeMs;
    const timeout = Number(item.timeout);
    return Date.now() + (Number.isFinite(timeout) && timeout > 0 ? timeout : fallbackS) * 1000;
  }

  private async login(): Promise<void> {
    const replaced = this.token;
    this.token = undefined;
    this.guard.check();
    const r = await this.raw('POST', LOGIN, { username: this.o.username, password: this.o.password, loginProviderName: 'tmos' }, {});
    if (r.status !== ICONTROL.OK) {
      if (r.status === ICONTROL.UNAUTHORIZED || r.status === 403) this.guard.failed();
      throw errorOf('POST', 'login', r, r.status === ICONTROL.UNAUTHORIZED ? 'wrong username or password (check the credentials Secret)' : undefined);
    }
    this.guard.succeeded();
    const t = r.body.token as Record<string, unknown> | undefined;
    if (typeof t?.token !== 'string') throw new DeviceApiError(r.status, 0, 'iControl POST login: the answer carries no token');
    this.token = { value: t.token, expiresAt: this.expiryOf(t, 1200) };
    // a user may hold only 100 tokens: the one replaced is released (gone already after a 401: 404, ignored)
    if (replaced) await this.release(replaced.value);
  }

  private async release(token: string): Promise<void> {
    await this.raw('DELETE', `${TOKENS}${token}`, undefined, { 'X-F5-Auth-Token': token }).catch(() => undefined);
  }

  /** Extends the token; a failed renewal is followed by a fresh login. */
  private async renew(): Promise<void> {
    const current = this.token;
    if (!current) return this.login();
    const timeout = this.o.tokenTimeoutS ?? 3600;
    try {
      const r = await this.raw('PATCH', `${TOKENS}${current.value}`, { timeout: String(timeout) }, { 'X-F5-Auth-Token': current.value });
      if (r.status === ICONTROL.OK) {
        this.renewals++;
        this.token = { value: current.value, expiresAt: this.expiryOf(r.body, timeout) };
        return;
      }
    } catch {
      // no answer: fall through to a fresh login, which reports its own failure
    }
    return this.login();
  }

  /** A valid token, logging in or renewing first when needed (one at a time). */
  private async ensureToken(force: boolean): Promise<void> {
    const renewBefore = this.o.renewBeforeMs ?? 60_000;
    const due = force || !this.token || this.token.expiresAt - Date.now() < renewBefore;
    if (!due) return;
    return this.pending.run(async () => {
      if (force || !this.token || this.token.expiresAt <= Date.now()) await this.login();
      else await this.renew();
    });
  }

  private authHeaders(): Record<string, string> {
    if (this.o.auth === 'basic') return { Authorization: `Basic ${Buffer.from(`${this.o.username}:${this.o.password}`).toString('base64')}` };
    return this.token ? { 'X-F5-Auth-Token': this.token.value } : {};
  }

  /** One request; with token auth, logs in or renews first when due and once more after a 401. */
  async send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> {
    const write = method !== 'GET';
    if (this.o.auth === 'token') await this.ensureToken(false);
    if (write) this.fence?.();
    let r = await this.raw(method, path, body, { ...this.authHeaders(), ...headers }, write);
    if (r.status === ICONTROL.UNAUTHORIZED && this.o.auth === 'token') {
      await this.ensureToken(true);
      if (write) this.fence?.();
      r = await this.raw(method, path, body, { ...this.authHeaders(), ...headers }, write);
    }
    return r;
  }

  /** Releases the token (a user may hold only 100) and the connections. */
  async close(): Promise<void> {
    const t = this.token;
    this.token = undefined;
    if (this.o.auth === 'token' && t) await this.release(t.value);
    this.http.close();
  }
}

/**
 * iControl REST's error body (`{"code": 404, "message": "01020036:3: ...", "errorStack": []}`)
 * under a 2xx status (a proxy or a misbehaving unit in front of the API) is the error it states:
 * its `code` becomes the status, so every caller's status check sees a failure, never a success.
 */
export function asErrorStatus(r: JsonResponse): JsonResponse {
  const { code, message, kind } = r.body;
  if (r.status < 200 || r.status >= 300) return r;
  if (typeof code !== 'number' || code < 400 || code > 599 || typeof message !== 'string' || kind !== undefined) return r;
  return { ...r, status: code };
}

/** An error naming the request and the device's message (never credentials). */
export function errorOf(method: string, what: string, r: JsonResponse, hint?: string): DeviceApiError {
  return deviceError('iControl', method, what, r, Number(r.body.code ?? r.status), hint);
}
