/** Starts an embedded API server on loopback for a test and gives back a kubeconfig for it. */
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { EmbeddedApiServer, type ApiServerOptions } from '../apiserver/server.ts';

export interface TestApiServer {
  readonly server: EmbeddedApiServer;
  readonly url: string;
  readonly token: string;
  readonly kubeConfig: KubeConfig;
  close(): Promise<void>;
}

export async function startTestApiServer(opts: Omit<ApiServerOptions, 'token'> = {}): Promise<TestApiServer> {
  const token = randomBytes(16).toString('hex');
  const server = new EmbeddedApiServer({ ...opts, token });
  const { port } = await server.listen('127.0.0.1', 0);
  const url = `http://127.0.0.1:${port}`;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'test', server: url, skipTLSVerify: true }],
    users: [{ name: 'test', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test' }],
    currentContext: 'test',
  });
  return { server, url, token, kubeConfig, close: () => server.close() };
}

/** Polls `check` until it returns a value other than undefined, or fails with `what` after timeoutMs. */
export async function eventually<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastErr });
    await new Promise((r) => setTimeout(r, 50));
  }
}
