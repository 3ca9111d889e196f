/** Builds the device driver the configuration names. */
import type { Logger } from '../../shared/log.ts';
import type { CoordinatorConfig } from '../config.ts';
import type { DeviceDriver } from './driver.ts';
import { linuxDriver } from './linux.ts';
import { CitrixDriver } from './citrix/citrix-driver.ts';

export function driverFor(config: CoordinatorConfig, log: Logger): DeviceDriver {
  if (config.deviceType === 'citrix' && config.device && config.credentials) {
    const d = config.device;
    return new CitrixDriver({
      baseURL: d.baseURL, username: config.credentials.username, password: config.credentials.password, auth: d.citrixAuth,
      ...(d.caFile ? { caFile: d.caFile } : {}), insecureSkipVerify: d.insecureSkipVerify,
      vni: config.overlay.vni, overlayNetwork: config.overlay.overlayNetwork, neighbours: d.citrixNeighbours,
      ...(d.citrixNetprofile ? { netprofile: d.citrixNetprofile } : {}), routing: d.citrixRouting, saveConfig: d.saveConfig, log,
    });
  }
  return linuxDriver();
}
