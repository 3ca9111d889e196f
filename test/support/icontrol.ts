/** An iControl REST emulator on loopback (no data plane) and an F5 driver pointed at it, for tests. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IControlEmulator, type IControlCall, type IControlEmulatorOptions } from '../emulators/icontrol/server.ts';
import { makeServerCertificate, readTls, type TlsFiles } from '../emulators/tls.ts';
import { F5Driver, type F5Options } from '../../coordinator/drivers/f5/f5-driver.ts';
import type { Logger } from '../../shared/log.ts';

export const F5_USER = 'chorus';
export const F5_PASSWORD = 'S3cret-bigip-pass';

let tlsFiles: TlsFiles | undefined;

export async function startIControlEmulator(extra: Partial<IControlEmulatorOptions> = {}): Promise<{ emulator: IControlEmulator; url: string; caFile: string }> {
  tlsFiles ??= await makeServerCertificate(mkdtempSync(join(tmpdir(), 'icontrol-tls-')), ['127.0.0.1']);
  const emulator = new IControlEmulator({ username: F5_USER, password: F5_PASSWORD, tls: readTls(tlsFiles), ...extra });
  const port = await emulator.listen('127.0.0.1', 0);
  return { emulator, url: `https://127.0.0.1:${port}`, caFile: tlsFiles.caFile };
}

/** The cluster identity drivers under test mark their objects with. */
export const TEST_CLUSTER_ID = 'cluster-a';

export function f5Driver(urls: string | readonly string[], caFile: string, log: Logger, extra: Partial<F5Options> = {}): F5Driver {
  return new F5Driver({
    baseURLs: typeof urls === 'string' ? [urls] : urls, username: F5_USER, password: F5_PASSWORD, auth: 'token', caFile, timeoutMs: 1_000,
    partition: 'Common', namePrefix: 'chorus-4096', routing: 'gateway', allowService: 'none', trafficGroup: '/Common/traffic-group-local-only',
    saveConfig: true, saveDebounceMs: 50, clusterId: TEST_CLUSTER_ID, log, ...extra,
  });
}

/** Successful write calls as `METHOD path` (transaction ids as <id>, queued calls marked), for comparing call records. */
export const f5Writes = (calls: readonly IControlCall[]): string[] =>
  calls.filter((c) => c.write && c.status > 0 && c.status < 300).map((c) => `${c.method} ${c.path.replace(/\/\d+$/, '/<id>')}${c.transaction ? ' (queued)' : ''}`);

/** What one node joining costs on the BIG-IP: one transaction (FDB set, ARP, route), then the config save. */
export const f5JoinWrites = (vni: number): string[] => [
  'POST /mgmt/tm/transaction',
  `PUT /mgmt/tm/net/fdb/tunnel/~Common~chorus-${vni} (queued)`,
  'POST /mgmt/tm/net/arp (queued)',
  'POST /mgmt/tm/net/route (queued)',
  'PATCH /mgmt/tm/transaction/<id>',
  'POST /mgmt/tm/sys/config',
];
