/**
 * The iControl REST emulator's configuration store (pure): the BIG-IP objects a VXLAN overlay
 * uses, with the names, references, validation and error messages of
 * ../../../../shared/reference/f5-icontrol.md. Where the reference is silent the choice is marked
 * *unconfirmed*.
 *
 * IPv6 (a dual-stack overlay): self IPs, routes and gateways of either family (a route's gateway
 * of the route's family), and static NDP entries at `net/ndp` (name, ipAddress, macAddress, as
 * `net/arp`; ipAddress cannot be changed). *Unconfirmed*: the field names of `net/ndp` (taken
 * from `net arp` and tmsh's `net ndp ip-address mac-address`), the messages of IPv6 refusals (the
 * IPv4 ones here), and how IPv6 addresses are listed (as given, with `%0` appended by nobody).
 */
import { formatIpCidr, parseIp, parseIpCidr, type IpAddress, type IpCidr } from '../../../shared/ip.ts';

export type F5Obj = Record<string, unknown>;

/** An error as iControl answers it: `{code, message, errorStack, apiError}`. */
export class F5Error extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
  body(): F5Obj {
    return { code: this.status, message: this.message, errorStack: [], apiError: 3 };
  }
}

interface CollectionDef {
  /** What messages call the object. */
  readonly label: string;
  readonly kind: string;
  readonly required: readonly string[];
  /** Fields an update may not change (the device answers 400). */
  readonly immutable: readonly string[];
}

export const COLLECTIONS: Record<string, CollectionDef> = {
  'net/tunnels/vxlan': { label: 'VXLAN profile', kind: 'tm:net:tunnels:vxlan:vxlanstate', required: ['name'], immutable: [] },
  'net/tunnels/tunnel': { label: 'tunnel', kind: 'tm:net:tunnels:tunnel:tunnelstate', required: ['name', 'profile'], immutable: [] },
  'net/self': { label: 'Self IP', kind: 'tm:net:self:selfstate', required: ['name', 'address', 'vlan'], immutable: [] },
  'net/arp': { label: 'static ARP entry', kind: 'tm:net:arp:arpstate', required: ['name', 'ipAddress', 'macAddress'], immutable: ['ipAddress'] },
  'net/route': { label: 'route', kind: 'tm:net:route:routestate', required: ['name', 'network'], immutable: ['network'] },
  'net/ndp': { label: 'static NDP entry', kind: 'tm:net:ndp:ndpstate', required: ['name', 'ipAddress', 'macAddress'], immutable: ['ipAddress'] },
};

export const alreadyExists = (label: string, path: string, partition: string): F5Error => new F5Error(409, `01020066:3: The requested ${label} (${path}) already exists in partition ${partition}.`);
export const notFound = (label: string, path: string): F5Error => new F5Error(404, `01020036:3: The requested ${label} (${path}) was not found.`);

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;
const stripRd = (v: string): string => v.replace(/%\d+/, '');
const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');

function ipv4(v: string, what: string): number {
  const m = IPV4.exec(stripRd(v));
  if (!m || m.slice(1).some((o) => Number(o) > 255)) throw new F5Error(400, `0107176c:3: Invalid IP address: ${what} "${v}"`);
  return m.slice(1).reduce((a, o) => a * 256 + Number(o), 0);
}

/** An address of either family (route domain allowed). */
function ipAny(v: string, what: string): IpAddress {
  try {
    return parseIp(stripRd(v));
  } catch {
    throw new F5Error(400, `0107176c:3: Invalid IP address: ${what} "${v}"`);
  }
}

/** "address/n" of either family (route domain allowed; no prefix: a host) -> the network. */
function cidr(v: string, what: string): IpCidr {
  const text = stripRd(v);
  const family = ipAny(text.split('/')[0] ?? '', what).family;
  try {
    return parseIpCidr(text.includes('/') ? text : `${text}/${family === 4 ? 32 : 128}`, false);
  } catch {
    throw new F5Error(400, `0107176c:3: Invalid netmask for ${what} "${v}"`);
  }
}

