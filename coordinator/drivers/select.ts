/** Builds the device driver the configuration names. */
import type { Logger } from '../../shared/log.ts';
import type { CoordinatorConfig } from '../config.ts';
import type { DeviceDriver } from './driver.ts';
import { linuxDriver } from './linux.ts';
import { CitrixDriver } from './citrix/citrix-driver.ts';
import { F5Driver } from './f5/f5-driver.ts';

/** `clusterId`: this cluster's identity (cluster-identity.ts), marked on every device object. */
export function driverFor(config: CoordinatorConfig, clusterId: string, log: Logger): DeviceDriver {
  if (config.deviceType === 'citrix' && config.device && config.credentials) {
    const d = config.device;
    return new CitrixDriver({
      baseURL: d.baseURL, username: config.credentials.username, password: config.credentials.password, auth: d.citrixAuth,
      ...(d.caFile ? { caFile: d.caFile } : {}), insecureSkipVerify: d.insecureSkipVerify,
      vni: config.overlay.vni, overlayNetwork: config.overlay.overlayNetwork, overlayNetworkIPv6: config.overlay.overlayNetworkIPv6, neighbours: d.citrixNeighbours,
      ...(d.citrixNetprofile ? { netprofile: d.citrixNetprofile } : {}), routing: d.citrixRouting, saveConfig: d.saveConfig, clusterId, log,
    });
  }
  if (config.deviceType === 'f5' && config.device?.f5 && config.credentials) {
    const d = config.device;
    const f5 = d.f5 as NonNullable<typeof d.f5>;
    return new F5Driver({
      baseURLs: d.baseURLs, username: config.credentials.username, password: config.credentials.password, auth: f5.auth,
      ...(d.caFile ? { caFile: d.caFile } : {}), insecureSkipVerify: d.insecureSkipVerify,
      partition: f5.partition, namePrefix: f5.namePrefix, routing: f5.routing, allowService: f5.allowService, trafficGroup: f5.trafficGroup,
      ...(f5.syncGroup ? { syncGroup: f5.syncGroup } : {}), saveConfig: d.saveConfig, clusterId, overlayNetworkIPv6: config.overlay.overlayNetworkIPv6, log,
    });
  }
  return linuxDriver();
}
