/**
 * Ports for servers that go down and come back on the same port (an API server or a device that
 * restarts). A port the kernel hands out (listen on port 0, the source port of any connection) is
 * from its ephemeral range (32768-60999 here), so once released anyone may take it before the
 * server comes back: on a busy machine that happened (EADDRINUSE). Ports below that range are
 * only ever taken by an explicit bind, so a random one that is free now stays free.
 */
import { createServer, type Server } from 'node:net';

const FROM = 20_000;
const TO = 32_767;
const ATTEMPTS = 100;

const randomPort = (): number => FROM + Math.floor(Math.random() * (TO - FROM + 1));

/** Listens on `host` at a free port below the ephemeral range; the port. */
export async function listenBelowEphemeral(server: Server, host: string): Promise<number> {
  for (let i = 0; ; i++) {
    const port = randomPort();
    const failure = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const onError = (err: NodeJS.ErrnoException): void => resolve(err);
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        resolve(undefined);
      });
    });
    if (!failure) return port;
    if (failure.code !== 'EADDRINUSE' || i >= ATTEMPTS) throw failure;
  }
}

/** A port below the ephemeral range that is free on `host` now (nothing listens on it once this returns). */
export async function freePortBelowEphemeral(host: string): Promise<number> {
  const probe = createServer();
  const port = await listenBelowEphemeral(probe, host);
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}
