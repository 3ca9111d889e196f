/**
 * The coordinator's settings: one table of flags (with environment names, including the older
 * Citrix node controller's NETWORK, VNID, VXLAN_PORT, REMOTE_VTEPIP, NS_IP, NS_USER,
 * NS_PASSWORD), an optional YAML file, and one validator whose errors name the setting, the
 * value and the fix. Credentials come only from a mounted Secret (--credentials-dir) or the
 * environment, never from the command line or the settings file.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_NAMESPACE, type InstanceNames } from '../shared/keys.ts';
import { ConfigError, INSTANCE_SPEC, choiceSetting, instanceNamesFrom, cidrSetting, durationMsSetting, intSetting, optionalInt, type SettingSpec, type Settings } from '../shared/cli-args.ts';
import { cidrContains, parseCidr, parseIPv4, usableHostRange } from '../shared/ipv4.ts';
import { formatIp, ipCidrContains, ipCidrSize, ipCidrsOverlap, parseIp, parseIpCidr, type IpCidr } from '../shared/ip.ts';
import { parseLabelSelector, SelectorError } from '../shared/selectors.ts';
import type { OverlayConfig } from './plan.ts';
import { ROUTING_MODES, type RoutingPolicy } from './routing.ts';
import { CLUSTER_ID_RE } from './cluster-identity.ts';
import { POD_CIDR_SOURCES, type PodCidrSource } from './podcidr-sources.ts';

export const COORDINATOR_SPECS: SettingSpec[] = [
  { flag: 'config', env: ['CHORUS_CONFIG'], help: 'YAML file of settings (keys are these flag names); flags and environment win over it' },
  { flag: 'overlay-network', env: ['CHORUS_OVERLAY_NETWORK', 'NETWORK'], help: 'overlay subnet (CIDR) shared by the device and every node; no node, pod or service may use it', required: true },
  { flag: 'overlay-network-ipv6', env: ['CHORUS_OVERLAY_NETWORK_IPV6'], help: "dual-stack overlay: the IPv6 overlay subnet (CIDR) beside --overlay-network, at least as large; every node and the device get the IPv6 address at the same offset as their IPv4 one, and IPv6 pod CIDRs are routed through it (see docs/install.md). Default: none (IPv4 only; IPv6 pod CIDRs are not routed)" },
  { flag: 'device-vtep', env: ['CHORUS_DEVICE_VTEPS', 'REMOTE_VTEPIP'], help: "the device's VTEP (underlay) address(es), comma-separated: IPv4, or IPv6 for an IPv6 underlay (all of one family; the nodes' InternalIPs of that family are their VTEPs)", required: true },
  { flag: 'vni', env: ['CHORUS_VNI', 'VNID'], help: 'VXLAN network identifier, 1..16777215 (the default stays clear of Calico (4096, 4097), flannel (1) and Cilium (2 for VTEPs; identities up to 65535 on its own port): see docs/install.md; an install that published another VNI keeps it unless this is set)', default: '100000' },
  { flag: 'port', env: ['CHORUS_VXLAN_PORT', 'VXLAN_PORT'], help: 'VXLAN UDP port', default: '4789' },
  { flag: 'mtu', env: ['CHORUS_MTU'], help: 'overlay MTU, 576..9000; default: each end uses its underlay MTU minus 50' },
  { flag: 'routing', env: ['CHORUS_ROUTING'], help: "how the device reaches each node's pods: vxlan (through the overlay), direct (a route via the node's own address, no tunnel: the device shares the nodes' subnet), auto (direct for nodes in --direct-subnets, VXLAN for the rest); see docs/routing.md", default: 'vxlan' },
  { flag: 'direct-subnets', env: ['CHORUS_DIRECT_SUBNETS'], help: "with --routing auto: the underlay subnet(s) the device is attached to, comma-separated CIDRs; nodes whose InternalIP lies in one are routed directly. Not given: a Citrix ADC or BIG-IP is asked for the subnet of its VTEP address (the SNIP or self IP holding it); the Linux device needs it given" },
  { flag: 'device-type', env: ['CHORUS_DEVICE_TYPE'], help: 'linux (a box running `gateway`), citrix (Citrix ADC over NITRO) or f5 (BIG-IP over iControl REST)', default: 'linux' },
  { flag: 'device-address', env: ['CHORUS_DEVICE_ADDRESS', 'NS_IP'], help: "the device's management API address, host or https://host:port (citrix: the NSIP of a standalone ADC, or of the primary, see docs/citrix.md; f5: one unit, or both units of an HA pair comma-separated, see docs/f5.md)" },
  { flag: 'ca-file', env: ['CHORUS_DEVICE_CA_FILE'], help: "CA bundle that signed the device's API certificate (default: the system CAs)" },
  { flag: 'insecure-skip-tls-verify', env: ['CHORUS_DEVICE_INSECURE_SKIP_TLS_VERIFY'], help: "accept any certificate from the device (logged as a warning at start; use --ca-file instead)", bool: true },
  { flag: 'citrix-auth', env: ['CHORUS_CITRIX_AUTH'], help: 'session (login once, NITRO_AUTH_TOKEN) or header (X-NITRO-USER/PASS on every request)', default: 'session' },
  { flag: 'citrix-neighbours', env: ['CHORUS_CITRIX_NEIGHBOURS'], help: "how node MACs reach the ADC: arp (static arp per node), bridgetable (flood entry per node VTEP) or both", default: 'arp' },
  { flag: 'citrix-routing', env: ['CHORUS_CITRIX_ROUTING'], help: 'route: a route per pod CIDR; pbr: a policy-based route per pod CIDR, applied with nspbrs?action=apply (several clusters behind one ADC)', default: 'route' },
  { flag: 'citrix-netprofile', env: ['CHORUS_CITRIX_NETPROFILE'], help: 'create a netprofile of this name whose source IP is the overlay SNIP (for services to use toward pods)' },
  { flag: 'f5-partition', env: ['CHORUS_F5_PARTITION'], help: 'BIG-IP partition that holds the overlay objects (it must exist)', default: 'Common' },
  { flag: 'f5-auth', env: ['CHORUS_F5_AUTH'], help: 'token (login once, X-F5-Auth-Token, renewed before expiry) or basic (HTTP Basic on every request; local users only)', default: 'token' },
  { flag: 'f5-routing', env: ['CHORUS_F5_ROUTING'], help: "gateway: route each pod CIDR via the node's overlay IP, plus a static ARP entry for it; interface: route via the tunnel (flooding multipoint; the nodes must answer ARP for pod addresses)", default: 'gateway' },
  { flag: 'f5-name-prefix', env: ['CHORUS_F5_NAME_PREFIX'], help: "prefix of every object's name, unique per cluster on a shared BIG-IP (default chorus-<vni>, or chorus-<instance>-<vni>)" },
  { flag: 'f5-self-allow-service', env: ['CHORUS_F5_SELF_ALLOW_SERVICE'], help: 'allow-service of the overlay self IP: none, default, or protocol:port,...', default: 'none' },
  { flag: 'f5-traffic-group', env: ['CHORUS_F5_TRAFFIC_GROUP'], help: 'traffic group of the overlay self IP: /Common/traffic-group-local-only on a standalone unit, a floating group (/Common/traffic-group-1) on an HA pair', default: '/Common/traffic-group-local-only' },
  { flag: 'f5-sync-group', env: ['CHORUS_F5_SYNC_GROUP'], help: 'device group to run `config-sync to-group` on after saving (HA pairs without automatic sync)' },
  { flag: 'save-config', env: ['CHORUS_SAVE_CONFIG'], help: "on: save the device's running config after changes (debounced); off: never", default: 'on' },
  { flag: 'credentials-dir', env: ['CHORUS_CREDENTIALS_DIR'], help: 'directory of a mounted Secret with files `username` and `password` (citrix, f5); or set CHORUS_DEVICE_USERNAME/CHORUS_DEVICE_PASSWORD (NS_USER/NS_PASSWORD)' },
  { flag: 'cluster-id', env: ['CHORUS_CLUSTER_ID'], help: "this cluster's identity on a shared device: written into the ownership marker of every device object, so several clusters can share one device; letters, digits, . _ - (at most 63); default: the UID of the kube-system namespace (needed when the API cannot be read, as in the device-teardown Job)" },
  { flag: 'pod-cidr-source', env: ['CHORUS_POD_CIDR_SOURCE'], help: 'where pod CIDRs come from: auto, node (spec.podCIDRs), calico (IPAM blocks), cilium (CiliumNode)', default: 'auto' },
  { flag: 'node-selector', env: ['CHORUS_NODE_SELECTOR'], help: 'label selector of the Nodes that join the overlay (default: all)' },
  { flag: 'service-cidr', env: ['CHORUS_SERVICE_CIDR'], help: "the cluster's service CIDR(s), comma-separated: an overlay network overlapping one is refused at start, a node whose pod CIDR overlaps one is left out" },
  { flag: 'pod-cidr-ranges', env: ['CHORUS_POD_CIDR_RANGES'], help: "the ranges pod CIDRs come from (the cluster CIDR(s)), comma-separated: a node with a pod CIDR outside them is left out (default: not checked)" },
  { flag: 'namespace', env: ['CHORUS_NAMESPACE', 'POD_NAMESPACE'], help: 'namespace for the tables and the Lease', default: DEFAULT_NAMESPACE },
  INSTANCE_SPEC,
  { flag: 'kubeconfig', env: ['KUBECONFIG'], help: 'kubeconfig file; in a pod the service account is used' },
  { flag: 'identity', env: ['POD_NAME'], help: 'leader-election identity (default: <hostname>-<pid>)' },
  { flag: 'health-listen', env: ['CHORUS_HEALTH_LISTEN'], help: 'address:port of /healthz, /livez, /readyz, /metrics, /status', default: '0.0.0.0:9642' },
  { flag: 'resync', env: ['CHORUS_RESYNC'], help: 'full reconcile of the tables', default: '5m' },
  { flag: 'underlay-grace', env: ['CHORUS_UNDERLAY_GRACE'], help: 'how long a node that lost its InternalIP keeps its last one (and its overlay address and device entries) before it is left out', default: '2m' },
  { flag: 'device-resync', env: ['CHORUS_DEVICE_RESYNC'], help: 'full reconcile of the device (repairs changes made by hand)', default: '3m' },
  { flag: 'pass-deadline', env: ['CHORUS_PASS_DEADLINE'], help: 'a reconcile pass (tables or device) running longer than this is wedged: the leader stops renewing its Lease (a standby takes over) and /livez answers 503 (the kubelet restarts it)', default: '5m' },
  { flag: 'lease-duration', env: ['CHORUS_LEASE_DURATION'], help: 'leader lease duration', default: '15s' },
  { flag: 'renew-deadline', env: ['CHORUS_RENEW_DEADLINE'], help: 'a leader that cannot renew within this stops writing', default: '10s' },
  { flag: 'retry-period', env: ['CHORUS_RETRY_PERIOD'], help: 'interval of lease renew / acquire attempts', default: '2s' },
  { flag: 'log-level', env: ['CHORUS_LOG_LEVEL'], help: 'trace, debug, info, warn or error', default: 'info' },
];

export interface DeviceCredentials { readonly username: string; readonly password: string }

/** BIG-IP settings (objects.ts's layout plus how to reach the unit(s)). */
export interface F5Access {
  readonly partition: string;
  readonly auth: 'token' | 'basic';
  readonly routing: 'gateway' | 'interface';
  readonly namePrefix: string;
  readonly allowService: string;
  readonly trafficGroup: string;
  readonly syncGroup?: string;
}

