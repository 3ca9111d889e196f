/**
 * A NITRO REST client: session login (NITRO_AUTH_TOKEN) with a fresh login when the session
 * expired (401 with errorcode 444 or 1027), per-request header auth as a fallback setting,
 * logout on close, TLS verification on by default (with a CA bundle), a timeout per request.
 * Credentials never leave this module: errors name the request, never the password.
 */
import { request, Agent } from 'node:https';
import { readFileSync } from 'node:fs';

export interface NitroClientOptions {
  /** https://host[:port] of the ADC's management address (NSIP, or a SNIP with management access). */
  readonly baseURL: string;
  readonly username: string;
  readonly password: string;
  readonly auth: 'session' | 'header';
  readonly caFile?: string;
  /** Only by explicit setting: accept any certificate (a warning is logged at start). */
  readonly insecureSkipVerify?: boolean;
  readonly timeoutMs?: number;
  readonly sessionTimeoutS?: number;
}

export class NitroApiError extends Error {
  readonly httpStatus: number;
  readonly errorcode: number;
  readonly body: Record<string, unknown> | undefined;
  constructor(httpStatus: number, errorcode: number, message: string, body?: Record<string, unknown>) {
    super(message);
    this.httpStatus = httpStatus;
    this.errorcode = errorcode;
    this.body = body;
  }
}

export interface NitroResponse { status: number; body: Record<string, unknown> }

export class NitroClient {
  private readonly o: NitroClientOptions;
  private readonly agent: Agent;
  private token: string | undefined;
  private loggingIn: Promise<void> | undefined;
  /** Every request sent (including logins), for metrics and the benchmark. */
  calls = 0;

  constructor(o: NitroClientOptions) {
    this.o = o;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 4,
      rejectUnauthorized: !o.insecureSkipVerify,
      ...(o.caFile ? { ca: readFileSync(o.caFile) } : {}),
    });
  }

  private raw(method: string, path: string, body: unknown, headers: Record<string, string>): Promise<NitroResponse> {
    const url = new URL(path, this.o.baseURL);
    const text = body === undefined ? undefined : JSON.stringify(body);
    this.calls++;
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method, agent: this.agent, timeout: this.o.timeoutMs ?? 10_000,
        headers: { Accept: 'application/json', ...(text !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) } : {}), ...headers },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const t = Buffer.concat(chunks).toString();
          let parsed: Record<string, unknown> = {};
          try {
            parsed = t.trim() === '' ? {} : (JSON.parse(t) as Record<string, unknown>);
          } catch {
            parsed = { message: t.slice(0, 200) };
          }
          const setCookie = res.headers['set-cookie']?.join(';') ?? '';
          const token = /NITRO_AUTH_TOKEN=([^;]+)/.exec(setCookie)?.[1];
          if (token) this.token = token;
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new NitroApiError(0, 0, `NITRO ${method} ${url.pathname}: no answer within ${(this.o.timeoutMs ?? 10_000) / 1000} s`)));
      req.on('error', (err) => reject(err instanceof NitroApiError ? err : new NitroApiError(0, 0, `NITRO ${method} ${url.pathname}: ${err.message}`)));
      if (text !== undefined) req.write(text);
      req.end();
    });
  }

  private authHeaders(): Record<string, string> {
    if (this.o.auth === 'header') return { 'X-NITRO-USER': this.o.username, 'X-NITRO-PASS': this.o.password };
    return this.token ? { Cookie: `NITRO_AUTH_TOKEN=${this.token}` } : {};
  }

  async login(): Promise<void> {
    if (this.o.auth === 'header') return;
    this.loggingIn ??= (async () => {
      try {
        this.token = undefined;
        const r = await this.raw('POST', '/nitro/v1/config/login', { login: { username: this.o.username, password: this.o.password, timeout: this.o.sessionTimeoutS ?? 1800 } }, {});
        if (r.status !== 201 && r.status !== 200) throw errorOf('POST', 'login', r);
        if (!this.token) throw new NitroApiError(r.status, 0, 'NITRO login answered without a NITRO_AUTH_TOKEN cookie');
      } finally {
        this.loggingIn = undefined;
      }
    })();
    return this.loggingIn;
  }

  /** One request; logs in first if needed and once more if the session expired. */
  async send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<NitroResponse> {
    if (this.o.auth === 'session' && !this.token) await this.login();
    let r = await this.raw(method, path, body, { ...this.authHeaders(), ...headers });
    const code = Number(r.body.errorcode ?? 0);
    if (r.status === 401 && this.o.auth === 'session' && (code === 444 || code === 1027)) {
      await this.login();
      r = await this.raw(method, path, body, { ...this.authHeaders(), ...headers });
    }
    return r;
  }

  async close(): Promise<void> {
    if (this.o.auth === 'session' && this.token) {
      await this.raw('POST', '/nitro/v1/config/logout', { logout: {} }, this.authHeaders()).catch(() => undefined);
      this.token = undefined;
    }
    this.agent.destroy();
  }
}

export function errorOf(method: string, what: string, r: NitroResponse): NitroApiError {
  const code = Number(r.body.errorcode ?? 0);
  const message = typeof r.body.message === 'string' ? r.body.message : `HTTP ${r.status}`;
  return new NitroApiError(r.status, code, `NITRO ${method} ${what}: ${message} (HTTP ${r.status}, errorcode ${code})`, r.body);
}
