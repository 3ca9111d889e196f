/**
 * The NITRO emulator's configuration store (pure): the resources a VXLAN overlay uses, with the
 * key fields, validation and error codes of shared/reference/citrix-nitro.md, and what a real ADC
 * holds beside what was configured: its NSIP, a default route, a DIRECT (connected) route for each
 * NSIP/SNIP subnet (Gateway/OwnedIP = that address, as `show route` lists it), and entries it
 * learned on a vxlan (DYNAMIC ARP, bridge table). Referential rules as the ADC enforces them: a
 * vxlan still bound or referred to, or a SNIP bound as a vxlan source IP, cannot be removed; a
 * route's gateway must be directly reachable. arp and vxlan_srcip_binding have no update.
 *
 * Unconfirmed (no source found; see docs/citrix.md): the error codes and HTTP status of the
 * referential refusals (257 / 1097 with HTTP 599 here), the read-only route fields that mark a
 * connected route (`direct: true`, `static: false` here), and an arp's `type` (STATIC/DYNAMIC).
 *
 * IPv6 (nsip6, nd6, route6), from the NITRO reference and the official Terraform provider and
 * Ansible collection: nsip6 is keyed by `ipv6address` (address/prefix, as added; GET lists it the
 * same way and answers the type as `iptype`, a list), deleted with `?args=ipv6address:`; nd6 is
 * keyed by `neighbor`, has no update and no GET by name, and is deleted by name with a `vlan` or
 * `vxlan` arg; route6 is keyed by `network` (a prefix) and gateway, deleted with
 * `?args=network:..,gateway:..`. Addresses are compared as addresses (any spelling of one IPv6
 * address is the same key). Unconfirmed: the connected route6 entries' fields (`routetype:
 * CONNECTED` here), the ADC's link-local NSIP6 as listed, whether nd6 takes a global (not
 * link-local) neighbour on a vxlan (the reference describes `neighbor` as link-local; the issue's
 * research says nd6 takes neighbor, mac, vxlan and vtep like arp), and the codes of IPv6 refusals
 * (1097 here, as for IPv4).
 */
import { canonicalIpText, formatIp, formatIpCidr, ipCidrContains, parseIp, parseIpCidr, type IpCidr } from '../../../shared/ip.ts';

export type NitroObject = Record<string, string | number | boolean>;

export class NitroError extends Error {
  readonly errorcode: number;
  readonly httpStatus: number;
  constructor(errorcode: number, httpStatus: number, message: string) {
    super(message);
    this.errorcode = errorcode;
    this.httpStatus = httpStatus;
  }
}

/** NITRO error codes (shared/reference/citrix-nitro.md, "Errors"). */
export const ERR = {
  NOT_PERMITTED: 257, NO_SUCH_RESOURCE: 258, ALREADY_EXISTS: 273, INVALID_ARGUMENT: 278, REQUIRED_ARGUMENT: 1095,
  INVALID_VALUE: 1097, VXLAN_NOT_CONFIGURED: 2614, LOCAL_IP_NOT_SNIP: 1007, SECONDARY: 1028, BULK_FAILED: 1243,
} as const;
/** The status a real ADC gives errors that have no standard HTTP one ("599 Netscaler specific error"). */
export const NITRO_SPECIFIC = 599;

export const ALREADY_EXISTS = (): NitroError => new NitroError(ERR.ALREADY_EXISTS, 409, 'Resource already exists');
export const NO_SUCH_RESOURCE = (): NitroError => new NitroError(ERR.NO_SUCH_RESOURCE, 404, 'No such resource');
const notPermitted = (what: string): NitroError => new NitroError(ERR.NOT_PERMITTED, NITRO_SPECIFIC, `Operation not permitted [${what}]`);

interface ResourceDef {
  readonly keys: readonly string[];
  /** NITRO has an update (PUT) for it. */
  readonly updatable: boolean;
  readonly required: readonly string[];
  readonly defaults?: NitroObject;
  /** Fields answered as strings, as a real ADC does. */
  readonly numeric?: readonly string[];
}

