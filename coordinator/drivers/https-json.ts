/**
 * The HTTPS transport shared by the device drivers (NITRO, iControl REST): JSON in and out, one
 * keep-alive agent with TLS verification on by default (a CA bundle, or an explicit skip), and a
 * count of every request sent. A device that misbehaves cannot stall or swamp the coordinator:
 * each request has an idle timeout and a total deadline (a body dripping a byte at a time ends at
 * the deadline), an answer is read up to a size cap, and a successful status whose body is not a
 * JSON object (an HTML page from a proxy or a maintenance page) is an error, never taken for an
 * empty answer. It knows nothing of authentication: each client adds its own headers.
 */
import { Agent, request } from 'node:https';
import { readFileSync } from 'node:fs';

export interface HttpsJsonOptions {
  /** https://host[:port] of the device's management API. */
  readonly baseURL: string;
  readonly caFile?: string;
  /** Only by explicit setting: accept any certificate. */
  readonly insecureSkipVerify?: boolean;
  /** Idle timeout of one request (default 10 s). */
  readonly timeoutMs?: number;
  /** Total deadline of one request, however the answer trickles in (default 3x the idle timeout, at least 30 s). */
  readonly deadlineMs?: number;
  /** Largest answer read (default 32 MiB). */
  readonly maxBodyBytes?: number;
}

export interface JsonResponse {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * Called before every request that changes the device; throws (FencedWriteError) when this
 * process may not write any more (it lost the leader Lease): the request is never sent.
 */
export type WriteFence = () => void;

/** A device write refused before it was sent: this replica is no longer the leader. */
export class FencedWriteError extends Error {}

/** A request that got no HTTP answer (refused, reset, timed out); `status` 0 in the drivers' terms. */
export class TransportError extends Error {}

/**
 * A device API's refusal, the one error type of both drivers: the HTTP status (0: no answer), the
 * device's own error code (NITRO `errorcode`, iControl `code`; 0 when none) and its answer.
 */
export class DeviceApiError extends Error {
  readonly status: number;
  readonly code: number;
  readonly body: Record<string, unknown> | undefined;
  constructor(status: number, code: number, message: string, body?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/**
 * The list an answer carries under `key`: none when the key is absent (both devices leave an empty
 * collection's key out), the list when it is a list of objects, and an error for anything else
 * (a proxy's, an older firmware's or a broken device's answer in another shape): a shape we do not
 * know is never read as "nothing there", which would make us re-create or report wrongly.
 */
export function listIn(r: Pick<JsonResponse, 'status' | 'body'>, key: string, what: string): Record<string, unknown>[] {
  const v = r.body[key];
  if (v === undefined) return [];
  if (Array.isArray(v) && v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x))) return v as Record<string, unknown>[];
  const shape = Array.isArray(v) ? 'a list holding something other than objects' : v === null ? 'null' : typeof v;
  throw new DeviceApiError(r.status, 0, `${what}: the answer's "${key}" is ${shape} where a list of objects is expected (an answer in a shape this driver does not know; nothing is read from it)`, r.body);
}

/** The error for an answer: names the API, the request and the device's message (never credentials). */
export function deviceError(api: string, method: string, what: string, r: JsonResponse | { status: number; body: Record<string, unknown> }, code: number, hint?: string): DeviceApiError {
  const message = typeof r.body.message === 'string' ? r.body.message : `HTTP ${r.status}`;
  const codeText = code !== 0 && code !== r.status ? `, ${api === 'NITRO' ? 'errorcode' : 'code'} ${code}` : '';
  return new DeviceApiError(r.status, code, `${api} ${method} ${what}: ${message} (HTTP ${r.status}${codeText})${hint ? `: ${hint}` : ''}`, r.body);
}

/**
 * One login at a time: callers that find the session missing or expired together share the one
 * login in flight instead of each starting their own (a device counts sessions and tokens).
 */
export class SingleFlight {
  private pending: Promise<void> | undefined;
  run(action: () => Promise<void>): Promise<void> {
    this.pending ??= action().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }
}

/**
 * Logins that keep failing (a wrong password, a locked account) must not lock the account: after
 * the third failure in a row, at most one attempt a minute. `check()` throws the reason while
 * waiting; `failed()`/`succeeded()` record the outcome.
 */
export class LoginGuard {
  private failures = 0;
  private lastAttempt = -Infinity;
  private readonly now: () => number;
  private readonly api: string;
  constructor(api: string, now: () => number = () => performance.now()) {
    this.api = api;
    this.now = now;
  }

  check(): void {
    const wait = this.failures >= 3 ? this.lastAttempt + 60_000 - this.now() : 0;
    if (wait > 0) throw new DeviceApiError(0, 0, `${this.api} login not tried: ${this.failures} logins in a row failed, the next in ${Math.ceil(wait / 1000)} s (at most one a minute, so a lockout policy does not disable the account)`);
    this.lastAttempt = this.now();
  }

