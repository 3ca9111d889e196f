/**
 * Citrix ADC driver over NITRO. The plan becomes: the vxlan (VNI, port), its source-IP binding
 * (the device VTEP, a SNIP the operator configured), the overlay SNIP, and per node a route to
 * each pod CIDR via the node's overlay IP plus a static arp (overlay IP -> node VTEP MAC on the
 * vxlan, vtep = node underlay IP) and/or a bridgetable flood entry; optionally a netprofile
 * whose source IP is the overlay SNIP.
 *
 * Ownership: only this cluster's objects are ever observed or changed: the vxlan with our VNI
 * (and its binding, arp and bridgetable entries), our overlay SNIP, routes whose gateway lies in
 * our overlay network, our netprofile. Other clusters' and hand-made objects are never seen.
 * Changes go out grouped by resource, in dependency order, as bulk requests
 * (X-NITRO-ONERROR: continue) whose 207 answers are read item by item; "already exists" on add and
 * "no such resource" on delete count as done. The running config is saved after changes
 * (debounced). Being connected to the secondary of an HA pair is reported as such.
 */
import { cidrContains, formatIPv4, maskOf, parseCidr, parseIPv4 } from '../../../shared/ipv4.ts';
import { ALL_ZEROS_MAC } from '../../../shared/mac.ts';
import type { Logger } from '../../../shared/log.ts';
import type { CoordinatorPlan } from '../../plan.ts';
import type { DeviceChange, DeviceDriver, DeviceEntry, DeviceFailure } from '../driver.ts';
import { Debounced } from '../https-json.ts';
import { NitroApiError, NitroClient, errorOf, type NitroClientOptions, type NitroResponse } from './nitro-client.ts';

export interface CitrixOptions extends NitroClientOptions {
  readonly vni: number;
  readonly overlayNetwork: string;
  /** How nodes' MACs reach the ADC: static arp entries, bridgetable flood entries, or both. */
  readonly neighbours: 'arp' | 'bridgetable' | 'both';
  readonly netprofile?: string;
  /** route: one route per pod CIDR; pbr: one policy-based route per pod CIDR (several clusters behind one ADC). */
  readonly routing?: 'route' | 'pbr';
  readonly saveConfig: boolean;
  readonly saveDebounceMs?: number;
  readonly log: Logger;
}

type NitroObject = Record<string, unknown>;

const SECONDARY_HINT = 'connected to the secondary node of an HA pair: changes there are not propagated; point --device-address at the primary (its NSIP, or a SNIP with management access that moves with the primary)';

/** Order in which resources are added (and the reverse in which they are deleted). */
const ADD_ORDER = ['vxlan', 'nsip', 'vxlan_srcip_binding', 'arp', 'bridgetable', 'route', 'nspbr', 'netprofile'];

function netmaskOf(prefix: number): string {
  return formatIPv4(maskOf(prefix));
}

const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
const enc = (id: string): string => encodeURIComponent(encodeURIComponent(id));

export class CitrixDriver implements DeviceDriver {
  readonly type = 'citrix';
  readonly deviceMACs = 'learned' as const;
  readonly client: NitroClient;
  private readonly o: CitrixOptions;
  private readonly network;
  private readonly save: Debounced;
  private haChecked = false;

  constructor(o: CitrixOptions) {
    this.o = o;
    this.client = new NitroClient(o);
    this.network = parseCidr(o.overlayNetwork);
    this.save = new Debounced(() => this.saveNow(), o.saveDebounceMs ?? 2_000);
    if (o.insecureSkipVerify) o.log.warn({ device: o.baseURL }, 'TLS certificate verification of the ADC is OFF (--insecure-skip-tls-verify): use a CA bundle instead');
  }

