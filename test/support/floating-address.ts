/**
 * A floating management address on loopback: a TCP forwarder to one of several emulated units,
 * moved on failover. Moving it cuts every connection through it (the new owner of a floating
 * IP knows none of the old one's TCP connections: the client sees them reset), as an ADC's
 * management SNIP moving to the new primary does.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface FloatingAddress {
  readonly port: number;
  /** Points the address at another unit (its loopback port) and cuts the connections in flight. */
  moveTo(port: number): void;
  close(): Promise<void>;
}

export async function floatingAddress(targetPort: number): Promise<FloatingAddress> {
  let target = targetPort;
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (typeof addr !== 'object' || addr === null) throw new Error('floating address: no port');
  return {
    port: addr.port,
    moveTo(port) {
      target = port;
      for (const s of open) s.destroy();
    },
    close: () => new Promise<void>((resolve) => {
      for (const s of open) s.destroy();
      server.close(() => resolve());
    }),
  };
}
