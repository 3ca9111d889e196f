import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COORDINATOR_SPECS, coordinatorConfig } from '../../coordinator/config.ts';
import { ConfigError, loadConfigFile, readSettings } from '../../shared/cli-args.ts';

function configFrom(argv: string[], env: NodeJS.ProcessEnv = {}, file = {}): ReturnType<typeof coordinatorConfig> {
  const { settings } = readSettings(argv, COORDINATOR_SPECS, env, file);
  return coordinatorConfig(settings, env);
}

const base = ['--overlay-network', '198.18.16.0/20', '--device-vtep', '198.18.0.3'];

describe('coordinator configuration', () => {
  it('takes flags, with defaults for the rest', () => {
    expect(configFrom(base)).toMatchObject({ overlay: { vni: 100000, port: 4789, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'] }, deviceType: 'linux', podCidrSource: 'auto', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
  });

  it('accepts the older Citrix node controller environment names', () => {
    const c = configFrom([], { NETWORK: '198.18.32.0/24', VNID: '175', VXLAN_PORT: '8472', REMOTE_VTEPIP: '198.18.0.9' });
    expect(c.overlay).toEqual({ vni: 175, port: 8472, overlayNetwork: '198.18.32.0/24', deviceVTEPs: ['198.18.0.9'] });
  });

  it('reads a YAML settings file that flags and environment override', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'overlay-network: 198.18.16.0/20\ndevice-vtep: 198.18.0.3\nvni: 77\nport: 4790\n');
    const values = loadConfigFile(file, COORDINATOR_SPECS);
    expect(configFrom(['--vni', '78'], {}, values).overlay).toMatchObject({ vni: 78, port: 4790 });
    writeFileSync(file, 'password: hunter2\n');
    expect(() => loadConfigFile(file, COORDINATOR_SPECS)).toThrow(/looks like a credential/);
    writeFileSync(file, 'overlay-netwrk: x\n');
    expect(() => loadConfigFile(file, COORDINATOR_SPECS)).toThrow(/unknown setting "overlay-netwrk"/);
  });

  it.each([
    [['--vni', '0'], /--vni="0" is invalid: expected a whole number from 1 to 16777215/],
    [['--vni', '16777216'], /from 1 to 16777215/],
    [['--port', '70000'], /--port="70000" is invalid/],
    [['--overlay-network', '198.18.16.1/20'], /host bits set; did you mean 198.18.16.0\/20/],
    [['--device-vtep', '198.18.16.9'], /inside --overlay-network/],
    [['--overlay-network', '198.18.16.0/32'], /too small/],
    [['--service-cidr', '198.18.0.0/16'], /overlaps the service CIDR 198.18.0.0\/16/],
    [['--device-type', 'juniper'], /expected one of linux, citrix, f5/],
    [['--device-type', 'citrix'], /needs --device-address/],
    [['--pod-cidr-source', 'weave'], /expected one of auto, node, calico, cilium/],
    [['--node-selector', 'a in b'], /--node-selector "a in b" is invalid/],
    [['--renew-deadline', '20s'], /must be shorter than --lease-duration/],
    [['--lease-duration', 'soon'], /expected a duration/],
    [['--overlay-network-ipv6', '198.18.32.0/20'], /--overlay-network-ipv6="198.18.32.0\/20" is not an IPv6 network/],
    [['--overlay-network-ipv6', 'fd00:c0::1/64'], /--overlay-network-ipv6="fd00:c0::1\/64" is invalid: CIDR "fd00:c0::1\/64" has host bits set; did you mean fd00:c0::\/64\?/],
    [['--overlay-network-ipv6', 'fd00:c0::/117'], /--overlay-network-ipv6 fd00:c0::\/117 is smaller than --overlay-network 198.18.16.0\/20: .* at most \/116/],
    [['--overlay-network-ipv6', 'fd00:c0::/64', '--service-cidr', '198.18.64.0/20,fd00:c0::/108'], /--overlay-network-ipv6 fd00:c0::\/64 overlaps the service CIDR fd00:c0::\/108/],
    [['--service-cidr', 'fd00::/129'], /--service-cidr "fd00::\/129" is invalid/],
  ])('rejects %j with a message naming the setting', (extra, message) => {
    expect(() => configFrom([...base, ...extra])).toThrow(ConfigError);
    expect(() => configFrom([...base, ...extra])).toThrow(message);
  });

  it('takes IPv6 VTEPs (an IPv6 underlay, canonical text) and refuses a mixed underlay, an IPv6 underlay with direct routing or a Citrix ADC, and an IPv6 VTEP inside the IPv6 overlay network', () => {
    const v6 = ['--overlay-network', '198.18.16.0/20'];
    expect(configFrom([...v6, '--device-vtep', '2001:DB8:18:0::3']).overlay.deviceVTEPs).toEqual(['2001:db8:18::3']);
    expect(() => configFrom([...v6, '--device-vtep', '2001:db8:18::3,198.18.0.3'])).toThrow(/mixes IPv4 and IPv6: a mixed underlay is not supported/);
    expect(() => configFrom([...v6, '--device-vtep', 'nope'])).toThrow(/--device-vtep: "nope" is not an IP address/);
    expect(() => configFrom([...v6, '--device-vtep', '2001:db8:18::3', '--routing', 'direct'])).toThrow(/--routing direct with an IPv6 underlay .* use --routing vxlan/);
    const env = { CHORUS_DEVICE_USERNAME: 'u', CHORUS_DEVICE_PASSWORD: 'p' };
    expect(() => configFrom([...v6, '--device-vtep', '2001:db8:18::3', '--device-type', 'citrix', '--device-address', 'adc.example'], env)).toThrow(/is IPv6, and the Citrix driver programs IPv4 VTEPs only/);
    expect(configFrom([...v6, '--device-vtep', '2001:db8:18::3', '--device-type', 'f5', '--device-address', 'bigip.example'], env).overlay.deviceVTEPs).toEqual(['2001:db8:18::3']);
    expect(() => configFrom([...v6, '--device-vtep', 'fd00:c0::9', '--overlay-network-ipv6', 'fd00:c0::/64'])).toThrow(/--device-vtep fd00:c0::9 is inside --overlay-network-ipv6 fd00:c0::\/64/);
  });

  it('refuses a dual-stack overlay with Citrix PBR routing (IPv6 PBRs are not programmed), and takes it with route6 routing', () => {
    const env = { CHORUS_DEVICE_USERNAME: 'u', CHORUS_DEVICE_PASSWORD: 'p' };
    const citrix = [...base, '--overlay-network-ipv6', 'fd00:c0::/64', '--device-type', 'citrix', '--device-address', 'adc.example'];
    expect(() => configFrom([...citrix, '--citrix-routing', 'pbr'], env)).toThrow(/--overlay-network-ipv6 with --citrix-routing pbr: .*nspbr6.*use --citrix-routing route/);
    expect(configFrom(citrix, env).overlay.overlayNetworkIPv6).toBe('fd00:c0::/64');
  });

  it('takes an IPv6 overlay network beside the IPv4 one (dual-stack), and service CIDRs and pod ranges of both families', () => {
    const c = configFrom([...base, '--overlay-network-ipv6', 'fd00:c0::/116', '--service-cidr', '198.18.64.0/20,fd00:5e::/108', '--pod-cidr-ranges', '198.19.0.0/16,fd00:10::/48'], {});
    expect(c.overlay.overlayNetworkIPv6).toBe('fd00:c0::/116');
    expect(c.serviceCIDRs).toEqual(['198.18.64.0/20', 'fd00:5e::/108']);
    expect(c.podRanges).toEqual(['198.19.0.0/16', 'fd00:10::/48']);
    expect(configFrom([], { CHORUS_OVERLAY_NETWORK: '198.18.16.0/20', CHORUS_DEVICE_VTEPS: '198.18.0.3', CHORUS_OVERLAY_NETWORK_IPV6: 'fd00:c0::/64' }).overlay.overlayNetworkIPv6).toBe('fd00:c0::/64');
    expect(configFrom(base).overlay.overlayNetworkIPv6).toBeUndefined();
  });

  it('says which setting is missing', () => {
    expect(() => configFrom([])).toThrow(/--overlay-network is required.*\(or set CHORUS_OVERLAY_NETWORK \/ NETWORK\)/);
  });

  it('reads the F5 settings: both units of an HA pair, partition, prefix, routing, and refuses bad ones', () => {
    const env = { CHORUS_DEVICE_USERNAME: 'u', CHORUS_DEVICE_PASSWORD: 'p' };
    const f5 = configFrom([...base, '--device-type', 'f5', '--device-address', 'bigip-a.example:8443, https://bigip-b.example', '--f5-partition', 'k8s', '--f5-sync-group', 'dg1'], env);
    expect(f5.device?.baseURLs).toEqual(['https://bigip-a.example:8443', 'https://bigip-b.example']);
    expect(f5.device?.f5).toEqual({ partition: 'k8s', namePrefix: 'chorus-100000', allowService: 'none', trafficGroup: '/Common/traffic-group-local-only', auth: 'token', routing: 'gateway', syncGroup: 'dg1' });
    const bad: [string[], RegExp][] = [
      [['--f5-partition', 'my partition'], /--f5-partition "my partition" is not a BIG-IP partition name/],
      [['--f5-name-prefix', '9lives'], /--f5-name-prefix "9lives" must be a BIG-IP name/],
      [['--f5-self-allow-service', 'tcp'], /--f5-self-allow-service "tcp" must be none, default, all or protocol:port/],
      [['--f5-traffic-group', 'traffic-group-1'], /--f5-traffic-group "traffic-group-1" must be a full path/],
      [['--f5-routing', 'pbr'], /expected one of gateway, interface/],
    ];
    for (const [args, message] of bad) expect(() => configFrom([...base, '--device-type', 'f5', '--device-address', 'bigip', ...args], env)).toThrow(message);
    expect(() => configFrom([...base, '--device-type', 'citrix', '--device-address', 'a,b'], env)).toThrow(/give one address for a Citrix ADC/);
  });

  it('takes device credentials only from a Secret directory or the environment', () => {
    expect(() => configFrom([...base, '--device-type', 'citrix', '--device-address', '198.18.0.50'])).toThrow(/needs credentials/);
    const citrix = configFrom([...base, '--device-type', 'citrix'], { NS_IP: '198.18.0.50', NS_USER: 'u', NS_PASSWORD: 'p' });
    expect(citrix.device).toEqual({ baseURL: 'https://198.18.0.50', baseURLs: ['https://198.18.0.50'], insecureSkipVerify: false, citrixAuth: 'session', citrixNeighbours: 'arp', citrixRouting: 'route', saveConfig: true });
    expect(citrix.credentials).toEqual({ username: 'u', password: 'p' });
    expect(() => configFrom([...base, '--device-type', 'citrix', '--device-address', 'http://198.18.0.50'], { NS_USER: 'u', NS_PASSWORD: 'p' })).toThrow(/must be reached over https/);
    expect(() => readSettings([...base, '--password', 'x'], COORDINATOR_SPECS, {})).toThrow(/Unknown option '--password'/);
  });
});