/**
 * What the device stores differs from what was sent where it normalises: an allow-service list
 * comes back sorted and without duplicates (*unconfirmed* order; what matters is that a client
 * must compare it as a set), numbers given as numeric strings come back as numbers.
 */
function normalise(o: F5Obj): F5Obj {
  const out = { ...o };
  if (Array.isArray(out.allowService)) out.allowService = [...new Set(out.allowService.map((v) => str(v)))].sort();
  for (const k of ['key', 'mtu', 'port']) if (typeof out[k] === 'string' && /^\d+$/.test(out[k])) out[k] = Number(out[k]);
  return out;
}

export class IControlStore {
  readonly partitions = new Set(['Common']);
  /** VLANs the unit has besides tunnels (a self IP may sit on either). */
  readonly vlans = new Set(['/Common/external']);
  readonly objects = new Map<string, Map<string, F5Obj>>();
  /** FDB records per tunnel full path: MAC -> endpoint (`ip%rd`). */
  readonly records = new Map<string, Map<string, string>>();
  saves = 0;
  syncs = 0;

  constructor() {
    // the built-in parent profile every VXLAN profile derives from
    this.table('net/tunnels/vxlan').set('/Common/vxlan', { name: 'vxlan', partition: 'Common', fullPath: '/Common/vxlan', floodingType: 'multipoint', port: 4789 });
  }

  table(collection: string): Map<string, F5Obj> {
    let t = this.objects.get(collection);
    if (!t) {
      t = new Map();
      this.objects.set(collection, t);
    }
    return t;
  }

  clone(): IControlStore {
    const c = new IControlStore();
    for (const p of this.partitions) c.partitions.add(p);
    for (const v of this.vlans) c.vlans.add(v);
    c.objects.clear();
    for (const [k, t] of this.objects) c.objects.set(k, new Map([...t].map(([p, o]) => [p, { ...o }])));
    for (const [k, r] of this.records) c.records.set(k, new Map(r));
    c.saves = this.saves;
    c.syncs = this.syncs;
    return c;
  }

  /** Takes over another store's content (a committed transaction). */
  adopt(other: IControlStore): void {
    this.objects.clear();
    for (const [k, t] of other.objects) this.objects.set(k, t);
    this.records.clear();
    for (const [k, r] of other.records) this.records.set(k, r);
  }

  private def(collection: string): CollectionDef {
    const d = COLLECTIONS[collection];
    if (!d) throw new F5Error(404, `URI path /mgmt/tm/${collection} not registered.  Please verify URI is supported and wait for /available suffix to be responsive.`);
    return d;
  }

  list(collection: string): F5Obj[] {
    this.def(collection);
    return [...this.table(collection).values()].map((o) => ({ ...o }));
  }

  get(collection: string, path: string): F5Obj {
    const o = this.table(collection).get(path);
    if (!o) throw notFound(this.def(collection).label, path);
    return { ...o };
  }

  create(collection: string, input: F5Obj): F5Obj {
    const d = this.def(collection);
    for (const r of d.required) if (input[r] === undefined || input[r] === '') throw new F5Error(400, `01070734:3: Configuration error: ${d.label} requires "${r}"`);
    const partition = str(input.partition) || 'Common';
    if (!this.partitions.has(partition)) throw notFound('folder', `/${partition}`);
    const path = `/${partition}/${str(input.name)}`;
    if (this.table(collection).has(path)) throw alreadyExists(d.label, path, partition);
    const obj: F5Obj = normalise({ ...input, partition, fullPath: path });
    this.validate(collection, obj);
    this.table(collection).set(path, obj);
    if (collection === 'net/tunnels/tunnel') this.records.set(path, new Map());
    return { ...obj };
  }

