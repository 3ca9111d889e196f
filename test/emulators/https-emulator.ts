/**
 * What the device emulators share: an HTTPS server on the emulator's certificate, JSON replies,
 * shutdown that also ends requests left hanging, and fault injection (a burst of error answers,
 * requests that never answer). Each emulator supplies `handle` (its API) and `crash` (its
 * answer to an unexpected error). Test and lab only.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenBelowEphemeral } from '../support/ports.ts';

/** A raw answer: `bytes` bytes of `fill` under `contentType`, `chunk` bytes every `intervalMs` (0: as fast as the client reads). */
export interface StreamedAnswer { readonly status: number; readonly contentType: string; readonly bytes: number; readonly chunk: number; readonly intervalMs: number; readonly fill?: string }

export type InjectedFault = { readonly kind: 'hang' } | { readonly kind: 'fail'; readonly status: number } | { readonly kind: 'answer'; readonly status: number; readonly body: Record<string, unknown> } | { readonly kind: 'stream'; readonly answer: StreamedAnswer } | undefined;

export abstract class HttpsEmulator {
  private readonly tls: { cert: Buffer; key: Buffer };
  private server: Server | undefined;
  private failures = 0;
  private failStatus: number;
  private hangs = 0;
  private answers: { n: number; status: number; body: Record<string, unknown> } | undefined;
  private streams: { n: number; answer: StreamedAnswer } | undefined;
  private readonly hung = new Set<ServerResponse>();

  protected constructor(tls: { cert: Buffer; key: Buffer }, defaultFailStatus: number) {
    this.tls = tls;
    this.failStatus = defaultFailStatus;
  }

  protected abstract handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Answers a request whose handling threw unexpectedly. */
  protected abstract crash(res: ServerResponse, err: unknown): void;

  private bound: { host: string; port: number } | undefined;

  async listen(host: string, port: number): Promise<number> {
    this.server = createServer({ cert: this.tls.cert, key: this.tls.key }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => this.crash(res, err));
    });
    const server = this.server;
    // port 0: one below the kernel's ephemeral range, so down() and up() can always come back on it
    const bound = port === 0 ? await listenBelowEphemeral(server, host) : await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(port));
    });
    this.bound = { host, port: bound };
    return bound;
  }

  /** The device goes down: connections are cut and new ones refused (a reboot, a power cut). */
  async down(): Promise<void> {
    await this.close();
  }

  /** The device is back on the same address (its configuration kept). */
  async up(): Promise<void> {
    if (!this.bound) throw new Error('up(): the emulator never listened');
    await this.listen(this.bound.host, this.bound.port);
  }

  async close(): Promise<void> {
    for (const r of this.hung) r.destroy();
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** The next n requests (logins excepted) fail with `status` (default: the device's usual 5xx). */
  failNext(n: number, status = this.failStatus): void {
    this.failures = n;
    this.failStatus = status;
  }

  /** Every later configuration change is answered only after this long (a slow device). */
  writeDelayMs = 0;

  /** Waits the write delay before a change is applied (GETs are never delayed). */
  protected async delayWrite(method: string): Promise<void> {
    if (method !== 'GET' && this.writeDelayMs > 0) await new Promise((r) => setTimeout(r, this.writeDelayMs));
  }

  /** The next n requests (logins excepted) get this answer, whatever they asked (a broken device or proxy). */
  answerNext(n: number, status: number, body: Record<string, unknown>): void {
    this.answers = { n, status, body };
  }

  /** The next n requests (logins excepted) get a raw answer: an HTML page, a 200 MB body, a drip. */
  streamNext(n: number, answer: StreamedAnswer): void {
    this.streams = { n, answer };
  }

  /** Ends every injected fault still to come (requests already hanging or streaming go on). */
  clearFaults(): void {
    this.failures = 0;
    this.hangs = 0;
    this.answers = undefined;
    this.streams = undefined;
  }

  /** Writes a streamed answer; the client may stop reading (its cap or deadline) at any point. */
  protected sendStream(res: ServerResponse, a: StreamedAnswer): void {
    this.hung.add(res);
    res.on('close', () => this.hung.delete(res));
    res.writeHead(a.status, { 'Content-Type': a.contentType, 'Content-Length': String(a.bytes) });
    const piece = Buffer.alloc(Math.max(1, Math.min(a.chunk, a.bytes)), a.fill ?? 'x');
    let sent = 0;
    const next = (): void => {
      while (!res.destroyed && sent < a.bytes) {
        const n = Math.min(piece.length, a.bytes - sent);
        sent += n;
        const drained = res.write(n === piece.length ? piece : piece.subarray(0, n));
        if (sent >= a.bytes) break;
        if (a.intervalMs > 0) return void setTimeout(next, a.intervalMs);
        if (!drained) return void res.once('drain', next);
      }
      if (!res.destroyed) res.end();
    };
    next();
  }

  /** The next n requests (logins excepted) never answer: the client must time out. */
  hangNext(n: number): void {
    this.hangs = n;
  }

  /** Takes the next injected fault for this request, if any (a hung request is kept until close). */
  protected takeFault(res: ServerResponse): InjectedFault {
    if (this.hangs > 0) {
      this.hangs--;
      this.hung.add(res);
      return { kind: 'hang' };
    }
    if (this.streams && this.streams.n > 0) {
      this.streams.n--;
      return { kind: 'stream', answer: this.streams.answer };
    }
    if (this.answers && this.answers.n > 0) {
      this.answers.n--;
      return { kind: 'answer', status: this.answers.status, body: this.answers.body };
    }
    if (this.failures > 0) {
      this.failures--;
      return { kind: 'fail', status: this.failStatus };
    }
    return undefined;
  }

  protected reply(res: ServerResponse, status: number, body: Record<string, unknown> | undefined, headers: Record<string, string> = {}): void {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': Buffer.byteLength(text), ...headers }).end(text);
  }
}