export interface DeviceAccess {
  readonly baseURL: string;
  /** Every management address given (F5 HA pairs: both units); baseURL is the first. */
  readonly baseURLs: readonly string[];
  readonly f5?: F5Access;
  readonly caFile?: string;
  readonly insecureSkipVerify: boolean;
  readonly citrixAuth: 'session' | 'header';
  readonly citrixNeighbours: 'arp' | 'bridgetable' | 'both';
  readonly citrixNetprofile?: string;
  readonly citrixRouting: 'route' | 'pbr';
  readonly saveConfig: boolean;
}

export interface CoordinatorConfig {
  readonly overlay: OverlayConfig;
  /** Which nodes the device reaches directly instead of through the overlay (--routing, --direct-subnets). */
  readonly routing: RoutingPolicy;
  readonly deviceType: 'linux' | 'citrix' | 'f5';
  readonly deviceAddress?: string;
  readonly credentials?: DeviceCredentials;
  readonly device?: DeviceAccess;
  readonly podCidrSource: PodCidrSource | 'auto';
  readonly nodeSelector?: string;
  readonly namespace: string;
  /** This instance's names (--instance; the default instance's without it). */
  readonly names: InstanceNames;
  readonly identity: string;
  /** Service CIDRs and allowed pod ranges (shared/pod-cidrs.ts checks every node's pod CIDRs against them). */
  readonly serviceCIDRs: readonly string[];
  readonly podRanges?: readonly string[];
  /** --cluster-id when given; else derived from the cluster at start (cluster-identity.ts). */
  readonly clusterId?: string;
  readonly resyncMs: number;
  readonly underlayGraceMs: number;
  readonly passDeadlineMs: number;
  readonly deviceResyncMs: number;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

function credentials(settings: Settings, env: NodeJS.ProcessEnv): DeviceCredentials | undefined {
  const dir = settings['credentials-dir'];
  if (dir) {
    const read = (f: string): string => {
      try {
        return readFileSync(join(dir, f), 'utf8').trim();
      } catch {
        throw new ConfigError(`--credentials-dir ${dir}: cannot read "${f}"; mount the device Secret there with keys username and password`);
      }
    };
    return { username: read('username'), password: read('password') };
  }
  const username = env.CHORUS_DEVICE_USERNAME ?? env.NS_USER;
  const password = env.CHORUS_DEVICE_PASSWORD ?? env.NS_PASSWORD;
  return username && password ? { username, password } : undefined;
}

/** --overlay-network-ipv6: an IPv6 network with room for every IPv4 overlay address's twin, clear of the IPv6 service CIDRs. */
function ipv6OverlayFrom(settings: Settings, v4: IpCidr, services: readonly { raw: string; cidr: IpCidr }[]): string | undefined {
  const raw = settings['overlay-network-ipv6'];
  if (raw === undefined) return undefined;
  let net;
  try {
    net = parseIpCidr(raw);
  } catch (err) {
    throw new ConfigError(`--overlay-network-ipv6=${JSON.stringify(raw)} is invalid: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (net.family !== 6) throw new ConfigError(`--overlay-network-ipv6=${JSON.stringify(raw)} is not an IPv6 network (the IPv4 one is --overlay-network)`);
  if (ipCidrSize(net) < ipCidrSize(v4)) throw new ConfigError(`--overlay-network-ipv6 ${raw} is smaller than --overlay-network ${settings['overlay-network'] ?? ''}: each IPv4 overlay address has its IPv6 twin at the same offset, so the prefix must be at most /${96 + v4.prefix} (e.g. /64)`);
  const svc = services.find((x) => ipCidrsOverlap(net, x.cidr));
  if (svc) throw new ConfigError(`--overlay-network-ipv6 ${raw} overlaps the service CIDR ${svc.raw}; pick a subnet no node, pod or service uses`);
  return raw;
}

/** --service-cidr, both families. */
function serviceCidrsFrom(settings: Settings): { raw: string; cidr: IpCidr }[] {
  return (settings['service-cidr'] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '').map((raw) => {
    try {
      return { raw, cidr: parseIpCidr(raw, false) };
    } catch (err) {
      throw new ConfigError(`--service-cidr ${JSON.stringify(raw)} is invalid: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
}

function overlayFrom(settings: Settings): OverlayConfig {
  const overlayNetwork = cidrSetting(settings, 'overlay-network');
  const deviceVTEPs = vtepsFrom(settings);
  const net = parseCidr(overlayNetwork);
  for (const v of deviceVTEPs) {
    if (!v.includes(':') && cidrContains(net, parseIPv4(v))) throw new ConfigError(`--device-vtep ${v} is inside --overlay-network ${overlayNetwork}: the VTEP is an underlay address; pick an overlay network that does not contain it`);
  }
  if (usableHostRange(net).count <= deviceVTEPs.length) throw new ConfigError(`--overlay-network ${overlayNetwork} is too small: it must hold ${deviceVTEPs.length} device address(es) and at least one node; use a shorter prefix`);
  const v4 = parseIpCidr(overlayNetwork);
  const services = serviceCidrsFrom(settings);
  const svc = services.find((x) => ipCidrsOverlap(v4, x.cidr));
  if (svc) throw new ConfigError(`--overlay-network ${overlayNetwork} overlaps the service CIDR ${svc.raw}; pick a subnet no node, pod or service uses`);
  const overlayNetworkIPv6 = ipv6OverlayFrom(settings, v4, services);
  const vtepInside = overlayNetworkIPv6 === undefined ? undefined : deviceVTEPs.find((v) => v.includes(':') && ipCidrContains(parseIpCidr(overlayNetworkIPv6), parseIp(v)));
  if (vtepInside !== undefined) throw new ConfigError(`--device-vtep ${vtepInside} is inside --overlay-network-ipv6 ${overlayNetworkIPv6 ?? ''}: the VTEP is an underlay address; pick an IPv6 overlay network that does not contain it`);
  const mtu = optionalInt(settings, 'mtu', 576, 9000);
  return { vni: intSetting(settings, 'vni', 1, 16777215), port: intSetting(settings, 'port', 1, 65535), overlayNetwork, deviceVTEPs, ...(mtu !== undefined ? { mtu } : {}), ...(overlayNetworkIPv6 !== undefined ? { overlayNetworkIPv6 } : {}) };
}

/**
 * --device-vtep: addresses of one family, IPv6 in canonical text. A mixed underlay (VTEPs of both
 * families) is refused: every node and the device would need a VTEP of each family, and no device
 * driver here programs both at once.
 */
function vtepsFrom(settings: Settings): string[] {
  const list = (settings['device-vtep'] ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (list.length === 0) throw new ConfigError('--device-vtep is empty: give one or more IPv4 (or IPv6) addresses, comma-separated');
  const parsed = list.map((raw) => {
    try {
      return parseIp(raw);
    } catch (err) {
      throw new ConfigError(`--device-vtep: "${raw}" is not an IP address (${err instanceof Error ? err.message : String(err)})`);
    }
  });
  if (new Set(parsed.map((a) => a.family)).size > 1) throw new ConfigError(`--device-vtep ${list.join(',')} mixes IPv4 and IPv6: a mixed underlay is not supported; give the VTEPs of one family (the nodes' InternalIPs of that family are their VTEPs)`);
  return parsed.map(formatIp);
}

/** https://host[:port] from a host, host:port or URL; refuses plain http (credentials cross it). */
export function deviceBaseURL(address: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(address) ? address : `https://${address}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ConfigError(`--device-address ${JSON.stringify(address)} is not a host or https URL`);
  }
  if (url.protocol !== 'https:') throw new ConfigError(`--device-address ${address}: the device API must be reached over https (credentials cross it)`);
  return `https://${url.host}`;
}

function deviceFrom(settings: Settings, env: NodeJS.ProcessEnv): Pick<CoordinatorConfig, 'deviceType' | 'deviceAddress' | 'credentials' | 'device'> {
  const deviceType = choiceSetting(settings, 'device-type', ['linux', 'citrix', 'f5'] as const);
  const creds = credentials(settings, env);
  if (deviceType === 'linux') return { deviceType };
  const address = settings['device-address'];
  if (!address) throw new ConfigError(`--device-type ${deviceType} needs --device-address (or NS_IP): the device's management address`);
  if (!creds) throw new ConfigError(`--device-type ${deviceType} needs credentials: mount the Secret and pass --credentials-dir, or set CHORUS_DEVICE_USERNAME and CHORUS_DEVICE_PASSWORD`);
  const baseURLs = address.split(',').map((a) => a.trim()).filter((a) => a !== '').map(deviceBaseURL);
  if (deviceType === 'citrix' && baseURLs.length > 1) throw new ConfigError(`--device-address ${address}: give one address for a Citrix ADC (the NSIP of the primary, or a SNIP with management access that moves with it)`);
  const netprofile = settings['citrix-netprofile'];
  const f5 = deviceType === 'f5' ? f5From(settings, intSetting(settings, 'vni', 1, 16777215), instanceNamesFrom(settings).instance) : undefined;
  const device: DeviceAccess = {
    baseURL: baseURLs[0] ?? deviceBaseURL(address), baseURLs,
    ...(f5 ? { f5 } : {}),
    ...(settings['ca-file'] ? { caFile: settings['ca-file'] } : {}),
    insecureSkipVerify: settings['insecure-skip-tls-verify'] === 'true',
    citrixAuth: choiceSetting(settings, 'citrix-auth', ['session', 'header'] as const),
    citrixNeighbours: choiceSetting(settings, 'citrix-neighbours', ['arp', 'bridgetable', 'both'] as const),
    ...(netprofile ? { citrixNetprofile: netprofile } : {}),
    citrixRouting: choiceSetting(settings, 'citrix-routing', ['route', 'pbr'] as const),
    saveConfig: choiceSetting(settings, 'save-config', ['on', 'off'] as const) === 'on',
  };
  return { deviceType, deviceAddress: address, credentials: creds, device };
}

const F5_NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;

function f5From(settings: Settings, vni: number, instance: string): F5Access {
  const partition = settings['f5-partition'] ?? 'Common';
  if (!F5_NAME.test(partition)) throw new ConfigError(`--f5-partition ${JSON.stringify(partition)} is not a BIG-IP partition name (letters, digits, . _ -, starting with a letter)`);
  const namePrefix = settings['f5-name-prefix'] ?? (instance ? `chorus-${instance}-${vni}` : `chorus-${vni}`);
  if (!F5_NAME.test(namePrefix) || namePrefix.length > 40) throw new ConfigError(`--f5-name-prefix ${JSON.stringify(namePrefix)} must be a BIG-IP name of at most 40 characters (letters, digits, . _ -, starting with a letter)`);
  const allowService = (settings['f5-self-allow-service'] ?? 'none').replace(/\s+/g, '');
  if (!/^(none|default|all|[a-z0-9]+:[0-9]+(,[a-z0-9]+:[0-9]+)*)$/.test(allowService)) throw new ConfigError(`--f5-self-allow-service ${JSON.stringify(allowService)} must be none, default, all or protocol:port[,protocol:port...] (e.g. tcp:443)`);
  const trafficGroup = settings['f5-traffic-group'] ?? '/Common/traffic-group-local-only';
  if (!/^\/[A-Za-z][\w.-]*\/[\w.-]+$/.test(trafficGroup)) throw new ConfigError(`--f5-traffic-group ${JSON.stringify(trafficGroup)} must be a full path such as /Common/traffic-group-1`);
  const syncGroup = settings['f5-sync-group'];
  return {
    partition, namePrefix, allowService, trafficGroup,
    auth: choiceSetting(settings, 'f5-auth', ['token', 'basic'] as const),
    routing: choiceSetting(settings, 'f5-routing', ['gateway', 'interface'] as const),
    ...(syncGroup ? { syncGroup } : {}),
  };
}

/** A comma-separated list of CIDRs (host bits allowed), or undefined when the setting is empty. */
function cidrListSetting(settings: Settings, flag: string): string[] | undefined {
  const items = (settings[flag] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) return undefined;
  for (const raw of items) {
    try {
      parseIpCidr(raw, false);
    } catch (err) {
      throw new ConfigError(`--${flag} ${JSON.stringify(raw)} is invalid: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return items;
}

function nodeSelectorFrom(settings: Settings): string | undefined {
  const selector = settings['node-selector'];
  if (!selector) return undefined;
  try {
    parseLabelSelector(selector);
  } catch (err) {
    if (err instanceof SelectorError) throw new ConfigError(`--node-selector ${JSON.stringify(selector)} is invalid: ${err.message}`);
    throw err;
  }
  return selector;
}

function leaseTimings(settings: Settings): Pick<CoordinatorConfig, 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'> {
  const leaseDurationMs = durationMsSetting(settings, 'lease-duration');
  const renewDeadlineMs = durationMsSetting(settings, 'renew-deadline');
  const retryPeriodMs = durationMsSetting(settings, 'retry-period');
  if (renewDeadlineMs >= leaseDurationMs) throw new ConfigError(`--renew-deadline (${settings['renew-deadline'] ?? ''}) must be shorter than --lease-duration (${settings['lease-duration'] ?? ''})`);
  if (retryPeriodMs >= renewDeadlineMs) throw new ConfigError(`--retry-period (${settings['retry-period'] ?? ''}) must be shorter than --renew-deadline (${settings['renew-deadline'] ?? ''})`);
  return { leaseDurationMs, renewDeadlineMs, retryPeriodMs };
}

function routingFrom(settings: Settings, overlay: OverlayConfig, deviceType: CoordinatorConfig['deviceType']): RoutingPolicy {
  const mode = choiceSetting(settings, 'routing', ROUTING_MODES);
  const subnets = cidrListSetting(settings, 'direct-subnets') ?? [];
  if (mode !== 'vxlan' && overlay.deviceVTEPs.some((v) => v.includes(':'))) throw new ConfigError(`--routing ${mode} with an IPv6 underlay (--device-vtep ${overlay.deviceVTEPs.join(',')}): direct routing follows IPv4 InternalIPs only; use --routing vxlan`);
  if (mode === 'auto' && subnets.length === 0) {
    // Citrix and F5 say which subnet their VTEP address sits in; the Linux device has no API to ask
    if (deviceType !== 'linux') return { mode, directSubnets: [], fromDevice: true, pending: true };
    throw new ConfigError("--routing auto with --device-type linux needs --direct-subnets: the underlay subnet(s) the gateway is attached to (e.g. its VTEP's subnet, 10.0.0.0/24); nodes there are routed directly, the others through VXLAN. (A Citrix ADC or BIG-IP is asked for its VTEP's subnet instead.)");
  }
  if (mode !== 'auto' && subnets.length > 0) throw new ConfigError(`--direct-subnets is read only with --routing auto (it is ${mode}): drop it, or use --routing auto`);
  const overlayNet = parseIpCidr(overlay.overlayNetwork);
  for (const s of subnets) {
    const subnet = parseIpCidr(s, false);
    if (subnet.family !== 4) throw new ConfigError(`--direct-subnets ${s} is not IPv4: direct routing follows the nodes' IPv4 InternalIPs`);
    if (ipCidrsOverlap(overlayNet, subnet)) throw new ConfigError(`--direct-subnets ${s} overlaps --overlay-network ${overlay.overlayNetwork}: a direct subnet is an underlay subnet the nodes' InternalIPs live in`);
  }
  return { mode, directSubnets: subnets };
}

/** Validates everything that can be checked before talking to the cluster. */
export function coordinatorConfig(settings: Settings, env: NodeJS.ProcessEnv): CoordinatorConfig {
  const overlay = overlayFrom(settings);
  const device = deviceFrom(settings, env);
  if (device.deviceType === 'citrix' && overlay.deviceVTEPs.some((v) => v.includes(':'))) {
    throw new ConfigError(`--device-vtep ${overlay.deviceVTEPs.join(',')} is IPv6, and the Citrix driver programs IPv4 VTEPs only: the NITRO reference documents vxlan_srcip_binding's source IP without saying an IPv6 one is taken, so an IPv6 underlay toward an ADC is not built. Use an IPv4 VTEP (the overlay may still be dual-stack)`);
  }
  if (overlay.overlayNetworkIPv6 !== undefined && device.device?.citrixRouting === 'pbr' && device.deviceType === 'citrix') {
    throw new ConfigError('--overlay-network-ipv6 with --citrix-routing pbr: IPv6 pod CIDRs would need IPv6 PBRs (nspbr6), which this driver does not program; use --citrix-routing route (route6 per IPv6 pod CIDR) or leave the IPv6 overlay unset');
  }
  const nodeSelector = nodeSelectorFrom(settings);
  const clusterId = settings['cluster-id'];
  if (clusterId !== undefined && !CLUSTER_ID_RE.test(clusterId)) throw new ConfigError(`--cluster-id ${JSON.stringify(clusterId)} must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit (the kube-system namespace's UID fits)`);
  const podRanges = cidrListSetting(settings, 'pod-cidr-ranges');
  return {
    serviceCIDRs: cidrListSetting(settings, 'service-cidr') ?? [],
    ...(podRanges ? { podRanges } : {}),
    ...(clusterId !== undefined ? { clusterId } : {}),
    overlay,
    routing: routingFrom(settings, overlay, device.deviceType),
    ...device,
    podCidrSource: choiceSetting(settings, 'pod-cidr-source', POD_CIDR_SOURCES),
    ...(nodeSelector ? { nodeSelector } : {}),
    namespace: settings.namespace ?? DEFAULT_NAMESPACE,
    names: instanceNamesFrom(settings),
    identity: settings.identity ?? `${hostname()}-${process.pid}`,
    resyncMs: durationMsSetting(settings, 'resync'),
    underlayGraceMs: durationMsSetting(settings, 'underlay-grace'),
    passDeadlineMs: durationMsSetting(settings, 'pass-deadline'),
    deviceResyncMs: durationMsSetting(settings, 'device-resync'),
    ...leaseTimings(settings),
  };
}
