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
 */

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
};

const norm = (v: unknown): string => String(v).toLowerCase();

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

  /** What the ADC itself lists beside the configured objects of a resource. */
  private systemEntries(resource: string): NitroObject[] {
    if (resource === 'nsip') return this.system.nsip ? [{ ...this.system.nsip, type: 'NSIP' }] : [];
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
    if ((resource === 'arp' || resource === 'bridgetable') && obj.vxlan !== undefined && !this.table('vxlan').has(keyOf('vxlan', { id: obj.vxlan }))) {
      throw new NitroError(ERR.VXLAN_NOT_CONFIGURED, 400, 'Vxlan is not configured');
    }
    if (resource === 'route' && !this.directlyReachable(str(obj.gateway))) {
      throw new NitroError(ERR.INVALID_VALUE, NITRO_SPECIFIC, `Invalid argument value [gateway, value ${str(obj.gateway)} is not directly reachable]`);
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
    const refersTo = (r: string, field: string, value: unknown): boolean => [...this.table(r).values()].some((o) => norm(o[field]) === norm(value));
    if (resource === 'vxlan' && (refersTo('vxlan_srcip_binding', 'id', obj.id) || refersTo('arp', 'vxlan', obj.id) || refersTo('bridgetable', 'vxlan', obj.id))) {
      throw notPermitted(`vxlan ${str(obj.id)} is bound to a source IP or referred to by arp or bridgetable entries`);
    }
    if (resource === 'policystringmap' && refersTo('policystringmap_pattern_binding', 'name', obj.name)) {
      throw notPermitted(`policy stringmap ${str(obj.name)} has bound patterns`);
    }
    if (resource === 'nsip' && refersTo('vxlan_srcip_binding', 'srcip', obj.ipaddress)) {
      throw notPermitted(`IP address ${str(obj.ipaddress)} is bound to a vxlan as its source IP`);
    }
  }

  /** An object as a GET returns it: numeric fields as strings. */
  render(resource: string, obj: NitroObject): NitroObject {
    const out: NitroObject = {};
    for (const [k, v] of Object.entries(obj)) out[k] = RESOURCES[resource]?.numeric?.includes(k) ? String(v) : v;
    return out;
  }
}
