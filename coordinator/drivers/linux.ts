/**
 * The Linux device: a box running `chorus-kube-router gateway`, which reads the published peer
 * table and programs itself. The coordinator has nothing to push to it.
 */
import type { DeviceDriver } from './driver.ts';

export function linuxDriver(): DeviceDriver {
  return {
    type: 'linux',
    deviceMACs: 'derived',
    desired: () => [],
    observe: () => Promise.resolve([]),
    apply: () => Promise.resolve([]),
    close: () => Promise.resolve(),
  };
}
