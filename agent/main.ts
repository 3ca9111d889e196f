/** `chorus-kube-router agent`: wiring only; the logic is in node-agent.ts and overlay/. */
import { hostname } from 'node:os';
import { DEFAULT_NAMESPACE } from '../shared/keys.ts';
import { ConfigError, INSTANCE_SPEC, choiceSetting, instanceNamesFrom, durationMsSetting, helpText, ipSetting, readSettings, type SettingSpec } from '../shared/cli-args.ts';
import { createLogger } from '../shared/log.ts';
import { loadKubeConfig } from '../shared/kube/client.ts';
import { ipRoute } from '../shared/iproute.ts';
import { netlinkWriter } from './overlay/netlink-writer.ts';
import { netlinkReader } from './overlay/netlink-reader.ts';
import { startHealthServer, startStatusServer } from '../shared/health.ts';
import { onShutdown } from '../shared/process.ts';
import { NodeAgent } from './node-agent.ts';
import { EndpointProgrammer } from './endpoint-programmer.ts';
import { nftCommand } from './firewall/nft.ts';
import { deviceFeatures, linuxHost, setProcSys } from './host.ts';

export const AGENT_SPECS: SettingSpec[] = [
  { flag: 'node-name', env: ['NODE_NAME'], help: 'name of the Node this agent runs on (the DaemonSet sets it from spec.nodeName; default: the hostname)' },
  { flag: 'namespace', env: ['CHORUS_NAMESPACE', 'POD_NAMESPACE'], help: 'namespace of the hub ConfigMap', default: DEFAULT_NAMESPACE },
  { flag: 'kubeconfig', env: ['KUBECONFIG'], help: 'kubeconfig file; in a pod the service account is used' },
  { flag: 'underlay-ip', env: ['CHORUS_UNDERLAY_IP'], help: "local VTEP address; default: the Node's InternalIP" },
  { flag: 'health-listen', env: ['CHORUS_HEALTH_LISTEN'], help: 'address:port of /healthz, /livez, /readyz and /metrics: the node address the kubelet and Prometheus reach (deploy/ sets $(NODE_IP):9641)', default: '0.0.0.0:9641' },
  { flag: 'status-listen', env: ['CHORUS_STATUS_LISTEN'], help: 'address:port of /status (it lists VTEPs and peers): loopback unless you choose otherwise; off: not served', default: '127.0.0.1:9644' },
  { flag: 'tx-checksum-offload', env: ['CHORUS_TX_CHECKSUM_OFFLOAD'], help: 'off: turn tx-checksum-ip-generic off on the overlay device (avoids stalls seen with VXLAN on some kernels and NICs); keep: leave it as the kernel set it', default: 'off' },
  { flag: 'firewall', env: ['CHORUS_FIREWALL'], help: 'on: own nftables table inet chorus-kube-router[-<instance>] (VXLAN of our VNI only on the underlay interface and from device VTEPs; no masquerade toward the device); off: none', default: 'on' },
  { flag: 'resync', env: ['CHORUS_RESYNC'], help: 'full reconcile interval, the backstop for missed events', default: '5m' },
  { flag: 'proc-sys', env: ['CHORUS_PROC_SYS'], help: "where the host's /proc/sys is readable and writable (the DaemonSet mounts the host's /proc/sys/net under /host/proc/sys, so the agent needs no full privilege)", default: '/proc/sys' },
  { flag: 'command-deadline', env: ['CHORUS_COMMAND_DEADLINE'], help: 'deadline of each ip, bridge, nft or ethtool command and netlink request (reads, writes, ethtool netlink): one that hangs is killed (a request abandoned), the pass fails (Event KernelCommandTimedOut, /readyz says which) and is retried with backoff', default: '10s' },
  { flag: 'log-level', env: ['CHORUS_LOG_LEVEL'], help: 'trace, debug, info, warn or error', default: 'info' },
  INSTANCE_SPEC,
];

const USAGE = 'chorus-kube-router agent [options]\n       chorus-kube-router agent cleanup';
const DESCRIPTION = "Runs on every node: creates the node's VXLAN device, its overlay address and its FDB entries toward\nthe device, keeps them right (repairing drift as the kernel reports it), guards the VXLAN port with\nits own nftables table, and serves /healthz, /livez, /readyz, /metrics and /status.\n`agent cleanup` removes exactly what it created (device, FDB, neighbours, routes, nftables table).";

export async function agentMain(argv: readonly string[]): Promise<number> {
  const { settings, help, positionals } = readSettings(argv, AGENT_SPECS, process.env);
  if (help) {
    console.log(helpText(USAGE, DESCRIPTION, AGENT_SPECS));
    return 0;
  }
  const log = createLogger({ component: 'agent', level: settings['log-level'] ?? 'info' });
  const names = instanceNamesFrom(settings);
  setProcSys(settings['proc-sys'] ?? '/proc/sys');
  if (positionals[0] === 'cleanup') {
    const programmer = new EndpointProgrammer({ ip: ipRoute(), nft: nftCommand(undefined, names.firewallTable), log, txChecksum: 'keep', firewall: true, ownsDevice: names.ownsDevice });
    const removed = await programmer.cleanup();
    log.info({ devices: removed.devices, firewallTable: removed.firewall }, removed.devices.length > 0 || removed.firewall ? 'removed everything the agent created' : 'nothing to remove');
    return 0;
  }
  if (positionals.length > 0) throw new ConfigError(`unknown argument "${positionals[0] ?? ''}"; see --help`);
  const reader = netlinkReader(durationMsSetting(settings, 'command-deadline'));
  const writer = netlinkWriter(durationMsSetting(settings, 'command-deadline'));
  const features = deviceFeatures(durationMsSetting(settings, 'command-deadline'), log);
  const agent = new NodeAgent({
    kubeConfig: loadKubeConfig(settings.kubeconfig),
    nodeName: settings['node-name'] ?? hostname(),
    namespace: settings.namespace ?? DEFAULT_NAMESPACE,
    ...(settings['underlay-ip'] ? { underlayIP: ipSetting(settings, 'underlay-ip') } : {}),
    names,
    ip: ipRoute(undefined, durationMsSetting(settings, 'command-deadline')),
    reader,
    writer,
    host: linuxHost(features),
    nft: nftCommand(undefined, names.firewallTable, durationMsSetting(settings, 'command-deadline')),
    ownsDevice: names.ownsDevice,
    log,
    resyncMs: durationMsSetting(settings, 'resync'),
    txChecksum: choiceSetting(settings, 'tx-checksum-offload', ['off', 'keep'] as const),
    firewall: choiceSetting(settings, 'firewall', ['on', 'off'] as const) === 'on',
  });
  const health = await startHealthServer(settings['health-listen'] ?? '', agent, { status: false });
  const status = await startStatusServer(settings['status-listen'] ?? '', agent);
  log.info({ node: settings['node-name'] ?? hostname(), health: health.url, status: status?.url ?? 'off' }, 'agent started');
  agent.start();
  onShutdown(log, async () => {
    await agent.stop();
    reader.close();
    writer.close();
    features.close();
    await Promise.all([health.close(), status?.close()]);
  });
  return new Promise<number>(() => undefined);
}
