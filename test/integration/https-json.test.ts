// The drivers' shared HTTPS transport: a keep-alive socket the device closed just as it was reused
// is retried once on a new socket; a request that fails on a fresh socket is not sent twice; a
// hostile or broken answer (an HTML page with 200, a body without end, a drip of a byte at a
// time, JSON that is not an object) is an error naming what came, never taken for an answer; and
// failing logins slow to one a minute after the third.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:https';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpsJson, LoginGuard, TransportError } from '../../coordinator/drivers/https-json.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { makeServerCertificate, readTls } from '../emulators/tls.ts';

let server: Server | undefined;

/** A server that answers the first request on each connection and drops later ones (or all, with dropAll). */
async function start(dropAll = false): Promise<{ url: string; caFile: string; seen: number[] }> {
  const files = await makeServerCertificate(mkdtempSync(join(tmpdir(), 'https-json-')), ['127.0.0.1']);
  const tls = readTls(files);
  const seen: number[] = [];
  const perSocket = new WeakMap<object, number>();
  server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    seen.push(n);
    if (dropAll || n > 1) {
      req.socket.destroy();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return { url: `https://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`, caFile: files.caFile, seen };
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

describe('HttpsJson', () => {
  it('sends again, once, on a new socket when a reused keep-alive socket was closed under it', async () => {
    const { url, caFile, seen } = await start();
    const http = new HttpsJson({ baseURL: url, caFile });
    expect((await http.send('GET', '/a', undefined, {})).body).toEqual({ ok: true });
    expect((await http.send('GET', '/b', undefined, {})).body).toEqual({ ok: true });
    expect(seen).toEqual([1, 2, 1]); // the second request hit the stale socket, then a new one
    expect(http.calls).toBe(3);
    http.close();
  });

  it('does not send twice when a fresh socket fails', async () => {
    const { url, caFile, seen } = await start(true);
    const http = new HttpsJson({ baseURL: url, caFile });
    await expect(http.send('POST', '/x', { a: 1 }, {}, 'test')).rejects.toThrow(TransportError);
    await expect(http.send('POST', '/x', { a: 1 }, {}, 'test')).rejects.toThrow(/test POST \/x: socket hang up/);
    expect(seen).toEqual([1, 1]);
    http.close();
  });

  describe('hostile or broken answers', () => {
    let hostile: Server | undefined;
    afterEach(async () => {
      hostile?.closeAllConnections();
      await new Promise((r) => hostile?.close(r));
    });
    async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<HttpsJson> {
      const files = await makeServerCertificate(mkdtempSync(join(tmpdir(), 'https-hostile-')), ['127.0.0.1']);
      const tls = readTls(files);
      hostile = createServer({ cert: tls.cert, key: tls.key }, handler);
      await new Promise<void>((r) => hostile?.listen(0, '127.0.0.1', r));
      const addr = hostile.address();
      return new HttpsJson({ baseURL: `https://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`, caFile: files.caFile, timeoutMs: 1_000, deadlineMs: 3_000, maxBodyBytes: 1024 * 1024 });
    }

    it('refuses a 200 whose body is an HTML page, naming its content type', async () => {
      const http = await serve((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><body>Maintenance</body></html>'));
      await expect(http.send('GET', '/nitro/v1/config/route', undefined, {}, 'NITRO')).rejects.toThrow(/^NITRO GET \/nitro\/v1\/config\/route: HTTP 200 with a body that is not a JSON object \(text\/html\)/);
      http.close();
    });

    it('refuses JSON that is not an object, and keeps a non-JSON error body as the message', async () => {
      const http = await serve((req, res) => (req.url === '/list' ? res.writeHead(200).end('[1,2]') : res.writeHead(502).end('Bad Gateway')));
      await expect(http.send('GET', '/list', undefined, {})).rejects.toThrow(TransportError);
      expect(await http.send('GET', '/err', undefined, {})).toMatchObject({ status: 502, body: { message: 'Bad Gateway' } });
      http.close();
    });

    it('stops reading an answer larger than the cap', async () => {
      const http = await serve((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const pump = (): void => {
          while (res.write(chunk)) if (res.destroyed) return;
          res.once('drain', pump);
        };
        pump();
      });
      await expect(http.send('GET', '/big', undefined, {})).rejects.toThrow(/the answer is larger than 1 MiB; not read further/);
      http.close();
    });

    it('ends a body that drips a byte at a time at the total deadline (the idle timeout never fires)', async () => {
      const http = await serve((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(' ')), 500);
      });
      const started = performance.now();
      await expect(http.send('GET', '/drip', undefined, {})).rejects.toThrow(/not complete within 3 s/);
      expect(performance.now() - started).toBeGreaterThanOrEqual(2_900);
      http.close();
    });
  });

  it('login guard: after the third failure in a row, at most one attempt a minute; a success resets it', () => {
    let now = 0;
    const guard = new LoginGuard('NITRO', () => now);
    for (let i = 0; i < 3; i++) {
      guard.check();
      guard.failed();
    }
    expect(() => guard.check()).toThrow(/^NITRO login not tried: 3 logins in a row failed, the next in 60 s/);
    now += 59_000;
    expect(() => guard.check()).toThrow(/the next in 1 s/);
    now += 1_000;
    expect(() => guard.check()).not.toThrow();
    guard.failed();
    expect(() => guard.check()).toThrow(/4 logins in a row failed/);
    now += 60_000;
    guard.check();
    guard.succeeded();
    expect(() => guard.check()).not.toThrow();
  });
});