  desired(plan: CoordinatorPlan): DeviceEntry[] {
    const vni = plan.hub.vni;
    const vtep = plan.hub.deviceVTEPs[0] ?? '';
    const snip = plan.hub.deviceOverlayIPs[0] ?? '';
    const mask = netmaskOf(this.network.prefix);
    const entries: DeviceEntry[] = [
      { kind: 'vxlan', key: String(vni), value: `port ${plan.hub.port}` },
      { kind: 'nsip', key: snip, value: `netmask ${mask}` },
      { kind: 'vxlan_srcip_binding', key: `${vni}/${vtep}`, value: '' },
    ];
    for (const p of plan.peers) {
      if (this.o.neighbours !== 'bridgetable') entries.push({ kind: 'arp', key: p.overlayIP, value: `${p.vtepMAC} ${vni} ${p.underlayIP}`, node: p.node });
      if (this.o.neighbours !== 'arp') entries.push({ kind: 'bridgetable', key: `${ALL_ZEROS_MAC}/${vni}/${p.underlayIP}`, value: '', node: p.node });
      for (const c of p.podCIDRs) {
        const cidr = parseCidr(c);
        if (this.o.routing === 'pbr') {
          const last = formatIPv4(cidr.network + 2 ** (32 - cidr.prefix) - 1);
          entries.push({ kind: 'nspbr', key: this.pbrName(formatIPv4(cidr.network), cidr.prefix), value: `${snip} ${formatIPv4(cidr.network)}-${last} ${p.overlayIP}`, node: p.node });
        } else {
          entries.push({ kind: 'route', key: `${formatIPv4(cidr.network)}/${netmaskOf(cidr.prefix)}/${p.overlayIP}`, value: '', node: p.node });
        }
      }
    }
    if (this.o.netprofile) entries.push({ kind: 'netprofile', key: this.o.netprofile, value: `srcip ${snip}` });
    return entries;
  }

  /** PBR names carry the VNI, so each cluster's PBRs are told apart on a shared ADC. */
  private pbrName(network: string, prefix: number): string {
    return `chorus-${this.o.vni}-${network.replace(/\./g, '-')}-${prefix}`;
  }

  private async get(path: string, resource: string): Promise<NitroObject[]> {
    const r = await this.client.send('GET', `/nitro/v1/config/${path}`);
    if (r.status === 404 && Number(r.body.errorcode) === 258) return [];
    this.check('GET', resource, r);
    const list = r.body[resource];
    return Array.isArray(list) ? (list as NitroObject[]) : [];
  }

  private check(method: string, what: string, r: NitroResponse): void {
    if (Number(r.body.errorcode) === 1028) throw new NitroApiError(r.status, 1028, `NITRO ${method} ${what}: ${SECONDARY_HINT}`);
    if (r.status >= 300) throw errorOf(method, what, r);
  }

  private async checkHighAvailability(): Promise<void> {
    if (this.haChecked) return;
    const nodes = await this.get('hanode', 'hanode');
    if (nodes.some((n) => str(n.state).toLowerCase() === 'secondary') && !nodes.some((n) => str(n.state).toLowerCase() === 'primary')) {
      throw new NitroApiError(0, 1028, `the ADC at ${this.o.baseURL} is ${SECONDARY_HINT}`);
    }
    this.haChecked = true;
  }

