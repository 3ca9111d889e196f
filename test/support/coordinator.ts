/** Runs a Coordinator in-process against a test API server. */
import type { CoreV1Api, KubeConfig, V1Node } from '@kubernetes/client-node';
import type { RoutingPolicy } from '../../coordinator/routing.ts';
import { ANNOTATION_PATH, LABEL_TABLE } from '../../shared/keys.ts';
import { decodePeer, pathOf } from '../../shared/tables.ts';
import { Coordinator, type CoordinatorOptions } from '../../coordinator/coordinator.ts';
import { linuxDriver } from '../../coordinator/drivers/linux.ts';
import type { OverlayConfig } from '../../coordinator/plan.ts';
import { silentLogger } from '../../shared/log.ts';

export const TEST_OVERLAY: OverlayConfig = { vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'] };

export function startCoordinator(kubeConfig: KubeConfig, identity: string, overlay: OverlayConfig = TEST_OVERLAY, extra: Partial<CoordinatorOptions> = {}): Coordinator {
  const c = new Coordinator({
    kubeConfig, namespace: 'chorus-system', identity, overlay, driver: linuxDriver(), log: silentLogger(),
    resyncMs: 60_000, deviceResyncMs: 60_000, leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 250,
    podCidrSource: 'auto', ...extra,
  });
  c.start();
  return c;
}

/** --routing auto with the subnets read from the device, as the settings give it before the device has answered. */
export const AUTO_FROM_DEVICE: RoutingPolicy = { mode: 'auto', directSubnets: [], fromDevice: true, pending: true };

/** Each node's path as the published peer table says it (the shards in chorus-system). */
export async function publishedPaths(core: CoreV1Api): Promise<Record<string, string>> {
  const shards = await core.listNamespacedConfigMap({ namespace: 'chorus-system', labelSelector: `${LABEL_TABLE}=peers` });
  const out: Record<string, string> = {};
  for (const cm of shards.items) {
    for (const [node, value] of Object.entries(cm.data ?? {})) {
      const peer = decodePeer(node, value);
      if (!(peer instanceof Error)) out[node] = pathOf(peer);
    }
  }
  return out;
}

/** A Node at this InternalIP with one pod CIDR, recording a path as a coordinator left it. */
export function nodeAt(name: string, ip: string, podCIDR: string, recordedPath?: 'direct'): V1Node {
  return {
    metadata: { name, ...(recordedPath ? { annotations: { [ANNOTATION_PATH]: recordedPath } } : {}) },
    spec: { podCIDRs: [podCIDR] }, status: { addresses: [{ type: 'InternalIP', address: ip }] },
  };
}
