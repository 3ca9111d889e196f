/** `chorus-kube-router gateway`: the Linux device side (hub role). */
import { DEFAULT_NAMESPACE } from '../../shared/keys.ts';
import { INSTANCE_SPEC, choiceSetting, instanceNamesFrom, durationMsSetting, helpText, ipSetting, readSettings, type SettingSpec } from '../../shared/cli-args.ts';
import { nftCommand } from '../firewall/nft.ts';
import { createLogger } from '../../shared/log.ts';
import { loadKubeConfig } from '../../shared/kube/client.ts';
import { ipRoute } from '../../shared/iproute.ts';
import { netlinkWriter } from '../overlay/netlink-writer.ts';
import { netlinkReader } from '../overlay/netlink-reader.ts';
import { startHealthServer, startStatusServer } from '../../shared/health.ts';
import { onShutdown } from '../../shared/process.ts';
import { Gateway } from './gateway.ts';
import { deviceFeatures, linuxHost } from '../host.ts';

export const GATEWAY_SPECS: SettingSpec[] = [
  { flag: 'local-ip', env: ['CHORUS_GATEWAY_IP'], help: "this device's VTEP address (one of the coordinator's --device-vtep)", required: true },
  { flag: 'namespace', env: ['CHORUS_NAMESPACE'], help: 'namespace of the published tables', default: DEFAULT_NAMESPACE },
  { flag: 'kubeconfig', env: ['KUBECONFIG'], help: 'kubeconfig file of the cluster' },
  { flag: 'health-listen', env: ['CHORUS_HEALTH_LISTEN'], help: 'address:port of /healthz, /livez, /readyz and /metrics', default: '0.0.0.0:9643' },
  { flag: 'status-listen', env: ['CHORUS_STATUS_LISTEN'], help: 'address:port of /status (it lists nodes and their VTEPs): loopback unless you choose otherwise; off: not served', default: '127.0.0.1:9646' },
  { flag: 'tx-checksum-offload', env: ['CHORUS_TX_CHECKSUM_OFFLOAD'], help: 'off: turn tx-checksum-ip-generic off on the overlay device; keep: leave it', default: 'off' },
  { flag: 'firewall', env: ['CHORUS_FIREWALL'], help: 'on: own nftables table inet chorus-kube-router accepting VXLAN of our VNI only on the underlay interface and from node VTEPs; off: none', default: 'on' },
  { flag: 'resync', env: ['CHORUS_RESYNC'], help: 'full reconcile interval', default: '5m' },
  { flag: 'command-deadline', env: ['CHORUS_COMMAND_DEADLINE'], help: 'deadline of each ip, bridge, nft or ethtool command and netlink request (reads, writes, ethtool netlink): one that hangs is killed (a request abandoned), the pass fails (Event KernelCommandTimedOut, /readyz says which) and is retried with backoff', default: '10s' },
  { flag: 'log-level', env: ['CHORUS_LOG_LEVEL'], help: 'trace, debug, info, warn or error', default: 'info' },
  INSTANCE_SPEC,
];

export async function gatewayMain(argv: readonly string[]): Promise<number> {
  const { settings, help } = readSettings(argv, GATEWAY_SPECS, process.env);
  if (help) {
    console.log(helpText('chorus-kube-router gateway --local-ip IP [options]', 'Runs on a Linux box that is the external device (HAProxy/NGINX/Envoy): reads the peer table and\nprograms the VXLAN device, FDB, neighbour entries and a route to every node\'s pod CIDRs.', GATEWAY_SPECS));
    return 0;
  }
  const log = createLogger({ component: 'gateway', level: settings['log-level'] ?? 'info' });
  const names = instanceNamesFrom(settings);
  const reader = netlinkReader(durationMsSetting(settings, 'command-deadline'));
  const writer = netlinkWriter(durationMsSetting(settings, 'command-deadline'));
  const features = deviceFeatures(durationMsSetting(settings, 'command-deadline'), log);
  const gw = new Gateway({
    names,
    kubeConfig: loadKubeConfig(settings.kubeconfig),
    namespace: settings.namespace ?? DEFAULT_NAMESPACE,
    localIP: ipSetting(settings, 'local-ip'),
    ip: ipRoute(undefined, durationMsSetting(settings, 'command-deadline')),
    reader,
    writer,
    host: linuxHost(features),
    nft: nftCommand(undefined, names.firewallTable, durationMsSetting(settings, 'command-deadline')),
    log,
    resyncMs: durationMsSetting(settings, 'resync'),
    txChecksum: choiceSetting(settings, 'tx-checksum-offload', ['off', 'keep'] as const),
    firewall: choiceSetting(settings, 'firewall', ['on', 'off'] as const) === 'on',
  });
  const health = await startHealthServer(settings['health-listen'] ?? '', gw, { status: false });
  const status = await startStatusServer(settings['status-listen'] ?? '', gw);
  log.info({ vtep: settings['local-ip'], health: health.url, status: status?.url ?? 'off' }, 'gateway started');
  gw.start();
  onShutdown(log, async () => {
    await gw.stop();
    reader.close();
    writer.close();
    features.close();
    await Promise.all([health.close(), status?.close()]);
  });
  return new Promise<number>(() => undefined);
}
