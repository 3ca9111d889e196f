// Every API request has a deadline (issue 13, "start-up never wedges"): an API server, or a proxy
// in front of it, that accepts the connection and never answers must not stall a reconcile.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:https';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { boundRequests, makeClients } from '../../shared/kube/client.ts';
import { readTls } from '../emulators/tls.ts';
import { loopbackTls } from '../support/apiserver.ts';

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

let ca = '';

async function silentApiServer(): Promise<string> {
  const tls = readTls(await loopbackTls());
  ca = tls.ca.toString('base64');
  server = createServer({ cert: tls.cert, key: tls.key }, () => undefined); // reads the request, answers nothing, ever
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return `https://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
}

function kubeConfigFor(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: url, skipTLSVerify: false, caData: ca }], users: [{ name: 'u', token: 't' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  return kc;
}

describe('API request deadline', () => {
  it('a request to an API server that never answers fails at its deadline, naming the timeout', async () => {
    const kc = boundRequests(kubeConfigFor(await silentApiServer()), 300);
    const started = performance.now();
    const err = await kc.makeApiClient(CoreV1Api).listNode().then(() => undefined, (e: unknown) => e);
    const took = performance.now() - started;
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).cause ?? err)).toMatch(/TimeoutError|aborted due to timeout/);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(10_000); // ended by the deadline, not by anything else
  });

  it('makeClients gives every client the default deadline', () => {
    const kc = kubeConfigFor('https://127.0.0.1:1');
    makeClients(kc);
    // a second bound is a no-op: one deadline per KubeConfig, set where its clients are made
    expect(boundRequests(kc, 1)).toBe(kc);
  });
});