  /** PATCH (merge) or PUT (replace) of an existing object. */
  modify(collection: string, path: string, input: F5Obj, replace: boolean): F5Obj {
    const d = this.def(collection);
    const cur = this.table(collection).get(path);
    if (!cur) throw notFound(d.label, path);
    for (const f of d.immutable) {
      if (input[f] !== undefined && stripRd(str(input[f])) !== stripRd(str(cur[f]))) throw new F5Error(400, `01070603:3: The ${d.label} (${path}) ${f} cannot be modified; delete and create it instead.`);
    }
    const keep: F5Obj = { name: cur.name, partition: cur.partition, fullPath: path };
    const next: F5Obj = normalise(replace ? { ...keep, ...Object.fromEntries(d.immutable.map((f) => [f, cur[f]])), ...input, ...keep } : { ...cur, ...input, ...keep });
    this.validate(collection, next);
    this.table(collection).set(path, next);
    return { ...next };
  }

  remove(collection: string, path: string): void {
    const d = this.def(collection);
    if (!this.table(collection).has(path)) throw notFound(d.label, path);
    if (collection === 'net/tunnels/tunnel') {
      const user = [...this.table('net/self').values()].find((s) => s.vlan === path);
      if (user) throw new F5Error(400, `01070712:3: Cannot delete tunnel (${path}): it is referenced by Self IP ${str(user.fullPath)}.`);
      const route = [...this.table('net/route').values()].find((r) => r.tmInterface === path);
      if (route) throw new F5Error(400, `01070712:3: Cannot delete tunnel (${path}): it is referenced by route ${str(route.fullPath)}.`);
      this.records.delete(path);
    }
    if (collection === 'net/tunnels/vxlan') {
      if (path === '/Common/vxlan') throw new F5Error(400, '01070712:3: Cannot delete the built-in profile /Common/vxlan.');
      const user = [...this.table('net/tunnels/tunnel').values()].find((t) => t.profile === path);
      if (user) throw new F5Error(400, `01070712:3: Cannot delete VXLAN profile (${path}): it is referenced by tunnel ${str(user.fullPath)}.`);
    }
    this.table(collection).delete(path);
  }

  private validate(collection: string, o: F5Obj): void {
    const check: Record<string, (o: F5Obj, path: string) => void> = {
      'net/tunnels/vxlan': (x) => this.validateProfile(x),
      'net/tunnels/tunnel': (x, path) => this.validateTunnel(x, path),
      'net/self': (x, path) => this.validateSelf(x, path),
      'net/arp': (x) => {
        ipv4(str(x.ipAddress), 'ip-address');
        if (!MAC.test(str(x.macAddress))) throw new F5Error(400, `01070734:3: Configuration error: invalid mac-address "${str(x.macAddress)}"`);
      },
      'net/route': (x, path) => this.validateRoute(x, path),
      'net/ndp': (x) => {
        if (ipAny(str(x.ipAddress), 'ip-address').family !== 6) throw new F5Error(400, `0107176c:3: Invalid IP address: ip-address "${str(x.ipAddress)}" is not an IPv6 address`);
        if (!MAC.test(str(x.macAddress))) throw new F5Error(400, `01070734:3: Configuration error: invalid mac-address "${str(x.macAddress)}"`);
      },
    };
    check[collection]?.(o, str(o.fullPath));
  }

  private validateProfile(o: F5Obj): void {
    const port = Number(o.port ?? 4789);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new F5Error(400, `01070734:3: Configuration error: invalid port "${str(o.port)}"`);
    if (o.floodingType !== undefined && !['none', 'multipoint', 'replicator', 'multicast'].includes(str(o.floodingType))) throw new F5Error(400, `01070734:3: Configuration error: invalid flooding-type "${str(o.floodingType)}"`);
  }