export const RESOURCES: Record<string, ResourceDef> = {
  vxlan: { keys: ['id'], updatable: true, required: ['id'], defaults: { port: 4789 }, numeric: ['id', 'port'] },
  vxlan_srcip_binding: { keys: ['id', 'srcip'], updatable: false, required: ['id', 'srcip'], numeric: ['id'] },
  nsip: { keys: ['ipaddress'], updatable: true, required: ['ipaddress', 'netmask'], defaults: { type: 'SNIP' } },
  route: { keys: ['network', 'netmask', 'gateway'], updatable: true, required: ['network', 'netmask', 'gateway'], defaults: { static: true, direct: false } },
  // an issue's research: "NITRO has no update for arp: a changed MAC or VTEP is a delete then an add"
  arp: { keys: ['ipaddress'], updatable: false, required: ['ipaddress', 'mac'], defaults: { type: 'STATIC' }, numeric: ['vxlan'] },
  bridgetable: { keys: ['mac', 'vxlan', 'vtep'], updatable: true, required: ['mac', 'vxlan', 'vtep'], numeric: ['vxlan'] },
  netprofile: { keys: ['name'], updatable: true, required: ['name'] },
  nspbr: { keys: ['name'], updatable: true, required: ['name', 'action', 'nexthopval'], numeric: ['priority'] },
  // `add policy stringmap` / `bind policy stringmap <name> <key> <value>` (the Terraform provider
  // adds a binding with POST and removes it with `?args=key:<key>`); a binding has no update
  policystringmap: { keys: ['name'], updatable: true, required: ['name'] },
  policystringmap_pattern_binding: { keys: ['name', 'key'], updatable: false, required: ['name', 'key', 'value'] },
  nsip6: { keys: ['ipv6address'], updatable: true, required: ['ipv6address'], defaults: { type: 'SNIP', scope: 'global' } },
  nd6: { keys: ['neighbor'], updatable: false, required: ['neighbor', 'mac'], numeric: ['vxlan'] },
  route6: { keys: ['network', 'gateway'], updatable: true, required: ['network'] },
};

/** A key value as the ADC compares it: case-insensitive text, an IPv6 address or prefix in canonical form. */
const norm = (v: unknown): string => {
  const text = String(v).toLowerCase();
  return !text.includes(':') || /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(text) ? text : canonicalIpText(text);
};

/** `address[/prefix]` of an nsip6 (no prefix: /64, unconfirmed), or undefined when it is not IPv6. */
export function nsip6Cidr(ipv6address: string): string | undefined {
  const [addr = '', prefix = '64'] = ipv6address.split('/');
  try {
    const a = parseIp(addr);
    return a.family === 6 && /^\d{1,3}$/.test(prefix) && Number(prefix) <= 128 ? `${formatIp(a)}/${prefix}` : undefined;
  } catch {
    return undefined;
  }
}

export function keyOf(resource: string, obj: NitroObject): string {
  const def = RESOURCES[resource];
  if (!def) throw new NitroError(278, 400, `Invalid argument [resource ${resource}]`);
  return def.keys.map((k) => norm(obj[k] ?? '')).join('|');
}

/** The ADC's own addresses and routes, present whatever was configured. */
export interface AdcSystem {
  /** The management address (NSIP) and its netmask. */
  readonly nsip?: { readonly ipaddress: string; readonly netmask: string };
  /** The default route's gateway, if any. */
  readonly defaultGateway?: string;
}

const ipNum = (ip: string): number => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0) >>> 0;
const ipText = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '');

export class NitroStore {
  readonly objects = new Map<string, Map<string, NitroObject>>();
  /** What the ADC learned on its vxlans (DYNAMIC arp, bridge table): listed, never configured. */
  private readonly learned = new Map<string, Map<string, NitroObject>>();
  private system: AdcSystem = {};
  pbrApplied = 0;
  saves = 0;
  /** The PBRs as of the last `nspbrs?action=apply` (PBR changes take effect only then). */
  private applied: NitroObject[] = [];

  /** The ADC's own NSIP and default route (the lab's and tests' ADC has them, as every real one does). */
  setSystem(system: AdcSystem): void {
    this.system = system;
  }

  /** An entry the ADC learned itself (an arp is listed as DYNAMIC). */
  learn(resource: 'arp' | 'bridgetable', obj: NitroObject): void {
    let t = this.learned.get(resource);
    if (!t) {
      t = new Map();
      this.learned.set(resource, t);
    }
    t.set(keyOf(resource, obj), { ...obj, ...(resource === 'arp' ? { type: 'DYNAMIC' } : {}) });
  }

  applyPbrs(): void {
    this.pbrApplied++;
    this.applied = this.list('nspbr');
  }

  appliedPbrs(): NitroObject[] {
    return this.applied.map((o) => ({ ...o }));
  }

  table(resource: string): Map<string, NitroObject> {
    let t = this.objects.get(resource);
    if (!t) {
      t = new Map();
      this.objects.set(resource, t);
    }
    return t;
  }

  /** Addresses the ADC owns: its NSIP and every configured SNIP (and their subnets). */
  private ownedAddresses(): { ipaddress: string; netmask: string; type: string }[] {
    const nsip = this.system.nsip ? [{ ...this.system.nsip, type: 'NSIP' }] : [];
    return [...nsip, ...[...this.table('nsip').values()].map((n) => ({ ipaddress: str(n.ipaddress), netmask: str(n.netmask), type: str(n.type) }))];
  }