  failed(): void {
    this.failures++;
  }

  succeeded(): void {
    this.failures = 0;
  }
}

/** A reused keep-alive socket was already closed by the device: safe to send again. */
class StaleSocketError extends TransportError {}

export class HttpsJson {
  private readonly o: HttpsJsonOptions;
  private readonly agent: Agent;
  /** Every request sent (including logins), for metrics, tests and the benchmark. */
  calls = 0;
  private fence: WriteFence | undefined;

  /**
   * From now on a request sent as a write passes `fence` when it gets its connection (the last
   * moment before it goes out, also for one that waited for a free socket).
   */
  setWriteFence(fence: WriteFence): void {
    this.fence = fence;
  }

  constructor(o: HttpsJsonOptions) {
    this.o = o;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 4,
      rejectUnauthorized: !o.insecureSkipVerify,
      ...(o.caFile ? { ca: readFileSync(o.caFile) } : {}),
    });
  }

  get baseURL(): string {
    return this.o.baseURL;
  }

  /**
   * One request; `label` names it in errors (never headers or bodies: they may carry secrets).
   * A keep-alive socket the device closed just as we reused it is retried once on a new one
   * (the request never reached the device), as Node's documentation advises.
   */
  async send(method: string, path: string, body: unknown, headers: Record<string, string>, label = 'device', write = false): Promise<JsonResponse> {
    try {
      return await this.once(method, path, body, headers, label, write);
    } catch (err) {
      if (!(err instanceof StaleSocketError)) throw err;
      return this.once(method, path, body, headers, label, write);
    }
  }

  private once(method: string, path: string, body: unknown, headers: Record<string, string>, label: string, write: boolean): Promise<JsonResponse> {
    const url = new URL(path, this.o.baseURL);
    const text = body === undefined ? undefined : JSON.stringify(body);
    const timeoutMs = this.o.timeoutMs ?? 10_000;
    const deadlineMs = this.o.deadlineMs ?? Math.max(3 * timeoutMs, 30_000);
    const maxBytes = this.o.maxBodyBytes ?? 32 * 1024 * 1024;
    const where = `${label} ${method} ${url.pathname}`;
    this.calls++;
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method, agent: this.agent, timeout: timeoutMs,
        headers: { Accept: 'application/json', ...(text !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) } : {}), ...headers },
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) req.destroy(new TransportError(`${where}: the answer is larger than ${Math.round(maxBytes / 1024 / 1024)} MiB; not read further`));
          else chunks.push(c);
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const parsed = parseBody(Buffer.concat(chunks).toString());
          if (parsed === undefined && status >= 200 && status < 300) {
            reject(new TransportError(`${where}: HTTP ${status} with a body that is not a JSON object (${String(res.headers['content-type'] ?? 'no content type')}): the device or a proxy in front of it answered something else`));
            return;
          }
          resolve({ status, body: parsed ?? { message: Buffer.concat(chunks).toString().slice(0, 200) }, headers: res.headers });
        });
        res.on('error', reject);
      });
      const fence = write ? this.fence : undefined;
      if (fence) {
        req.on('socket', () => {
          try {
            fence();
          } catch (err) {
            req.destroy(err instanceof Error ? err : new FencedWriteError(String(err)));
          }
        });
      }
      const deadline = setTimeout(() => req.destroy(new TransportError(`${where}: not complete within ${deadlineMs / 1000} s (the total deadline of a request)`)), deadlineMs);
      req.on('close', () => clearTimeout(deadline));
      req.on('timeout', () => req.destroy(new TransportError(`${where}: no answer within ${timeoutMs / 1000} s`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof TransportError || err instanceof FencedWriteError) return reject(err);
        if (req.reusedSocket && err.code === 'ECONNRESET') return reject(new StaleSocketError(err.message));
        reject(new TransportError(`${label} ${method} ${url.pathname}: ${err.message}`));
      });
      if (text !== undefined) req.write(text);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** A JSON object (an empty body counts as {}), or undefined for anything else. */
function parseBody(t: string): Record<string, unknown> | undefined {
  if (t.trim() === '') return {};
  try {
    const v: unknown = JSON.parse(t);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs `action` once after `delayMs` without a new `schedule()` (a burst of changes costs one
 * save); `flush()` runs a pending one now (on close).
 */
export class Debounced {
  private timer: NodeJS.Timeout | undefined;
  private readonly action: () => Promise<void>;
  private readonly delayMs: number;

  constructor(action: () => Promise<void>, delayMs: number) {
    this.action = action;
    this.delayMs = delayMs;
  }

  schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.action();
    }, this.delayMs);
    this.timer.unref();
  }

  async flush(): Promise<void> {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.action();
  }
}
