/**
 * Throwaway CAs and server certificates for the lab's TLS servers (the embedded API server, the
 * device emulators), made with the openssl command (test and lab use only): clients verify them
 * like a real API server or device, with the CA file. Subject alternative names carry every
 * address and name a client dials: Go clients (kubectl) ignore the common name.
 */
import { mkdirSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

export interface TlsFiles { readonly caFile: string; readonly certFile: string; readonly keyFile: string }

export interface CertificateNames {
  readonly ips: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly commonName?: string;
}

export async function makeServerCertificate(dir: string, names: readonly string[] | CertificateNames): Promise<TlsFiles> {
  const { ips, dnsNames = [], commonName = 'chorus-lab-device' } = Array.isArray(names) ? { ips: names as readonly string[] } : names as CertificateNames;
  mkdirSync(dir, { recursive: true });
  const f = (n: string): string => join(dir, n);
  const files = { caFile: f('ca.crt'), certFile: f('server.crt'), keyFile: f('server.key') };
  if (existsSync(files.certFile)) return files;
  const run = (args: string[]): Promise<unknown> => execa('openssl', args, { stdio: 'ignore' });
  await run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${commonName}-ca`, '-keyout', f('ca.key'), '-out', files.caFile]);
  await run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${commonName}`, '-keyout', files.keyFile, '-out', f('server.csr')]);
  const san = [...ips.map((ip) => `IP:${ip}`), ...dnsNames.map((n) => `DNS:${n}`)].join(',');
  writeFileSync(f('san.ext'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`);
  await run(['x509', '-req', '-in', f('server.csr'), '-CA', files.caFile, '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('san.ext'), '-out', files.certFile]);
  return files;
}

export function readTls(files: TlsFiles): { cert: Buffer; key: Buffer; ca: Buffer } {
  return { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile), ca: readFileSync(files.caFile) };
}
