/** `chorus-kube-router coordinator`: wiring only; the logic is in coordinator.ts and its modules. */
import { hostname } from 'node:os';
import { DEFAULT_NAMESPACE } from '../shared/keys.ts';
import { ConfigError, cidrSetting, durationMsSetting, helpText, intSetting, ipv4ListSetting, optionalInt, readSettings, type SettingSpec } from '../shared/cli-args.ts';
import { createLogger } from '../shared/log.ts';
import { loadKubeConfig } from '../shared/kube/client.ts';
import { startHealthServer } from '../shared/health.ts';
import { onShutdown } from '../shared/process.ts';
import { cidrContains, parseCidr, parseIPv4, usableHostRange } from '../shared/ipv4.ts';
import { Coordinator } from './coordinator.ts';
import { linuxDriver } from './drivers/linux.ts';
import type { OverlayConfig } from './plan.ts';

const SPECS: SettingSpec[] = [
  { flag: 'overlay-network', env: ['CHORUS_OVERLAY_NETWORK', 'NETWORK'], help: 'overlay subnet (CIDR) shared by the device and every node', required: true },
  { flag: 'device-vtep', env: ['CHORUS_DEVICE_VTEPS', 'REMOTE_VTEPIP'], help: "the device's VTEP (underlay) address(es), comma-separated", required: true },
  { flag: 'vni', env: ['CHORUS_VNI', 'VNID'], help: 'VXLAN network identifier, 1..16777215', default: '4096' },
  { flag: 'port', env: ['CHORUS_VXLAN_PORT', 'VXLAN_PORT'], help: 'VXLAN UDP port', default: '4789' },
  { flag: 'mtu', env: ['CHORUS_MTU'], help: 'overlay MTU; default: each end uses its underlay MTU minus 50' },
  { flag: 'device-type', env: ['CHORUS_DEVICE_TYPE'], help: 'linux (a box running `gateway`)', default: 'linux' },
  { flag: 'namespace', env: ['CHORUS_NAMESPACE', 'POD_NAMESPACE'], help: 'namespace for the tables and the Lease', default: DEFAULT_NAMESPACE },
  { flag: 'kubeconfig', env: ['KUBECONFIG'], help: 'kubeconfig file; in a pod the service account is used' },
  { flag: 'identity', env: ['POD_NAME'], help: 'leader-election identity', default: `${hostname()}-${process.pid}` },
  { flag: 'health-listen', env: ['CHORUS_HEALTH_LISTEN'], help: 'address:port of /healthz, /readyz, /status', default: '0.0.0.0:9642' },
  { flag: 'resync', env: ['CHORUS_RESYNC'], help: 'full reconcile interval', default: '5m' },
  { flag: 'lease-duration', help: 'leader lease duration', default: '15s' },
  { flag: 'renew-deadline', help: 'a leader that cannot renew within this stops writing', default: '10s' },
  { flag: 'retry-period', help: 'interval of lease renew / acquire attempts', default: '2s' },
  { flag: 'log-level', env: ['CHORUS_LOG_LEVEL'], help: 'trace, debug, info, warn or error', default: 'info' },
];

export function overlayConfigFrom(settings: Record<string, string | undefined>): OverlayConfig {
  const overlayNetwork = cidrSetting(settings, 'overlay-network');
  const deviceVTEPs = ipv4ListSetting(settings, 'device-vtep');
  const net = parseCidr(overlayNetwork);
  for (const v of deviceVTEPs) {
    if (cidrContains(net, parseIPv4(v))) throw new ConfigError(`--device-vtep ${v} is inside --overlay-network ${overlayNetwork}: the VTEP is an underlay address; pick an overlay network that does not contain it`);
  }
  if (usableHostRange(net).count <= deviceVTEPs.length) throw new ConfigError(`--overlay-network ${overlayNetwork} is too small: it must hold ${deviceVTEPs.length} device address(es) and at least one node`);
  if (settings['device-type'] !== 'linux') throw new ConfigError(`--device-type=${JSON.stringify(settings['device-type'])} is not supported by this build: use linux`);
  const mtu = optionalInt(settings, 'mtu', 576, 9000);
  return { vni: intSetting(settings, 'vni', 1, 16777215), port: intSetting(settings, 'port', 1, 65535), overlayNetwork, deviceVTEPs, ...(mtu !== undefined ? { mtu } : {}) };
}

export async function coordinatorMain(argv: readonly string[]): Promise<number> {
  const { settings, help } = readSettings(argv, SPECS, process.env);
  if (help) {
    console.log(helpText('chorus-kube-router coordinator --overlay-network CIDR --device-vtep IP [options]', 'Allocates overlay addresses, publishes the hub info and peer table, and programs the device.\nRun two or more replicas: one leads through a Lease, the others stand by with warm caches.', SPECS));
    return 0;
  }
  const log = createLogger({ component: 'coordinator', level: settings['log-level'] ?? 'info' });
  const overlay = overlayConfigFrom(settings);
  const coordinator = new Coordinator({
    kubeConfig: loadKubeConfig(settings.kubeconfig),
    namespace: settings.namespace ?? DEFAULT_NAMESPACE,
    identity: settings.identity ?? hostname(),
    overlay,
    driver: linuxDriver(),
    log,
    resyncMs: durationMsSetting(settings, 'resync'),
    leaseDurationMs: durationMsSetting(settings, 'lease-duration'),
    renewDeadlineMs: durationMsSetting(settings, 'renew-deadline'),
    retryPeriodMs: durationMsSetting(settings, 'retry-period'),
  });
  const health = await startHealthServer(settings['health-listen'] ?? '', coordinator);
  log.info({ identity: settings.identity, health: health.url, ...overlay }, 'coordinator started');
  coordinator.start();
  onShutdown(log, async () => {
    await coordinator.stop();
    await health.close();
  });
  return new Promise<number>(() => undefined);
}
