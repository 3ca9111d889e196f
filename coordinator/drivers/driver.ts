/**
 * A device driver turns the coordinator's plan into the external device's own state. Drivers for
 * devices with an API (Citrix NITRO, F5 iControl) observe, diff and apply there; the Linux device
 * has no API: it runs `gateway` mode and reads the peer table itself.
 */
import type { CoordinatorPlan } from '../plan.ts';

export interface DeviceDriver {
  readonly type: string;
  /** Makes the device match the plan; called only by the leader, after the tables are written. */
  sync(plan: CoordinatorPlan): Promise<void>;
  close(): Promise<void>;
}
