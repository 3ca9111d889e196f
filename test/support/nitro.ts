/** A NITRO emulator on loopback (no data plane) and a Citrix driver pointed at it, for tests. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { NitroEmulator } from '../emulators/nitro/server.ts';
import { makeServerCertificate, readTls, type TlsFiles } from '../emulators/tls.ts';
import { CitrixDriver, type CitrixOptions } from '../../coordinator/drivers/citrix/citrix-driver.ts';
import { createLogger, type Logger } from '../../shared/log.ts';

export const NITRO_USER = 'chorus';
export const NITRO_PASSWORD = 'S3cret-nitro-pass';

let tlsFiles: TlsFiles | undefined;

/** The ADC's own NSIP and default route, which every real ADC lists beside what was configured. */
export const TEST_ADC_SYSTEM = { nsip: { ipaddress: '198.18.0.4', netmask: '255.255.240.0' }, defaultGateway: '198.18.0.1' };

export async function startNitroEmulator(extra: { haPeer?: string } = {}): Promise<{ emulator: NitroEmulator; url: string; caFile: string }> {
  tlsFiles ??= await makeServerCertificate(mkdtempSync(join(tmpdir(), 'nitro-tls-')), ['127.0.0.1']);
  const emulator = new NitroEmulator({ username: NITRO_USER, password: NITRO_PASSWORD, tls: readTls(tlsFiles), hostname: '198.18.0.4', ...extra });
  emulator.store.setSystem(TEST_ADC_SYSTEM);
  const port = await emulator.listen('127.0.0.1', 0);
  return { emulator, url: `https://127.0.0.1:${port}`, caFile: tlsFiles.caFile };
}

/** A logger whose lines are kept, to check that no secret ever reaches a log. */
export function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } });
  return { log: createLogger({ component: 'test', level: 'debug', destination: sink }), lines };
}

export function citrixDriver(url: string, caFile: string, log: Logger, extra: Partial<CitrixOptions> = {}): CitrixDriver {
  return new CitrixDriver({
    baseURL: url, username: NITRO_USER, password: NITRO_PASSWORD, auth: 'session', caFile, timeoutMs: 1_000,
    vni: 4096, overlayNetwork: '198.18.16.0/20', neighbours: 'arp', saveConfig: true, saveDebounceMs: 50, clusterId: 'cluster-a', log, ...extra,
  });
}
