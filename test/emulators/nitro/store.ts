/**
 * The NITRO emulator's configuration store (pure): the resources a VXLAN overlay uses, with the
 * key fields, validation and error codes of ../../../../shared/reference/citrix-nitro.md.
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

export const ALREADY_EXISTS = (): NitroError => new NitroError(273, 409, 'Resource already exists');
export const NO_SUCH_RESOURCE = (): NitroError => new NitroError(258, 404, 'No such resource');

interface ResourceDef {
  readonly keys: readonly string[];
  readonly required: readonly string[];
  readonly defaults?: NitroObject;
  /** Fields answered as strings, as a real ADC does. */
  readonly numeric?: readonly string[];
}

export const RESOURCES: Record<string, ResourceDef> = {
  vxlan: { keys: ['id'], required: ['id'], defaults: { port: 4789 }, numeric: ['id', 'port'] },
  vxlan_srcip_binding: { keys: ['id', 'srcip'], required: ['id', 'srcip'], numeric: ['id'] },
  nsip: { keys: ['ipaddress'], required: ['ipaddress', 'netmask'], defaults: { type: 'SNIP' } },
  route: { keys: ['network', 'netmask', 'gateway'], required: ['network', 'netmask', 'gateway'] },
  arp: { keys: ['ipaddress'], required: ['ipaddress', 'mac'], numeric: ['vxlan'] },
  bridgetable: { keys: ['mac', 'vxlan', 'vtep'], required: ['mac', 'vxlan', 'vtep'], numeric: ['vxlan'] },
  netprofile: { keys: ['name'], required: ['name'] },
  nspbr: { keys: ['name'], required: ['name', 'action', 'nexthopval'], numeric: ['priority'] },
};

const norm = (v: unknown): string => String(v).toLowerCase();

export function keyOf(resource: string, obj: NitroObject): string {
  const def = RESOURCES[resource];
  if (!def) throw new NitroError(278, 400, `Invalid argument [resource ${resource}]`);
  return def.keys.map((k) => norm(obj[k] ?? '')).join('|');
}

export class NitroStore {
  readonly objects = new Map<string, Map<string, NitroObject>>();
  pbrApplied = 0;
  saves = 0;
  /** The PBRs as of the last `nspbrs?action=apply` (PBR changes take effect only then). */
  private applied: NitroObject[] = [];

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

  list(resource: string, match: (o: NitroObject) => boolean = () => true): NitroObject[] {
    if (!RESOURCES[resource]) throw new NitroError(278, 400, `Invalid argument [resource ${resource}]`);
    return [...this.table(resource).values()].filter(match).map((o) => ({ ...o }));
  }

  private validate(resource: string, obj: NitroObject): void {
    const def = RESOURCES[resource];
    if (!def) throw new NitroError(278, 400, `Invalid argument [resource ${resource}]`);
    for (const r of def.required) if (obj[r] === undefined || obj[r] === '') throw new NitroError(1095, 400, `Required argument missing [${r}]`);
    if (resource === 'vxlan') {
      const id = Number(obj.id);
      if (!Number.isInteger(id) || id < 1 || id > 16777215) throw new NitroError(1097, 400, `Invalid argument value [id, value ${String(obj.id)}]`);
    }
    if (resource === 'vxlan_srcip_binding') {
      if (!this.table('vxlan').has(keyOf('vxlan', { id: obj.id ?? '' }))) throw new NitroError(2614, 400, 'Vxlan is not configured');
      const ip = this.table('nsip').get(keyOf('nsip', { ipaddress: obj.srcip ?? '' }));
      if (!ip || ip.type !== 'SNIP') throw new NitroError(1007, 400, 'For VXLAN local IP address has to be SNIP');
    }
    if ((resource === 'arp' || resource === 'bridgetable') && obj.vxlan !== undefined && !this.table('vxlan').has(keyOf('vxlan', { id: obj.vxlan }))) {
      throw new NitroError(2614, 400, 'Vxlan is not configured');
    }
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
    if (!t.delete(k)) throw NO_SUCH_RESOURCE();
    if (resource === 'vxlan') {
      // the ADC refuses this while bindings exist; keep it simple: drop the dependent binding
      for (const [bk, b] of this.table('vxlan_srcip_binding')) if (norm(b.id) === norm(keyValues.id)) this.table('vxlan_srcip_binding').delete(bk);
    }
  }

  /** An object as a GET returns it: numeric fields as strings. */
  render(resource: string, obj: NitroObject): NitroObject {
    const out: NitroObject = {};
    for (const [k, v] of Object.entries(obj)) out[k] = RESOURCES[resource]?.numeric?.includes(k) ? String(v) : v;
    return out;
  }
}
