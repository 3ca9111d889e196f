/**
 * `chorus-kube-router doctor`: run on a node (or in its agent pod) to check this node's side of
 * the overlay. It works out what the overlay should be exactly as the agent does (the Node and
 * the hub info from the API, the same planner), reads what the kernel holds, and prints one
 * PASS/FAIL line per check with the fix for each failure. Exit code 0: all pass; 1: a check
 * failed; 2: bad usage. It changes nothing.
 */
import { hostname } from 'node:os';
import { DEFAULT_NAMESPACE } from '../../shared/keys.ts';
import { INSTANCE_SPEC, choiceSetting, helpText, instanceNamesFrom, readSettings, type SettingSpec } from '../../shared/cli-args.ts';
import { runCommand } from '../../shared/command.ts';
import { loadKubeConfig, makeClients } from '../../shared/kube/client.ts';
import { ipRoute, type IpRoute } from '../../shared/iproute.ts';
import { errorMessage } from '../../shared/errors.ts';
import { planNode, resolveNodeInputs, hostFactsOf, vxlanClash } from '../node-plan.ts';
import { isProblem } from '../plan-types.ts';
import { observeOverlay, readInterfaces } from '../overlay/observe.ts';
import { nftCommand } from '../firewall/nft.ts';
import { readSysctl, setProcSys } from '../host.ts';
import { diagnose, formatResults, type DirectFacts, type DoctorFacts } from './checks.ts';

export const DOCTOR_SPECS: SettingSpec[] = [
  { flag: 'node-name', env: ['NODE_NAME'], help: 'the Node this host is (default: the hostname)' },
  { flag: 'namespace', env: ['CHORUS_NAMESPACE', 'POD_NAMESPACE'], help: 'namespace of the hub ConfigMap', default: DEFAULT_NAMESPACE },
  { flag: 'kubeconfig', env: ['KUBECONFIG'], help: "kubeconfig file; in the agent pod its service account is used (doctor needs only the agent's read access)" },
  { flag: 'underlay-ip', env: ['CHORUS_UNDERLAY_IP'], help: "local VTEP address, if the agent was given one; default: the Node's InternalIP" },
  { flag: 'agent-url', env: ['CHORUS_AGENT_URL'], help: "the agent's health address on this node", default: 'http://127.0.0.1:9641' },
  { flag: 'firewall', env: ['CHORUS_FIREWALL'], help: 'on: check the agent\'s nftables table; off: the agent runs with --firewall off', default: 'on' },
  { flag: 'proc-sys', env: ['CHORUS_PROC_SYS'], help: "where the host's /proc/sys is", default: '/proc/sys' },
  { flag: 'json', help: 'print the results as JSON', bool: true },
  INSTANCE_SPEC,
];

const USAGE = 'chorus-kube-router doctor [--node-name NODE] [--kubeconfig FILE] [--json]';
const DESCRIPTION = "Checks this node's side of the overlay: the VXLAN device, its address and MTU, the FDB entries\ntoward the device, the firewall table, rp_filter, ip_forward, that the device answers through the\noverlay, and the agent's /readyz. One PASS/FAIL line per check, each failure with its fix.\nExit code 0 when every check passes, 1 otherwise. Changes nothing.";

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

async function planFor(settings: Record<string, string | undefined>, node: string, ip: IpRoute): Promise<DoctorFacts['plan']> {
  try {
    const { core } = makeClients(loadKubeConfig(settings.kubeconfig));
    const namespace = settings.namespace ?? DEFAULT_NAMESPACE;
    const names = instanceNamesFrom(settings);
    const [nodes, hubs] = await withTimeout(Promise.all([
      core.listNode({ fieldSelector: `metadata.name=${node}` }),
      core.listNamespacedConfigMap({ namespace, fieldSelector: `metadata.name=${names.hubConfigMap}` }),
    ]), 5_000, 'the Kubernetes API');
    const resolved = resolveNodeInputs(node, nodes.items[0], (hubs.items[0])?.data, `${namespace}/${names.hubConfigMap}`, settings['underlay-ip'], names);
    if (isProblem(resolved)) return { error: resolved.reason };
    const facts = hostFactsOf(await readInterfaces(ip), resolved);
    const clash = vxlanClash(facts, resolved.hub.vni, resolved.hub.port, names);
    if (clash) return { error: clash, check: 'VXLAN port and VNI', fix: 'give chorus-kube-router a VNI (or port) no other VXLAN device on the nodes uses: the coordinator\'s --vni / CHORUS_VNI; or remove the other device if it is a leftover' };
    const plan = planNode(resolved, facts);
    return isProblem(plan) ? { error: plan.reason } : plan;
  } catch (err) {
    return { error: errorMessage(err) };
  }
}

