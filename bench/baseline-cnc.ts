/**
 * The baseline: how the older Citrix node controller programs the ADC, re-created in the same
 * harness so ratios are fair. One NITRO call per object, header auth on every request (no
 * session), and on every node event delete-then-add of that node's route and arp (looking them
 * up first), no bulk, no diff. (From the reference's description of its code.)
 */
import { NitroClient } from '../coordinator/drivers/citrix/nitro-client.ts';
import { formatIPv4, maskOf, parseCidr } from '../shared/ipv4.ts';
import type { Peer } from '../shared/tables.ts';

export class BaselineCnc {
  readonly client: NitroClient;
  private readonly vni: number;

  constructor(baseURL: string, username: string, password: string, caFile: string, vni: number) {
    this.client = new NitroClient({ baseURL, username, password, auth: 'header', caFile, timeoutMs: 10_000 });
    this.vni = vni;
  }

  async start(vtep: string, snip: string, prefix: number, port: number): Promise<void> {
    await this.client.send('POST', '/nitro/v1/config/vxlan', { vxlan: { id: this.vni, port } });
    await this.client.send('POST', '/nitro/v1/config/nsip', { nsip: { ipaddress: snip, netmask: formatIPv4(maskOf(prefix)), type: 'SNIP' } });
    await this.client.send('POST', '/nitro/v1/config/vxlan_srcip_binding', { vxlan_srcip_binding: { id: this.vni, srcip: vtep } });
  }

  /** A node event: look up and delete its route and arp, then add them again. */
  async nodeEvent(p: Peer): Promise<void> {
    for (const c of p.podCIDRs) {
      const cidr = parseCidr(c);
      const network = formatIPv4(cidr.network);
      const netmask = formatIPv4(maskOf(cidr.prefix));
      await this.client.send('GET', `/nitro/v1/config/route?args=network:${network},netmask:${netmask}`);
      await this.client.send('DELETE', `/nitro/v1/config/route?args=network:${network},netmask:${netmask},gateway:${p.overlayIP}`);
      await this.client.send('GET', `/nitro/v1/config/arp/${p.overlayIP}`);
      await this.client.send('DELETE', `/nitro/v1/config/arp/${p.overlayIP}`);
      await this.client.send('POST', '/nitro/v1/config/route', { route: { network, netmask, gateway: p.overlayIP } });
      await this.client.send('POST', '/nitro/v1/config/arp', { arp: { ipaddress: p.overlayIP, mac: p.vtepMAC, vxlan: this.vni, vtep: p.underlayIP } });
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