  async observe(): Promise<DeviceEntry[]> {
    await this.checkHighAvailability();
    const vni = String(this.o.vni);
    const ours = (ip: string): boolean => {
      try {
        return cidrContains(this.network, parseIPv4(ip));
      } catch {
        return false;
      }
    };
    const [vxlans, bindings, nsips, arps, bridges, routes, profiles, pbrs] = await Promise.all([
      this.get(`vxlan/${enc(vni)}`, 'vxlan'),
      this.get(`vxlan_srcip_binding?filter=id:${encodeURIComponent(`^${vni}$`)}`, 'vxlan_srcip_binding'),
      this.get('nsip', 'nsip'),
      this.get(`arp?filter=vxlan:${encodeURIComponent(`^${vni}$`)}`, 'arp'),
      this.get(`bridgetable?filter=vxlan:${encodeURIComponent(`^${vni}$`)}`, 'bridgetable'),
      this.get('route', 'route'),
      this.o.netprofile ? this.get(`netprofile/${enc(this.o.netprofile)}`, 'netprofile') : Promise.resolve([]),
      this.get(`nspbr?filter=name:${encodeURIComponent(`^chorus-${vni}-`)}`, 'nspbr'),
    ]);
    return [
      ...vxlans.filter((v) => str(v.id) === vni).map((v): DeviceEntry => ({ kind: 'vxlan', key: vni, value: `port ${str(v.port) || '4789'}` })),
      ...bindings.filter((b) => str(b.id) === vni).map((b): DeviceEntry => ({ kind: 'vxlan_srcip_binding', key: `${vni}/${str(b.srcip)}`, value: '' })),
      ...nsips.filter((n) => ours(str(n.ipaddress)) && (n.type === undefined || str(n.type) === 'SNIP')).map((n): DeviceEntry => ({ kind: 'nsip', key: str(n.ipaddress), value: `netmask ${str(n.netmask)}` })),
      ...arps.filter((a) => str(a.vxlan) === vni).map((a): DeviceEntry => ({ kind: 'arp', key: str(a.ipaddress), value: `${str(a.mac).toLowerCase()} ${vni} ${str(a.vtep)}` })),
      ...bridges.filter((b) => str(b.vxlan) === vni).map((b): DeviceEntry => ({ kind: 'bridgetable', key: `${str(b.mac).toLowerCase()}/${vni}/${str(b.vtep)}`, value: '' })),
      ...routes.filter((r) => ours(str(r.gateway))).map((r): DeviceEntry => ({ kind: 'route', key: `${str(r.network)}/${str(r.netmask)}/${str(r.gateway)}`, value: '' })),
      ...profiles.map((p): DeviceEntry => ({ kind: 'netprofile', key: str(p.name), value: `srcip ${str(p.srcip)}` })),
      ...pbrs.filter((p) => str(p.name).startsWith(`chorus-${vni}-`)).map((p): DeviceEntry => ({ kind: 'nspbr', key: str(p.name), value: `${str(p.srcipval)} ${str(p.destipval)} ${str(p.nexthopval)}` })),
    ];
  }

  /** The NITRO object for an entry (keys and values). */
  private objectOf(e: DeviceEntry): NitroObject {
    const [a = '', b = '', c = ''] = e.key.split('/');
    const v = e.value.split(' ');
    switch (e.kind) {
      case 'vxlan': return { id: Number(a), port: Number(v[1]) };
      case 'nsip': return { ipaddress: a, netmask: v[1] ?? '', type: 'SNIP' };
      case 'vxlan_srcip_binding': return { id: Number(a), srcip: b };
      case 'arp': return { ipaddress: a, mac: v[0] ?? '', vxlan: Number(v[1]), vtep: v[2] ?? '' };
      case 'bridgetable': return { mac: a, vxlan: Number(b), vtep: c };
      case 'route': return { network: a, netmask: b, gateway: c };
      case 'netprofile': return { name: a, srcip: v[1] ?? '' };
      case 'nspbr': return { name: e.key, action: 'ALLOW', srcip: true, srcipop: '=', srcipval: v[0] ?? '', destip: true, destipop: '=', destipval: v[1] ?? '', nexthop: true, nexthopval: v[2] ?? '' };
      default: return {};
    }
  }

  private deletePath(e: DeviceEntry): string {
    const o = this.objectOf(e);
    switch (e.kind) {
      case 'vxlan': return `vxlan/${enc(str(o.id))}`;
      case 'nsip': return `nsip/${enc(str(o.ipaddress))}`;
      case 'vxlan_srcip_binding': return `vxlan_srcip_binding/${enc(str(o.id))}?args=srcip:${encodeURIComponent(str(o.srcip))}`;
      case 'arp': return `arp/${enc(str(o.ipaddress))}`;
      case 'bridgetable': return `bridgetable?args=mac:${encodeURIComponent(str(o.mac))},vxlan:${str(o.vxlan)},vtep:${encodeURIComponent(str(o.vtep))}`;
      case 'route': return `route?args=network:${str(o.network)},netmask:${str(o.netmask)},gateway:${str(o.gateway)}`;
      default: return `${e.kind}/${enc(e.key)}`;
    }
  }