  /** The subnets of the configured global IPv6 SNIPs (an IPv6 gateway must lie in one). */
  private ipv6Subnets(): IpCidr[] {
    return [...(this.objects.get('nsip6')?.values() ?? [])].flatMap((n) => {
      const cidr = nsip6Cidr(str(n.ipv6address));
      return cidr === undefined || str(n.scope) === 'link-local' ? [] : [parseIpCidr(cidr, false)];
    });
  }

  /** What the ADC itself lists beside the configured objects of a resource. */
  private systemEntries(resource: string): NitroObject[] {
    if (resource === 'nsip') return this.system.nsip ? [{ ...this.system.nsip, type: 'NSIP' }] : [];
    // every ADC has a link-local NSIP6 (its form as listed: unconfirmed)
    if (resource === 'nsip6') return [{ ipv6address: 'fe80::2ad:ff:fe00:1/64', type: 'NSIP', scope: 'link-local' }];
    if (resource === 'route6') return [...new Map(this.ipv6Subnets().map((c) => [formatIpCidr(c), { network: formatIpCidr(c), gateway: '::', routetype: 'CONNECTED' }])).values()];
    if (resource !== 'route') return [...(this.learned.get(resource)?.values() ?? [])];
    const direct = this.ownedAddresses().map((a) => ({ network: ipText((ipNum(a.ipaddress) & ipNum(a.netmask)) >>> 0), netmask: a.netmask, gateway: a.ipaddress, static: false, direct: true }));
    const unique = [...new Map(direct.map((d) => [`${d.network}/${d.netmask}`, d])).values()];
    const gateway = this.system.defaultGateway;
    return [...unique, ...(gateway ? [{ network: '0.0.0.0', netmask: '0.0.0.0', gateway, static: true, direct: false }] : [])];
  }

  /** Every object of a resource as a GET lists it: configured ones and the ADC's own. */
  list(resource: string, match: (o: NitroObject) => boolean = () => true): NitroObject[] {
    if (!RESOURCES[resource]) throw new NitroError(ERR.INVALID_ARGUMENT, 400, `Invalid argument [resource ${resource}]`);
    return [...this.table(resource).values(), ...this.systemEntries(resource)].filter(match).map((o) => ({ ...o }));
  }

  /** Only what was configured (the data plane programs these; the ADC's own entries are its kernel's). */
  configured(resource: string): NitroObject[] {
    return [...this.table(resource).values()].map((o) => ({ ...o }));
  }

  private validate(resource: string, obj: NitroObject): void {
    const def = RESOURCES[resource];
    if (!def) throw new NitroError(ERR.INVALID_ARGUMENT, 400, `Invalid argument [resource ${resource}]`);
    for (const r of def.required) if (obj[r] === undefined || obj[r] === '') throw new NitroError(ERR.REQUIRED_ARGUMENT, 400, `Required argument missing [${r}]`);
    if (resource === 'vxlan') {
      const id = Number(obj.id);
      if (!Number.isInteger(id) || id < 1 || id > 16777215) throw new NitroError(ERR.INVALID_VALUE, 400, `Invalid argument value [id, value ${String(obj.id)}]`);
    }
    if (resource === 'vxlan_srcip_binding') this.validateBinding(obj);
    // binding to a string map that does not exist (code and status unconfirmed: "No such resource")
    if (resource === 'policystringmap_pattern_binding' && !this.table('policystringmap').has(keyOf('policystringmap', { name: obj.name ?? '' }))) throw NO_SUCH_RESOURCE();
    if (['arp', 'bridgetable', 'nd6'].includes(resource)) this.requireVxlan(obj);
    if (resource === 'route' && !this.directlyReachable(str(obj.gateway))) {
      throw new NitroError(ERR.INVALID_VALUE, NITRO_SPECIFIC, `Invalid argument value [gateway, value ${str(obj.gateway)} is not directly reachable]`);
    }
    if (resource === 'nsip6' || resource === 'nd6' || resource === 'route6') this.validateIPv6(resource, obj);
  }

  /** An entry on a vxlan needs that vxlan. */
  private requireVxlan(obj: NitroObject): void {
    if (obj.vxlan !== undefined && !this.table('vxlan').has(keyOf('vxlan', { id: obj.vxlan }))) throw new NitroError(ERR.VXLAN_NOT_CONFIGURED, 400, 'Vxlan is not configured');
  }

