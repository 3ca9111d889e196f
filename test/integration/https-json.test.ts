// The drivers' shared HTTPS transport: a keep-alive socket the device closed just as it was reused
// is retried once on a new socket; a request that fails on a fresh socket is not sent twice.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:https';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpsJson, TransportError } from '../../coordinator/drivers/https-json.ts';
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
});
