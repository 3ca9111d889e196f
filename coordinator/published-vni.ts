/**
 * The default VNI changed (4096, Calico's VXLAN default, became 100000: docs/install.md). An
 * install that relied on the old default must not move to a new VNI on upgrade (every node and the
 * device would get a second overlay and the old one would be left behind), so when `--vni` is not
 * given the coordinator keeps the VNI its hub ConfigMap already publishes, and says so.
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { DEFAULT_NAMES, type InstanceNames } from '../shared/keys.ts';
import type { Logger } from '../shared/log.ts';
import type { Settings } from '../shared/cli-args.ts';
import { exponentialBackoff, sleep } from '../shared/backoff.ts';

/** The VNI the running install publishes in its hub ConfigMap, if any (read through list: the coordinator's RBAC). */
export async function publishedVni(kubeConfig: KubeConfig, namespace: string, names: InstanceNames = DEFAULT_NAMES): Promise<number | undefined> {
  const list = await kubeConfig.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace, fieldSelector: `metadata.name=${names.hubConfigMap}` });
  const raw = list.items[0]?.data?.vni;
  const vni = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(vni) && vni >= 1 && vni <= 16777215 ? vni : undefined;
}

/**
 * Settings with the published VNI in place of the default one, when the VNI was not given. With
 * `retryForMs`, a failed read is retried with backoff (the coordinator must not start on a
 * default that may differ from what the cluster runs); without it (teardown, which may have no
 * API access) the setting or its default is used, with a warning.
 */
export async function keepPublishedVni(settings: Settings, vniGiven: boolean, read: () => Promise<number | undefined>, log: Logger, retryForMs = 0): Promise<Settings> {
  if (vniGiven) return settings;
  let vni: number | undefined;
  const backoff = exponentialBackoff(500, 4_000);
  const deadline = performance.now() + retryForMs;
  for (;;) {
    try {
      vni = await read();
      break;
    } catch (err) {
      const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
      if (retryForMs <= 0) {
        log.warn({ err: why }, 'could not read the published hub info to keep its VNI; using the setting or its default');
        return settings;
      }
      if (performance.now() > deadline) throw new Error(`cannot read the published hub info (to keep the VNI this install runs): ${why ?? ''}; set --vni (CHORUS_VNI) to start without it`, { cause: err });
      const delay = backoff.next();
      log.warn({ err: why, retryInMs: delay }, 'reading the published hub info (its VNI) failed; retrying');
      await sleep(delay);
    }
  }
  if (vni === undefined || String(vni) === settings.vni) return settings;
  log.warn({ publishedVni: vni, defaultVni: settings.vni }, 'keeping the VNI this install already publishes (an earlier default); set --vni (CHORUS_VNI) to choose one explicitly');
  return { ...settings, vni: String(vni) };
}
