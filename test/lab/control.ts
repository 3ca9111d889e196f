/**
 * The running lab's control channel: HTTP over a unix socket in the lab directory, so that
 * `lab status`, `lab add-node`, `lab remove-node`, `lab move-node` and `lab down` reach the supervisor that owns
 * the processes, from any shell on the machine.
 */
import { createServer, request, type Server } from 'node:http';
import { rmSync } from 'node:fs';
import { errorMessage } from '../../shared/errors.ts';
import type { Lab } from './lab.ts';

async function moveNode(lab: Lab, name: string): Promise<unknown> {
  return { node: name, ...(await lab.moveNode(name)) };
}

export async function serveControl(lab: Lab, socketPath: string, shutdown: () => void): Promise<Server> {
  rmSync(socketPath, { force: true });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://lab');
    const reply = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const run = async (): Promise<void> => {
      if (req.method === 'GET' && url.pathname === '/status') return reply(200, await lab.document());
      if (req.method === 'POST' && url.pathname === '/nodes') {
        const pods = Number(url.searchParams.get('pods') ?? lab.opts.podsPerNode);
        const added = await lab.addNode(pods, url.searchParams.get('agent') !== 'false');
        const doc = await lab.document();
        return reply(200, doc.nodes.find((n) => n.name === added.name) ?? added);
      }
      const m = /^\/nodes\/([^/]+)$/.exec(url.pathname);
      if (req.method === 'DELETE' && m) {
        await lab.removeNode(decodeURIComponent(m[1] ?? ''));
        return reply(200, { removed: m[1] });
      }
      const move = req.method === 'POST' ? /^\/nodes\/([^/]+)\/move$/.exec(url.pathname) : null;
      if (move) return reply(200, await moveNode(lab, decodeURIComponent(move[1] ?? '')));
      if (req.method === 'POST' && url.pathname === '/second/reconfigure') {
        await lab.reconfigureSecond(url.searchParams.getAll('arg'));
        return reply(200, await lab.document());
      }
      if (req.method === 'POST' && url.pathname === '/second/stop') {
        await lab.stopSecond();
        return reply(200, await lab.document());
      }
      if (req.method === 'POST' && url.pathname === '/shutdown') {
        reply(202, { stopping: lab.opts.prefix });
        shutdown();
        return;
      }
      reply(404, { error: `no such lab request: ${req.method ?? ''} ${url.pathname}` });
    };
    run().catch((err: unknown) => reply(400, { error: errorMessage(err) }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return server;
}

export function controlRequest(socketPath: string, method: string, path: string, timeoutMs = 300_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        if ((res.statusCode ?? 500) >= 400) reject(new Error((body as { error?: string }).error ?? `lab supervisor answered ${res.statusCode ?? '?'}`));
        else resolve(body);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`lab supervisor did not answer ${method} ${path} within ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}
