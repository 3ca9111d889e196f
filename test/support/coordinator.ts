/** Runs a Coordinator in-process against a test API server. */
import type { KubeConfig } from '@kubernetes/client-node';
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
