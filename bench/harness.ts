/**
 * Shared pieces of the control-plane benchmarks: an embedded API server and a NITRO emulator in
 * this process (both on loopback), N generated Nodes, and the coordinator as a child process
 * (so its RSS is its own), driven exactly as in production through its CLI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedApiServer, kubeconfigYaml, type AuditRecord } from '../test/apiserver/server.ts';
import { NitroEmulator } from '../test/emulators/nitro/server.ts';
import { makeServerCertificate, readTls } from '../test/emulators/tls.ts';
import { cliArgs, type LabComponents } from '../test/lab/processes.ts';

/** Benchmarks run the product as the images do, from the bundle (`make bench` builds it); BENCH_COMPONENTS=sources for the TypeScript sources. */
export const BENCH_COMPONENTS: LabComponents = process.env.BENCH_COMPONENTS === 'sources' ? 'sources' : 'bundle';
import type { ResourceType } from '../test/apiserver/resources.ts';

export const USER = 'bench';
export const PASSWORD = 'bench-password';
export const OVERLAY = '198.18.32.0/19';
export const VTEP = '198.18.0.3';

export interface Bench {
  api: EmbeddedApiServer;
  apiURL: string;
  kubeconfig: string;
  emulator: NitroEmulator;
  nitroURL: string;
  caFile: string;
  credentialsDir: string;
  audit: AuditRecord[];
  dir: string;
  close(): Promise<void>;
}

export async function startBench(): Promise<Bench> {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-'));
  const audit: AuditRecord[] = [];
  const token = 'bench-token';
  const tls = await makeServerCertificate(join(dir, 'tls'), ['127.0.0.1']);
  const api = new EmbeddedApiServer({ token, tls: readTls(tls), onAudit: (r) => audit.push(r) });
  const { port } = await api.listen('127.0.0.1', 0);
  const apiURL = `https://127.0.0.1:${port}`;
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml(apiURL, token, readTls(tls).ca));
  api.store.create(resource(api, 'namespaces'), undefined, { metadata: { name: 'chorus-system' } });
  const emulator = new NitroEmulator({ username: USER, password: PASSWORD, tls: readTls(tls), hostname: '127.0.0.1' });
  emulator.store.add('nsip', { ipaddress: VTEP, netmask: '255.255.240.0', type: 'SNIP' });
  const nitroPort = await emulator.listen('127.0.0.1', 0);
  const credentialsDir = join(dir, 'credentials');
  writeFileSync(join(dir, 'mk'), '');
  await import('node:fs').then((fs) => fs.mkdirSync(credentialsDir, { recursive: true }));
  writeFileSync(join(credentialsDir, 'username'), USER);
  writeFileSync(join(credentialsDir, 'password'), PASSWORD);
  return {
    api, apiURL, kubeconfig, emulator, nitroURL: `https://127.0.0.1:${nitroPort}`, caFile: tls.caFile, credentialsDir, audit, dir,
    async close() {
      await emulator.close();
      await api.close();
    },
  };
}

export function resource(api: EmbeddedApiServer, plural: string): ResourceType {
  const r = api.served.find((x) => x.plural === plural);
  if (!r) throw new Error(`no resource ${plural}`);
  return r;
}

export function nodeBody(i: number): Record<string, unknown> {
  return {
    metadata: { name: `node-${i}`, labels: { 'kubernetes.io/hostname': `node-${i}` } },
    spec: { podCIDRs: [`10.${Math.floor(i / 256) % 256}.${i % 256}.0/24`] },
    status: { addresses: [{ type: 'InternalIP', address: `198.18.${1 + Math.floor(i / 250)}.${1 + (i % 250)}` }] },
  };
}

export function addNodes(b: Bench, from: number, count: number): void {
  const nodes = resource(b.api, 'nodes');
  for (let i = from; i < from + count; i++) b.api.store.create(nodes, undefined, nodeBody(i));
}

export interface CoordinatorProcess { child: ChildProcess; peakRssMiB(): number; stop(): Promise<void> }

/** The device flags of the Citrix driver toward the bench's NITRO emulator. */
export const citrixDeviceArgs = (b: Bench): string[] => ['--device-type', 'citrix', '--device-address', b.nitroURL, '--ca-file', b.caFile, '--credentials-dir', b.credentialsDir];

/** The coordinator as production runs it, with the Citrix driver toward the emulator (or the device flags given). */
export function startCoordinatorProcess(b: Bench, extra: string[] = [], deviceArgs: string[] = citrixDeviceArgs(b)): CoordinatorProcess {
  const nodeFlags = (process.env.BENCH_COORDINATOR_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
  const [warning, ...command] = cliArgs(['coordinator',
    '--kubeconfig', b.kubeconfig, '--overlay-network', OVERLAY, '--device-vtep', VTEP, '--identity', 'bench',
    ...deviceArgs,
    '--health-listen', '127.0.0.1:0', '--pod-cidr-source', 'node', '--log-level', 'warn', ...extra], BENCH_COMPONENTS);
  const child = spawn(process.execPath, [warning!, ...nodeFlags, ...command], { stdio: ['ignore', 'ignore', 'inherit'] });
  let peak = 0;
  const sample = (): void => {
    try {
      const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid ?? 0}/status`, 'utf8'))?.[1] ?? 0);
      peak = Math.max(peak, hwm);
    } catch {
      // exited
    }
  };
  const timer = setInterval(sample, 200);
  return {
    child,
    peakRssMiB: () => {
      sample();
      return peak / 1024;
    },
    async stop() {
      sample();
      clearInterval(timer);
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** Nodes whose route and arp are both on the emulated ADC. */
export function programmedOnDevice(b: Bench): number {
  const arps = new Set(b.emulator.store.list('arp').map((a) => String(a.ipaddress)));
  const gateways = new Set(b.emulator.store.list('route').map((r) => String(r.gateway)));
  let n = 0;
  for (const ip of arps) if (gateways.has(ip)) n++;
  return n;
}

export async function waitFor(what: string, check: () => boolean, timeoutMs: number, everyMs = 20): Promise<number> {
  const t0 = performance.now();
  while (!check()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return performance.now() - t0;
}

export const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete']);
