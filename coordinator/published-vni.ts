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

/** The VNI the running install publishes in its hub ConfigMap, if any (read through list: the coordinator's RBAC). */
export async function publishedVni(kubeConfig: KubeConfig, namespace: string, names: InstanceNames = DEFAULT_NAMES): Promise<number | undefined> {
  const list = await kubeConfig.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace, fieldSelector: `metadata.name=${names.hubConfigMap}` });
  const raw = list.items[0]?.data?.vni;
  const vni = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(vni) && vni >= 1 && vni <= 16777215 ? vni : undefined;
}

/** Settings with the published VNI in place of the default one, when the VNI was not given. */
export async function keepPublishedVni(settings: Settings, vniGiven: boolean, read: () => Promise<number | undefined>, log: Logger): Promise<Settings> {
  if (vniGiven) return settings;
  let vni: number | undefined;
  try {
    vni = await read();
  } catch (err) {
    log.warn({ err: err instanceof Error ? err.message.split('\n')[0] : String(err) }, 'could not read the published hub info to keep its VNI; using the setting or its default');
    return settings;
  }
  if (vni === undefined || String(vni) === settings.vni) return settings;
  log.warn({ publishedVni: vni, defaultVni: settings.vni }, 'keeping the VNI this install already publishes (an earlier default); set --vni (CHORUS_VNI) to choose one explicitly');
  return { ...settings, vni: String(vni) };
}
