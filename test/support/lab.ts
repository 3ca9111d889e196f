/** Drives the lab through its CLI, as a user or a later test suite would. */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { inject } from 'vitest';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { execa, type Result } from 'execa';
import type { LabDocument } from '../lab/lab.ts';

export const CLI = fileURLToPath(new URL('../../bin/chorus-kube-router', import.meta.url));
export const IS_ROOT = process.getuid?.() === 0;
export const E2E_SKIP_REASON = 'e2e skipped: building network namespaces needs root (run make test as root)';

/**
 * A lab directory of this test file's own, inside this run's (global-setup.ts): tests never touch
 * a user's lab, and files that run at the same time (vitest.config.ts) never see each other's labs.
 */
export const LAB_DIR = mkdtempSync(join(inject('labDir'), 'file-'));

export async function cli(args: string[], opts: { reject?: boolean; timeoutMs?: number } = {}): Promise<Result> {
  return execa(CLI, args, { env: { CHORUS_LAB_DIR: LAB_DIR }, reject: opts.reject ?? true, timeout: opts.timeoutMs ?? 180_000 });
}

/**
 * Where the labs run the product from: the bundle under `make test` (scripts/test.sh builds it
 * first and says so in CHORUS_TEST_COMPONENTS), else the TypeScript sources (a `vitest run` of a
 * file never runs a stale bundle).
 */
const LAB_COMPONENTS = process.env.CHORUS_TEST_COMPONENTS === 'bundle' ? 'bundle' : 'sources';

export async function labUp(args: string[] = []): Promise<LabDocument> {
  const r = await cli(['lab', 'up', '--json', '--components', LAB_COMPONENTS, ...args]);
  return JSON.parse(String(r.stdout)) as LabDocument;
}

export async function labStatus(): Promise<LabDocument> {
  return JSON.parse(String((await cli(['lab', 'status', '--json'])).stdout)) as LabDocument;
}

export async function inNetns(netns: string, command: string[], reject = false): Promise<Result> {
  return execa('ip', ['netns', 'exec', netns, ...command], { reject });
}

/** An HTTP GET made from inside a namespace (lab addresses are not reachable from the host's). */
export async function httpFromNetns(netns: string, url: string): Promise<{ status: number; body: string }> {
  const r = await inNetns(netns, [process.execPath, '-e', `fetch(${JSON.stringify(url)}).then(async r => console.log(JSON.stringify({ status: r.status, body: await r.text() })), e => { console.error(String(e)); process.exit(1) })`], true);
  return JSON.parse(String(r.stdout)) as { status: number; body: string };
}

export async function pingOnce(netns: string, ip: string): Promise<boolean> {
  return (await inNetns(netns, ['ping', '-c', '1', '-W', '1', '-n', '-q', ip])).exitCode === 0;
}

/**
 * Whether `ip` answers a ping from `netns` within `timeoutMs` (one ping a second): for a path
 * that becomes ready asynchronously (a node's agent is ready before the device has its entry).
 */
export async function answersWithin(netns: string, ip: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  do {
    if (await pingOnce(netns, ip)) return true;
  } while (Date.now() < deadline);
  return false;
}

export async function labNamespaces(prefix: string): Promise<string[]> {
  const r = await execa('ip', ['netns', 'list'], { reject: false });
  return String(r.stdout).split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`${prefix}-`));
}

/** A client for the lab's API server, through the host-side kubeconfig. */
export function labKubeConfig(doc: LabDocument): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(doc.kubeconfig);
  return kc;
}

export function labCore(doc: LabDocument): CoreV1Api {
  return labKubeConfig(doc).makeApiClient(CoreV1Api);
}

/** Removes a lab a suite brought up (if it got that far). */
export async function labDown(doc: LabDocument | undefined): Promise<void> {
  if (doc) await cli(['lab', 'down', '--prefix', doc.prefix], { reject: false });
}

/** Starts a TCP server in `netns` that answers each connection with the peer address it saw; `host` '::' listens on both families. */
export async function startAddressEcho(netns: string, port: number, host = '0.0.0.0'): Promise<{ stop(): void }> {
  const server = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', `require('net').createServer(s => s.end(s.remoteAddress + '\\n')).listen(${port}, '${host}', () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => server.stdout.once('data', r));
  return { stop: () => server.kill() };
}