  async apply(changes: readonly DeviceChange[]): Promise<DeviceFailure[]> {
    const failures: DeviceFailure[] = [];
    const group = (op: DeviceChange['op'], kind: string): DeviceChange[] => changes.filter((c) => c.op === op && c.entry.kind === kind);
    for (const kind of [...ADD_ORDER].reverse()) failures.push(...(await this.deleteAll(group('delete', kind))));
    for (const kind of ADD_ORDER) failures.push(...(await this.write('PUT', kind, group('update', kind))));
    for (const kind of ADD_ORDER) failures.push(...(await this.write('POST', kind, group('add', kind))));
    // PBR changes take effect only once applied
    if (changes.some((c) => c.entry.kind === 'nspbr')) {
      const r = await this.client.send('POST', '/nitro/v1/config/nspbrs?action=apply', { nspbrs: {} });
      this.check('POST', 'nspbrs?action=apply', r);
    }
    if (changes.length > failures.length) this.scheduleSave();
    return failures;
  }

  private async deleteAll(changes: readonly DeviceChange[]): Promise<DeviceFailure[]> {
    const failures: DeviceFailure[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < changes.length) {
        const c = changes[next++];
        if (!c) return;
        const r = await this.client.send('DELETE', `/nitro/v1/config/${this.deletePath(c.entry)}`);
        if (r.status === 404 || Number(r.body.errorcode) === 258) continue;
        if (r.status >= 500 || Number(r.body.errorcode) === 1028) this.check('DELETE', c.entry.kind, r);
        if (r.status >= 300) failures.push({ change: c, reason: errorOf('DELETE', `${c.entry.kind} ${c.entry.key}`, r).message });
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, changes.length) }, worker));
    return failures;
  }

  /** Adds (POST) or updates (PUT) a group of one resource: one request, bulk when several. */
  private async write(method: 'POST' | 'PUT', kind: string, changes: readonly DeviceChange[]): Promise<DeviceFailure[]> {
    if (changes.length === 0) return [];
    const objects = changes.map((c) => this.objectOf(c.entry));
    const body = { [kind]: objects.length === 1 ? objects[0] : objects };
    const r = await this.client.send(method, `/nitro/v1/config/${kind}`, body, objects.length > 1 ? { 'X-NITRO-ONERROR': 'continue' } : {});
    const code = Number(r.body.errorcode ?? 0);
    if (r.status === 200 || r.status === 201) return [];
    if (r.status >= 500 || code === 1028 || r.status === 0) this.check(method, kind, r);
    if (r.status === 207 && Array.isArray(r.body.response)) {
      const items = r.body.response as { errorcode?: number; message?: string }[];
      return changes.flatMap((c, i): DeviceFailure[] => {
        const item = items[i];
        const ec = Number(item?.errorcode ?? 0);
        if (ec === 0 || (method === 'POST' && ec === 273)) return [];
        return [{ change: c, reason: `${item?.message ?? 'failed'} (errorcode ${ec})` }];
      });
    }
    if (method === 'POST' && (r.status === 409 || code === 273)) return [];
    return changes.map((c) => ({ change: c, reason: errorOf(method, `${kind} ${c.entry.key}`, r).message }));
  }

  private scheduleSave(): void {
    if (this.o.saveConfig) this.save.schedule();
  }

  async saveNow(): Promise<void> {
    try {
      const r = await this.client.send('POST', '/nitro/v1/config/nsconfig?action=save', { nsconfig: {} });
      this.check('POST', 'nsconfig?action=save', r);
    } catch (err) {
      this.o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'saving the ADC running config failed; will save after the next change');
    }
  }

  async close(): Promise<void> {
    await this.save.flush();
    await this.client.close();
  }
}
