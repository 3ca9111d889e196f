/** Starts an embedded API server (HTTPS, a throwaway CA) on loopback for a test and gives back a kubeconfig for it. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { EmbeddedApiServer, kubeconfigYaml, type ApiServerOptions } from '../apiserver/server.ts';
import { makeServerCertificate, readTls, type TlsFiles } from '../emulators/tls.ts';

export interface TestApiServer {
  readonly server: EmbeddedApiServer;
  readonly url: string;
  readonly token: string;
  /** PEM of the CA that signed the server's certificate. */
  readonly ca: Buffer;
  readonly kubeConfig: KubeConfig;
  /** A kubeconfig file's text for this server and `token` (default: the admin token). */
  kubeconfigYaml(token?: string): string;
  close(): Promise<void>;
}

let tlsFiles: Promise<TlsFiles> | undefined;

/** One CA and loopback certificate per test process (openssl costs tens of ms). */
export function loopbackTls(): Promise<TlsFiles> {
  tlsFiles ??= makeServerCertificate(mkdtempSync(join(tmpdir(), 'apiserver-tls-')), { ips: ['127.0.0.1'], dnsNames: ['localhost'], commonName: 'chorus-test-apiserver' });
  return tlsFiles;
}

export async function startTestApiServer(opts: Omit<ApiServerOptions, 'token' | 'tls'> = {}): Promise<TestApiServer> {
  const token = randomBytes(16).toString('hex');
  const tls = readTls(await loopbackTls());
  const server = new EmbeddedApiServer({ ...opts, token, tls });
  const { port } = await server.listen('127.0.0.1', 0);
  const url = `https://127.0.0.1:${port}`;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(kubeconfigYaml(url, token, tls.ca, 'test'));
  return { server, url, token, ca: tls.ca, kubeConfig, kubeconfigYaml: (t = token) => kubeconfigYaml(url, t, tls.ca, 'test'), close: () => server.close() };
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
