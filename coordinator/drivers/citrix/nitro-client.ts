/**
 * A NITRO REST client: session login (NITRO_AUTH_TOKEN) with a fresh login when the session
 * expired (401 with errorcode 444 or 1027), per-request header auth as a fallback setting,
 * logout on close; transport, TLS and timeouts are the shared HttpsJson's.
 * Credentials never leave this module: errors name the request, never the password.
 */
import { DeviceApiError, HttpsJson, LoginGuard, SingleFlight, deviceError, type HttpsJsonOptions, type WriteFence } from '../https-json.ts';
import { NITRO } from './objects.ts';

export interface NitroClientOptions extends HttpsJsonOptions {
  readonly username: string;
  readonly password: string;
  readonly auth: 'session' | 'header';
  readonly sessionTimeoutS?: number;
}


export interface NitroResponse { status: number; body: Record<string, unknown> }

export class NitroClient {
  private readonly o: NitroClientOptions;
  private readonly http: HttpsJson;
  private token: string | undefined;
  private readonly loggingIn = new SingleFlight();
  private readonly guard = new LoginGuard('NITRO');
  private fence: WriteFence | undefined;

  constructor(o: NitroClientOptions) {
    this.o = o;
    this.http = new HttpsJson(o);
  }

  /** From now on every configuration change (not a read, login or logout) passes `fence` first. */
  setWriteFence(fence: WriteFence): void {
    this.fence = fence;
    this.http.setWriteFence(fence);
  }

  /** Every request sent (including logins), for metrics and the benchmark. */
  get calls(): number {
    return this.http.calls;
  }

  private async raw(method: string, path: string, body: unknown, headers: Record<string, string>, write = false): Promise<NitroResponse> {
    const r = await this.http.send(method, path, body, headers, 'NITRO', write);
    const setCookie = ([] as string[]).concat(r.headers['set-cookie'] ?? []).join(';');
    const token = /NITRO_AUTH_TOKEN=([^;]+)/.exec(setCookie)?.[1];
    if (token) this.token = token;
    return { status: r.status, body: r.body };
  }

  private authHeaders(): Record<string, string> {
    if (this.o.auth === 'header') return { 'X-NITRO-USER': this.o.username, 'X-NITRO-PASS': this.o.password };
    return this.token ? { Cookie: `NITRO_AUTH_TOKEN=${this.token}` } : {};
  }

  async login(): Promise<void> {
    if (this.o.auth === 'header') return;
    return this.loggingIn.run(async () => {
      this.token = undefined;
      this.guard.check();
      const r = await this.raw('POST', '/nitro/v1/config/login', { login: { username: this.o.username, password: this.o.password, timeout: this.o.sessionTimeoutS ?? 1800 } }, {});
      if (r.status !== 201 && r.status !== 200) {
        if (r.status === 401 || r.status === 403) this.guard.failed();
        throw errorOf('POST', 'login', r);
      }
      if (!this.token) throw new DeviceApiError(r.status, 0, 'NITRO login answered without a NITRO_AUTH_TOKEN cookie');
      this.guard.succeeded();
    });
  }

  /** One request; logs in first if needed and once more if the session expired. */
  async send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<NitroResponse> {
    const write = method !== 'GET';
    if (this.o.auth === 'session' && !this.token) await this.login();
    if (write) this.fence?.();
    let r = await this.raw(method, path, body, { ...this.authHeaders(), ...headers }, write);
    const code = Number(r.body.errorcode ?? 0);
    if (r.status === 401 && this.o.auth === 'session' && (code === NITRO.SESSION_EXPIRED || code === NITRO.NOT_LOGGED_IN)) {
      await this.login();
      if (write) this.fence?.();
      r = await this.raw(method, path, body, { ...this.authHeaders(), ...headers }, write);
    }
    return r;
  }

  async close(): Promise<void> {
    if (this.o.auth === 'session' && this.token) {
      await this.raw('POST', '/nitro/v1/config/logout', { logout: {} }, this.authHeaders()).catch(() => undefined);
      this.token = undefined;
    }
    this.http.close();
  }
}

export function errorOf(method: string, what: string, r: NitroResponse): DeviceApiError {
  return deviceError('NITRO', method, what, r, Number(r.body.errorcode ?? 0));
}
