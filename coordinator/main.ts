/** `chorus-kube-router coordinator`: wiring only; the logic is in coordinator.ts and its modules. */
import { ConfigError, helpText, instanceNamesFrom, loadConfigFile, readSettings, settingGiven } from '../shared/cli-args.ts';
import { DEFAULT_NAMESPACE } from '../shared/keys.ts';
import { keepPublishedVni, publishedVni } from './published-vni.ts';
import type { Logger } from '../shared/log.ts';
import { createLogger } from '../shared/log.ts';
import { loadKubeConfig } from '../shared/kube/client.ts';
import { startHealthServer } from '../shared/health.ts';
import { onShutdown } from '../shared/process.ts';
import { Coordinator } from './coordinator.ts';
import { driverFor } from './drivers/select.ts';
import { DeviceOwnershipError, diffDevice } from './drivers/driver.ts';
import { clusterIdFromApi, deviceOwner, resolveClusterId } from './cluster-identity.ts';
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
  const read = readSettings(argv, COORDINATOR_SPECS, process.env, file);
  const { positionals } = read;
  const log = createLogger({ component: 'coordinator', level: read.settings['log-level'] ?? 'info' });
  if (positionals.length > 0 && positionals[0] !== 'teardown') throw new ConfigError(`unknown argument "${positionals[0] ?? ''}"; see --help`);
  coordinatorConfig(read.settings, process.env); // every setting checked before the cluster is asked anything
  const vniGiven = settingGiven('vni', COORDINATOR_SPECS, argv, process.env, file);
  // the coordinator waits for the API (the VNI it runs must not fall back to a default); teardown may have no API at all
  const settings = await keepPublishedVni(read.settings, vniGiven, () => publishedVni(loadKubeConfig(read.settings.kubeconfig), read.settings.namespace ?? DEFAULT_NAMESPACE, instanceNamesFrom(read.settings)), log, positionals[0] === 'teardown' ? 0 : 120_000);
  const config = coordinatorConfig(settings, process.env);
  if (positionals[0] === 'teardown') return teardown(config, settings.kubeconfig, log);
  const kubeConfig = loadKubeConfig(settings.kubeconfig);
  const clusterId = await resolveClusterId(config.clusterId, { kubeConfig, log });
  const coordinator = new Coordinator({
    kubeConfig,
    clusterId,
    namespace: config.namespace,
    names: config.names,
    identity: config.identity,
    serviceCIDRs: config.serviceCIDRs,
    ...(config.podRanges ? { podRanges: config.podRanges } : {}),
    overlay: config.overlay,
    routing: config.routing,
    driver: driverFor(config, deviceOwner(clusterId, config.names), log),
    log,
    resyncMs: config.resyncMs,
    underlayGraceMs: config.underlayGraceMs,
    passDeadlineMs: config.passDeadlineMs,
    deviceResyncMs: config.deviceResyncMs,
    leaseDurationMs: config.leaseDurationMs,
    renewDeadlineMs: config.renewDeadlineMs,
    retryPeriodMs: config.retryPeriodMs,
    podCidrSource: config.podCidrSource,
    ...(config.nodeSelector ? { nodeSelector: config.nodeSelector } : {}),
  });
  const health = await startHealthServer(settings['health-listen'] ?? '', coordinator);
  log.info({ identity: config.identity, clusterId, health: health.url, deviceType: config.deviceType, routing: config.routing.mode, ...config.overlay }, 'coordinator started');
  coordinator.start();
  onShutdown(log, async () => {
    await coordinator.stop();
    await health.close();
  });
  return new Promise<number>(() => undefined);
}

/**
 * Removes every object this cluster owns on the device (the Linux device owns none), and nothing
 * of another cluster's. Without --cluster-id the identity is read from the API (the device-teardown
 * Job runs without an API token, so it sets CHORUS_CLUSTER_ID).
 */
async function teardown(config: ReturnType<typeof coordinatorConfig>, kubeconfig: string | undefined, log: Logger): Promise<number> {
  if (config.deviceType === 'linux') {
    log.info({ device: config.deviceType }, 'teardown: nothing to do, the coordinator makes no objects on a Linux device (its gateway programs the box from the peer table)');
    return 0;
  }
  const clusterId = config.clusterId ?? await clusterIdFromApi({ kubeConfig: loadKubeConfig(kubeconfig), log, giveUpAfterMs: 10_000 }).catch((err: unknown) => {
    throw new ConfigError(`teardown needs this cluster's identity: ${err instanceof Error ? err.message : String(err)}`);
  });
  const driver = driverFor(config, deviceOwner(clusterId, config.names), log);
  try {
    let owned;
    try {
      owned = await driver.observe();
    } catch (err) {
      if (!(err instanceof DeviceOwnershipError)) throw err;
      log.error({ device: config.deviceType, clusterId, reason: err.message }, 'teardown removed nothing: the objects of this configuration belong to another cluster');
      return 1;
    }
    const failures = await driver.apply(diffDevice([], owned), () => []);
    for (const f of failures) log.error({ kind: f.change.entry.kind, key: f.change.entry.key, reason: f.reason }, 'could not remove');
    log.info({ device: config.deviceType, clusterId, removed: owned.length - failures.length, failed: failures.length }, 'teardown done');
    return failures.length === 0 ? 0 : 1;
  } finally {
    await driver.close();
  }
}
