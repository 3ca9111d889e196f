/** `chorus-kube-router coordinator`: wiring only; the logic is in coordinator.ts and its modules. */
import { ConfigError, helpText, loadConfigFile, readSettings } from '../shared/cli-args.ts';
import type { Logger } from '../shared/log.ts';
import { createLogger } from '../shared/log.ts';
import { loadKubeConfig } from '../shared/kube/client.ts';
import { startHealthServer } from '../shared/health.ts';
import { onShutdown } from '../shared/process.ts';
import { Coordinator } from './coordinator.ts';
import { driverFor } from './drivers/select.ts';
import { diffDevice } from './drivers/driver.ts';
import { COORDINATOR_SPECS, coordinatorConfig } from './config.ts';

const USAGE = 'chorus-kube-router coordinator --overlay-network CIDR --device-vtep IP [options]\n       chorus-kube-router coordinator teardown [same options]';
const DESCRIPTION = 'Allocates overlay addresses, publishes the hub info and peer table, and programs the device.\nRun two or more replicas: one leads through a Lease, the others stand by with warm caches.';

export async function coordinatorMain(argv: readonly string[]): Promise<number> {
  const first = readSettings(argv, COORDINATOR_SPECS.map((s) => ({ ...s, required: false })), process.env);
  if (first.help) {
    console.log(helpText(USAGE, DESCRIPTION, COORDINATOR_SPECS));
    return 0;
  }
  const file = first.settings.config ? loadConfigFile(first.settings.config, COORDINATOR_SPECS) : {};
  const { settings, positionals } = readSettings(argv, COORDINATOR_SPECS, process.env, file);
  const config = coordinatorConfig(settings, process.env);
  const log = createLogger({ component: 'coordinator', level: settings['log-level'] ?? 'info' });
  if (positionals[0] === 'teardown') return teardown(config, log);
  if (positionals.length > 0) throw new ConfigError(`unknown argument "${positionals[0] ?? ''}"; see --help`);
  const coordinator = new Coordinator({
    kubeConfig: loadKubeConfig(settings.kubeconfig),
    namespace: config.namespace,
    identity: config.identity,
    overlay: config.overlay,
    driver: driverFor(config, log),
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

/** Removes every object this cluster owns on the device (the Linux device owns none). */
async function teardown(config: ReturnType<typeof coordinatorConfig>, log: Logger): Promise<number> {
  const driver = driverFor(config, log);
  try {
    const owned = await driver.observe();
    const failures = await driver.apply(diffDevice([], owned), []);
    for (const f of failures) log.error({ kind: f.change.entry.kind, key: f.change.entry.key, reason: f.reason }, 'could not remove');
    log.info({ device: config.deviceType, removed: owned.length - failures.length, failed: failures.length }, 'teardown done');
    return failures.length === 0 ? 0 : 1;
  } finally {
    await driver.close();
  }
}