async function pingDevice(dev: string, target: string): Promise<{ sent: number; received: number; target: string }> {
  const r = await runCommand('ping', ['-c', '3', '-i', '0.2', '-W', '1', '-n', '-q', '-I', dev, target]);
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(r.stdout);
  return { sent: Number(m?.[1] ?? 3), received: Number(m?.[2] ?? 0), target };
}

/** What doctor checks on a directly routed node: the way to the device, a ping of it, overlay devices left. */
async function directFacts(ip: IpRoute, target: string | undefined, owns: (name: string) => boolean): Promise<DirectFacts> {
  const overlayDevices = (await observeOverlay(ip, '', owns)).staleDevices;
  if (target === undefined) return { routeToDevice: undefined, ping: undefined, overlayDevices };
  const routes = (await ip.json('ip', ['route', 'get', target]).catch(() => [])) as { dev?: string; gateway?: string }[];
  const r = routes[0];
  const r0 = r?.dev === undefined ? undefined : { target, dev: r.dev, via: r.gateway };
  const p = await runCommand('ping', ['-c', '3', '-i', '0.2', '-W', '1', '-n', '-q', target]);
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(p.stdout);
  return { routeToDevice: r0, ping: { sent: Number(m?.[1] ?? 3), received: Number(m?.[2] ?? 0), target }, overlayDevices };
}

async function agentReady(url: string): Promise<{ ok: boolean; detail: string; url: string }> {
  const target = `${url.replace(/\/+$/, '')}/readyz`;
  try {
    const r = await fetch(target, { signal: AbortSignal.timeout(2_000) });
    const body = (await r.text()).trim().slice(0, 300);
    return { ok: r.status === 200, detail: r.status === 200 ? 'ready' : `not ready (HTTP ${r.status}): ${body}`, url: target };
  } catch (err) {
    return { ok: false, detail: `no answer (${errorMessage(err)})`, url: target };
  }
}

const sysctlOr = (key: string, fallback: string): Promise<string> => readSysctl(key).catch(() => fallback);

/**
 * Pings of the device's overlay address(es) through the overlay device `dev` (undefined: it is
 * missing, nothing is tried); in a dual-stack overlay also its IPv6 one, and IPv6 forwarding.
 */
async function reachFacts(plan: DoctorFacts['plan'], dev: string | undefined): Promise<Pick<DoctorFacts, 'ping' | 'ping6' | 'ipv6Forward'>> {
  if ('error' in plan || 'direct' in plan) return { ping: undefined };
  const target = plan.firewall.deviceOverlayIPs[0];
  const target6 = plan.firewall.deviceOverlayIPv6s?.[0];
  const ping = dev && target ? await pingDevice(dev, target) : undefined;
  if (target6 === undefined) return { ping };
  return { ping, ipv6Forward: await sysctlOr('net.ipv6.conf.all.forwarding', '0'), ping6: dev ? await pingDevice(dev, target6) : undefined };
}

export async function doctorMain(argv: readonly string[]): Promise<number> {
  const { settings, help } = readSettings(argv, DOCTOR_SPECS, process.env);
  if (help) {
    console.log(helpText(USAGE, DESCRIPTION, DOCTOR_SPECS));
    return 0;
  }
  const firewallEnabled = choiceSetting(settings, 'firewall', ['on', 'off'] as const) === 'on';
  setProcSys(settings['proc-sys'] ?? '/proc/sys');
  const node = settings['node-name'] ?? hostname();
  const ip = ipRoute();
  const names = instanceNamesFrom(settings);
  const plan = await planFor(settings, node, ip);
  const dev = 'error' in plan || 'direct' in plan ? undefined : plan.overlay.vxlan.name;
  const observed = dev ? (await observeOverlay(ip, dev, names.ownsDevice)).observed : { vxlan: undefined, addresses: [], fdb: [], neighbours: [], routes: [] };
  const facts: DoctorFacts = {
    node, plan, observed, firewallEnabled,
    firewallListing: firewallEnabled ? await nftCommand(undefined, names.firewallTable).list().catch(() => undefined) : undefined,
    rpFilter: { all: await sysctlOr('net.ipv4.conf.all.rp_filter', '0'), dev: dev ? await sysctlOr(`net.ipv4.conf.${dev}.rp_filter`, '') || undefined : undefined },
    ipForward: await sysctlOr('net.ipv4.ip_forward', '0'),
    ...(await reachFacts(plan, dev !== undefined && observed.vxlan !== undefined ? dev : undefined)),
    agent: await agentReady(settings['agent-url'] ?? 'http://127.0.0.1:9641'),
    ...('direct' in plan ? { direct: await directFacts(ip, plan.direct.deviceVTEPs[0], names.ownsDevice) } : {}),
  };
  const results = diagnose(facts);
  console.log(settings.json === 'true' ? JSON.stringify({ node, ok: results.every((r) => r.ok), checks: results }, null, 2) : formatResults(results));
  return results.every((r) => r.ok) ? 0 : 1;
}