  private validateTunnel(o: F5Obj, path: string): void {
    if (!this.table('net/tunnels/vxlan').has(str(o.profile))) throw notFound('VXLAN profile', str(o.profile));
    const key = Number(o.key ?? 0);
    if (!Number.isInteger(key) || key < 0 || key > 16777215) throw new F5Error(400, `01070734:3: Configuration error: invalid key "${str(o.key)}"`);
    for (const t of this.table('net/tunnels/tunnel').values()) {
      if (t.fullPath !== path && Number(t.key) === key && key !== 0) throw new F5Error(400, `010716ce:3: Tunnel (${path}) must have a unique VNI (key ${key} is used by ${str(t.fullPath)}).`);
    }
    if (o.localAddress !== undefined && o.localAddress !== 'any') ipAny(str(o.localAddress), 'local-address');
  }

  private validateSelf(o: F5Obj, path: string): void {
    const vlan = str(o.vlan);
    if (!this.vlans.has(vlan) && !this.table('net/tunnels/tunnel').has(vlan)) throw new F5Error(400, `01070523:3: No Vlan association for STATIC Self IP ${path}: ${vlan} was not found.`);
    const net = cidr(str(o.address), 'address');
    for (const s of this.table('net/self').values()) {
      if (s.fullPath === path || s.vlan === vlan) continue;
      if (formatIpCidr(cidr(str(s.address), 'address')) === formatIpCidr(net)) throw new F5Error(400, `01070334:3: Self IP ${path}: the network is defined on two vlans (${str(s.vlan)} and ${vlan}).`);
    }
  }

  private validateRoute(o: F5Obj, path: string): void {
    const network = cidr(str(o.network), 'network');
    const hasGw = o.gw !== undefined && o.gw !== '';
    const hasIf = o.tmInterface !== undefined && o.tmInterface !== '';
    if (hasGw === hasIf) throw new F5Error(400, `01070734:3: Configuration error: route ${path} needs exactly one of gw and tmInterface.`);
    if (hasGw && ipAny(str(o.gw), 'gw').family !== network.family) throw new F5Error(400, `01070734:3: Configuration error: route ${path}: gw "${str(o.gw)}" is not of the network's address family.`);
    if (hasIf && !this.table('net/tunnels/tunnel').has(str(o.tmInterface)) && !this.vlans.has(str(o.tmInterface))) throw notFound('interface', str(o.tmInterface));
  }

  // FDB records of a tunnel

  fdbRecords(tunnelPath: string): Map<string, string> {
    const r = this.records.get(tunnelPath);
    if (!r) throw notFound('tunnel', tunnelPath);
    return r;
  }

  /** Replaces the whole record set (PUT/PATCH of the FDB tunnel with `records`). */
  setFdbRecords(tunnelPath: string, records: unknown): void {
    const r = this.fdbRecords(tunnelPath);
    if (!Array.isArray(records)) throw new F5Error(400, 'Found invalid JSON body in the request.');
    const next = new Map<string, string>();
    for (const rec of records as F5Obj[]) next.set(this.checkRecord(rec).mac, this.checkRecord(rec).endpoint);
    r.clear();
    for (const [k, v] of next) r.set(k, v);
  }

  addFdbRecord(tunnelPath: string, rec: F5Obj): void {
    const r = this.fdbRecords(tunnelPath);
    const { mac, endpoint } = this.checkRecord(rec);
    if (r.has(mac)) throw alreadyExists('FDB record', `${tunnelPath} ${mac}`, tunnelPath.split('/')[1] ?? 'Common');
    r.set(mac, endpoint);
  }

  deleteFdbRecord(tunnelPath: string, mac: string): void {
    if (!this.fdbRecords(tunnelPath).delete(mac.toLowerCase())) throw notFound('FDB record', `${tunnelPath} ${mac}`);
  }

  private checkRecord(rec: F5Obj): { mac: string; endpoint: string } {
    const mac = str(rec.name).toLowerCase();
    if (!MAC.test(mac)) throw new F5Error(400, `01070734:3: Configuration error: invalid FDB record name (MAC) "${str(rec.name)}"`);
    const endpoint = str(rec.endpoint);
    ipAny(endpoint, 'endpoint');
    return { mac, endpoint: endpoint.includes('%') ? endpoint : `${endpoint}%0` };
  }
}
