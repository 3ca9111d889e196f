/** `chorus-kube-router coordinator`: wiring only; the logic is in coordinator.ts and its modules. */
import { helpText, loadConfigFile, readSettings } from '../shared/cli-args.ts';
import { createLogger } from '../shared/log.ts';
import { loadKubeConfig } from '../shared/kube/client.ts';
import { startHealthServer } from '../shared/health.ts';
import { onShutdown } from '../shared/process.ts';
import { Coordinator } from './coordinator.ts';
import { linuxDriver } from './drivers/linux.ts';
import { COORDINATOR_SPECS, coordinatorConfig } from './config.ts';

const USAGE = 'chorus-kube-router coordinator --overlay-network CIDR --device-vtep IP [options]';
const DESCRIPTION = 'Allocates overlay addresses, publishes the hub info and peer table, and programs the device.\nRun two or more replicas: one leads through a Lease, the others stand by with warm caches.';

export async function coordinatorMain(argv: readonly string[]): Promise<number> {
  const first = readSettings(argv, COORDINATOR_SPECS.map((s) => ({ ...s, required: false })), process.env);
  if (first.help) {
    console.log(helpText(USAGE, DESCRIPTION, COORDINATOR_SPECS));
    return 0;
  }
  const file = first.settings.config ? loadConfigFile(first.settings.config, COORDINATOR_SPECS) : {};
  const { settings } = readSettings(argv, COORDINATOR_SPECS, process.env, file);
  const config = coordinatorConfig(settings, process.env);
  const log = createLogger({ component: 'coordinator', level: settings['log-level'] ?? 'info' });
  const coordinator = new Coordinator({
    kubeConfig: loadKubeConfig(settings.kubeconfig),
    namespace: config.namespace,
    identity: config.identity,
    overlay: config.overlay,
    driver: linuxDriver(),
    log,
    resyncMs: config.resyncMs,
    deviceResyncMs: config.deviceResyncMs,
    leaseDurationMs: config.leaseDurationMs,
    renewDeadlineMs: config.renewDeadlineMs,
    retryPeriodMs: config.retryPeriodMs,
    podCidrSource: config.podCidrSource,
    ...(config.nodeSelector ? { nodeSelector: config.nodeSelector } : {}),
  });
  const health = await startHealthServer(settings['health-listen'] ?? '', coordinator);
  log.info({ identity: config.identity, health: health.url, deviceType: config.deviceType, ...config.overlay }, 'coordinator started');
  coordinator.start();
  onShutdown(log, async () => {
    await coordinator.stop();
    await health.close();
  });
  return new Promise<number>(() => undefined);
}
