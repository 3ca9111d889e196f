/**
 * A throwaway CA and a server certificate for a device emulator, made with the openssl command
 * (test and lab use only): clients verify the emulator like a real device, with the CA file.
 */
import { mkdirSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

export interface TlsFiles { readonly caFile: string; readonly certFile: string; readonly keyFile: string }

export async function makeServerCertificate(dir: string, ips: readonly string[]): Promise<TlsFiles> {
  mkdirSync(dir, { recursive: true });
  const f = (n: string): string => join(dir, n);
  const files = { caFile: f('ca.crt'), certFile: f('server.crt'), keyFile: f('server.key') };
  if (existsSync(files.certFile)) return files;
  const run = (args: string[]): Promise<unknown> => execa('openssl', args, { stdio: 'ignore' });
  await run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=chorus-lab-ca', '-keyout', f('ca.key'), '-out', files.caFile]);
  await run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=chorus-lab-device', '-keyout', files.keyFile, '-out', f('server.csr')]);
  const ext = f('san.ext');
  await execa('sh', ['-c', `printf 'subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}\\nbasicConstraints=CA:FALSE\\n' > ${ext}`]);
  await run(['x509', '-req', '-in', f('server.csr'), '-CA', files.caFile, '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', files.certFile]);
  return files;
}

export function readTls(files: TlsFiles): { cert: Buffer; key: Buffer; ca: Buffer } {
  return { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile), ca: readFileSync(files.caFile) };
}