/** Connects from `netns` to ip:port over TCP and returns what the server said (the address it saw, for startAddressEcho). */
export async function tcpAnswer(netns: string, ip: string, port: number): Promise<string> {
  return String((await inNetns(netns, ['bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}; cat <&3`], true)).stdout).trim();
}

/** The source address a pod sees on a TCP connection from the lab's device. */
export async function podSeesFromDevice(doc: LabDocument, pod: { netns: string; ip: string }, port = 8080): Promise<string> {
  const echo = await startAddressEcho(pod.netns, port);
  try {
    return await tcpAnswer(doc.device.netns, pod.ip, port);
  } finally {
    echo.stop();
  }
}

/** A device emulator's record of calls (GET /emulator/calls), fetched from inside the lab and verified with the lab CA. */
export async function emulatorCalls<T>(doc: LabDocument, headers: Record<string, string>): Promise<T[]> {
  return ((await deviceGet(doc, '/emulator/calls', headers)) as { calls: T[] }).calls;
}

/** GET on the lab device's HTTPS API from inside the lab (verified with the lab CA), parsed JSON. */
export async function deviceGet(doc: LabDocument, path: string, headers: Record<string, string>): Promise<unknown> {
  const script = `const https = require('https'); const fs = require('fs');
    https.get('https://${doc.device.underlayIP}${path}', { ca: fs.readFileSync(${JSON.stringify(doc.device.api.caFile)}), headers: ${JSON.stringify(headers)} },
      (r) => { let b = ''; r.on('data', (d) => b += d); r.on('end', () => console.log(b)); });`;
  const r = await inNetns(doc.device.netns, [process.execPath, '-e', script], true);
  return JSON.parse(String(r.stdout));
}

/** The lab device's API credentials as headers: NITRO's X-NITRO-USER/PASS, or HTTP Basic for iControl REST. */
export function deviceHeaders(doc: LabDocument): Record<string, string> {
  const { username = '', password = '' } = doc.device.api;
  return doc.device.api.kind === 'nitro' ? { 'X-NITRO-USER': username, 'X-NITRO-PASS': password } : { Authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };
}

/**
 * Sends 1 MB over TCP from the lab's device to a pod and counts, in the pod's namespace, the
 * segments that arrived as full 1500-byte IP packets with DF set: > 0 only when the path carries
 * full-size packets (VXLAN's 50 bytes would cap them at 1450).
 */
export async function fullSizeTcpSegments(doc: LabDocument, pod: { netns: string; ip: string }, port = 8081): Promise<number> {
  const table = 'ckr-full-size';
  const rules = `table ip ${table} {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport ${port} ip length 1500 ip frag-off & 0x4000 != 0 counter\n\t}\n}\n`;
  await execaNft(pod.netns, rules);
  const sink = spawn('ip', ['netns', 'exec', pod.netns, process.execPath, '-e', `require('net').createServer(s => s.resume()).listen(${port}, '0.0.0.0', () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((r) => sink.stdout.once('data', r));
    // segmentation offload would hand the path 64 KB super-packets: the device's kernel cuts real
    // segments for the duration, as a hardware NIC would on the wire
    await inNetns(doc.device.netns, ['ethtool', '-K', 'eth0', 'tso', 'off', 'gso', 'off'], true);
    await inNetns(doc.device.netns, ['bash', '-c', `head -c 1000000 /dev/zero > /dev/tcp/${pod.ip}/${port}`], true)
      .finally(() => inNetns(doc.device.netns, ['ethtool', '-K', 'eth0', 'tso', 'on', 'gso', 'on']));
    const listing = String((await inNetns(pod.netns, ['nft', 'list', 'table', 'ip', table], true)).stdout);
    return Number(/counter packets (\d+)/.exec(listing)?.[1] ?? 0);
  } finally {
    sink.kill();
    await inNetns(pod.netns, ['nft', 'delete', 'table', 'ip', table]);
  }
}

async function execaNft(netns: string, rules: string): Promise<void> {
  const r = await execa('ip', ['netns', 'exec', netns, 'nft', '-f', '-'], { input: rules, reject: false });
  if (r.exitCode !== 0) throw new Error(`nft in ${netns}: ${String(r.stderr)}`);
}

/**
 * Pings `ip` from the lab's device at 50 pps for `seconds` while `during` runs; the packet loss in
 * percent. With `untilDone`, the ping stops (SIGINT: it prints its summary) as soon as `during`
 * has finished, `seconds` being only the most it runs.
 */
export async function lossFromDevice(doc: LabDocument, ip: string, seconds: number, during: () => Promise<void>, opts: { untilDone?: boolean } = {}): Promise<{ loss: number; output: string }> {
  const ping = spawn('ip', ['netns', 'exec', doc.device.netns, 'ping', '-i', '0.02', '-c', String(seconds * 50), '-W', '1', '-q', ip]);
  let out = '';
  ping.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<void>((resolve) => ping.on('close', () => resolve()));
  await during();
  if (opts.untilDone) ping.kill('SIGINT');
  await done;
  const m = /([\d.]+)% packet loss/.exec(out);
  return { loss: m ? Number(m[1]) : 100, output: out };
}

/** VXLAN packets the agent's firewall has dropped on a node (the counters of its input chain). */
export async function droppedVxlan(netns: string): Promise<number> {
  const out = String((await inNetns(netns, ['nft', 'list', 'chain', 'inet', 'chorus-kube-router', 'input'], true)).stdout);
  return [...out.matchAll(/counter packets (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/**
 * The source address a dual-stack pod sees on a TCP connection from the device over each family
 * (an echo listening on "::" answers the peer it saw): `ipv6` over the pod's IPv6 address,
 * `ipv4` (as an IPv4-mapped address) over its IPv4 one.
 */
export async function peersSeenByPod(doc: { device: { netns: string } }, pod: { netns: string; ip: string; ips: string[] }, port = 8080): Promise<{ ipv6: string; ipv4: string }> {
  const echo = await startAddressEcho(pod.netns, port, '::');
  try {
    return { ipv6: await tcpAnswer(doc.device.netns, pod.ips[1] ?? '', port), ipv4: await tcpAnswer(doc.device.netns, pod.ip, port) };
  } finally {
    echo.stop();
  }
}

/** The sum of the samples of `name` (a prefix: `chorus_agent_route_entries{family="ipv6"}` picks one series) a component serves on `/metrics`, fetched from inside `netns`. */
export async function metricFromNetns(netns: string, healthURL: string, name: string): Promise<number> {
  const { body } = await httpFromNetns(netns, healthURL.replace('/healthz', '/metrics'));
  return body.split('\n').filter((l) => l.startsWith(name)).reduce((s, l) => s + Number(l.split(' ').pop()), 0);
}