  private validateIPv6(resource: string, obj: NitroObject): void {
    const invalid = (field: string, why: string): NitroError => new NitroError(ERR.INVALID_VALUE, 400, `Invalid argument value [${field}, value ${str(obj[field])} ${why}]`);
    const ipv6 = (field: string): boolean => {
      try {
        return parseIp(str(obj[field])).family === 6;
      } catch {
        return false;
      }
    };
    if (resource === 'nsip6' && nsip6Cidr(str(obj.ipv6address)) === undefined) throw invalid('ipv6address', 'is not an IPv6 address[/prefix]');
    if (resource === 'nd6' && !ipv6('neighbor')) throw invalid('neighbor', 'is not an IPv6 address');
    if (resource === 'route6') {
      let network: IpCidr;
      try {
        network = parseIpCidr(str(obj.network), true);
      } catch {
        throw invalid('network', 'is not an IPv6 prefix');
      }
      if (network.family !== 6) throw invalid('network', 'is not an IPv6 prefix');
      if (!ipv6('gateway') || !this.ipv6Subnets().some((c) => ipCidrContains(c, parseIp(str(obj.gateway))))) {
        throw new NitroError(ERR.INVALID_VALUE, NITRO_SPECIFIC, `Invalid argument value [gateway, value ${str(obj.gateway)} is not directly reachable]`);
      }
    }
  }

  private validateBinding(obj: NitroObject): void {
    if (!this.table('vxlan').has(keyOf('vxlan', { id: obj.id ?? '' }))) throw new NitroError(ERR.VXLAN_NOT_CONFIGURED, 400, 'Vxlan is not configured');
    const ip = this.table('nsip').get(keyOf('nsip', { ipaddress: obj.srcip ?? '' }));
    if (!ip || ip.type !== 'SNIP') throw new NitroError(ERR.LOCAL_IP_NOT_SNIP, 400, 'For VXLAN local IP address has to be SNIP');
  }

  /** A gateway lies in the subnet of an address the ADC owns. */
  private directlyReachable(gateway: string): boolean {
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(gateway)) return false;
    const g = ipNum(gateway);
    return this.ownedAddresses().some((a) => ((ipNum(a.ipaddress) & ipNum(a.netmask)) >>> 0) === ((g & ipNum(a.netmask)) >>> 0));
  }

  add(resource: string, input: NitroObject, idempotent = false): void {
    const obj = { ...(RESOURCES[resource]?.defaults ?? {}), ...input };
    this.validate(resource, obj);
    const t = this.table(resource);
    const k = keyOf(resource, obj);
    if (t.has(k) && !idempotent) throw ALREADY_EXISTS();
    t.set(k, obj);
  }

  update(resource: string, input: NitroObject): void {
    if (RESOURCES[resource]?.updatable === false) throw notPermitted(`update of ${resource}: remove and add it instead`);
    const t = this.table(resource);
    const k = keyOf(resource, input);
    const cur = t.get(k);
    if (!cur) throw NO_SUCH_RESOURCE();
    const next = { ...cur, ...input };
    this.validate(resource, next);
    t.set(k, next);
  }

  delete(resource: string, keyValues: NitroObject): void {
    const t = this.table(resource);
    const k = keyOf(resource, keyValues);
    const cur = t.get(k);
    if (!cur) throw NO_SUCH_RESOURCE();
    this.refuseIfInUse(resource, cur);
    t.delete(k);
  }

  private refuseIfInUse(resource: string, obj: NitroObject): void {
    // read without creating the table: a resource never configured stays absent (as listings and snapshots see it)
    const refersTo = (r: string, field: string, value: unknown): boolean => [...(this.objects.get(r)?.values() ?? [])].some((o) => norm(o[field]) === norm(value));
    if (resource === 'vxlan' && (refersTo('vxlan_srcip_binding', 'id', obj.id) || refersTo('arp', 'vxlan', obj.id) || refersTo('nd6', 'vxlan', obj.id) || refersTo('bridgetable', 'vxlan', obj.id))) {
      throw notPermitted(`vxlan ${str(obj.id)} is bound to a source IP or referred to by arp, nd6 or bridgetable entries`);
    }
    if (resource === 'policystringmap' && refersTo('policystringmap_pattern_binding', 'name', obj.name)) {
      throw notPermitted(`policy stringmap ${str(obj.name)} has bound patterns`);
    }
    if (resource === 'nsip' && refersTo('vxlan_srcip_binding', 'srcip', obj.ipaddress)) {
      throw notPermitted(`IP address ${str(obj.ipaddress)} is bound to a vxlan as its source IP`);
    }
  }

  /** An object as a GET returns it: numeric fields as strings. */
  render(resource: string, obj: NitroObject): NitroObject | Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = RESOURCES[resource]?.numeric?.includes(k) ? String(v) : v;
    // GET nsip6 answers the type as `iptype`, a list (the official Terraform provider reads iptype[0])
    if (resource === 'nsip6') {
      out.iptype = [str(obj.type) || 'SNIP'];
      delete out.type;
    }
    // nd6 entries are listed with their ND state (read-only; a static entry's state: unconfirmed)
    if (resource === 'nd6') out.state = 'REACHABLE';
    return out;
  }
}
