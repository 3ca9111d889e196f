// The agent and gateway read the kernel over rtnetlink (agent/overlay/netlink-reader.ts); the
// lab, tests and `ip -n` callers read it with iproute2. On one namespace holding every kind of
// entry the overlay cares about, and some it must ignore, both readers must give the same
// answer, and that answer must be what `ip` and `bridge` (tools nobody here wrote) show.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { ipRoute } from '../../shared/iproute.ts';
import type { HostInterface, OverlayObservation } from '../../agent/overlay/observe.ts';
import { E2E_SKIP_REASON, IS_ROOT } from '../support/lab.ts';

const ns = `ckr${randomBytes(3).toString('hex').slice(0, 5)}-readers`;
const HELPER = fileURLToPath(new URL('../support/read-kernel.ts', import.meta.url));
const DEVICES = ['chorus-4096', '', 'chorus-missing', 'chorus-4098'];

interface Reading { overlays: Record<string, OverlayObservation>; interfaces: HostInterface[] }
let readings: { iproute: Reading; netlink: Reading };

/** Arrays sorted, so the comparison is about content (both come from the same kernel dump anyway). */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, canonical(v)]));
  return value;
}

describe.skipIf(!IS_ROOT)('kernel readers: netlink and iproute2 agree', () => {
  beforeAll(async () => {
    await execa('ip', ['netns', 'add', ns]);
    await ipRoute(ns).batch('ip', [
      'link set lo up',
      'link add ul0 type veth peer name ul1',
      'addr add 198.18.0.1/24 dev ul0', 'addr add 198.18.0.5/24 dev ul0', 'addr add 2001:db8::1/64 dev ul0 nodad',
      'link set ul0 up', 'link set ul1 up',
      // ours: the current device, up, no learning, with everything on it
      'link add chorus-4096 type vxlan id 4096 local 198.18.0.1 dstport 4789 nolearning dev ul0',
      'link set chorus-4096 mtu 1450 address 02:c4:c6:12:10:02 up',
      'addr add 198.18.16.2/20 dev chorus-4096',
      'neigh replace 198.18.16.1 lladdr 02:c4:c6:12:10:01 dev chorus-4096 nud permanent',
      'neigh replace 198.18.16.9 lladdr 02:c4:c6:12:10:09 dev chorus-4096 nud reachable',
      'route replace 198.19.0.0/24 via 198.18.16.1 dev chorus-4096 proto 196 onlink',
      'route replace 198.19.1.5 dev chorus-4096 proto 196',
      'route replace 198.19.2.0/24 dev chorus-4096 proto static',
      'route replace 198.19.3.0/24 dev chorus-4096 proto 196 table 100',
      // ours, left from an earlier VNI: down, learning on
      'link add chorus-4097 type vxlan id 4097 local 198.18.0.1 dstport 4789 dev ul0',
      // someone else's (a CNI's): no local address, another port
      'link add flannel.1 type vxlan id 1 dstport 8472 dev ul0',
      // an IPv6 underlay's device: local and FDB remotes IPv6
      'link add chorus-4098 type vxlan id 4098 local 2001:db8::1 dstport 4790 nolearning dev ul0',
      'link set chorus-4098 mtu 1430 address 02:c4:c6:12:10:62 up',
    ]);
    await ipRoute(ns).batch('bridge', [
      'fdb append 00:00:00:00:00:00 dev chorus-4096 dst 198.18.0.3',
      'fdb append 00:00:00:00:00:00 dev chorus-4096 dst 198.18.0.4',
      'fdb append 02:c4:c6:12:10:09 dev chorus-4096 dst 198.18.0.7',
      'fdb append 02:c4:c6:12:10:0a dev chorus-4097 dst 198.18.0.8',
      'fdb append 02:c4:c6:12:10:63 dev chorus-4098 dst 2001:db8::3',
    ]);
    const r = await execa('ip', ['netns', 'exec', ns, process.execPath, '--disable-warning=ExperimentalWarning', HELPER, ...DEVICES]);
    readings = JSON.parse(r.stdout) as typeof readings;
  }, 60_000);

  afterAll(async () => {
    await execa('ip', ['netns', 'del', ns], { reject: false });
  });

  it.each(DEVICES)('reads overlay device "%s" the same way', (dev) => {
    expect(canonical(readings.netlink.overlays[dev])).toEqual(canonical(readings.iproute.overlays[dev]));
  });

  it('reads the interfaces the same way', () => {
    expect(canonical(readings.netlink.interfaces)).toEqual(canonical(readings.iproute.interfaces));
  });

  it('sees what ip and bridge show: our device, its entries, our routes only, the stale device', () => {
    const { observed, staleDevices } = readings.netlink.overlays['chorus-4096'] ?? { observed: undefined, staleDevices: [] };
    expect(staleDevices).toEqual(['chorus-4097', 'chorus-4098']);
    expect(observed?.vxlan).toMatchObject({ name: 'chorus-4096', kind: 'vxlan', vni: 4096, local: '198.18.0.1', port: 4789, learning: false, mtu: 1450, mac: '02:c4:c6:12:10:02', up: true });
    expect(observed?.addresses).toEqual(['198.18.16.2/20']);
    expect(canonical(observed?.fdb)).toEqual(canonical([
      { mac: '00:00:00:00:00:00', dst: '198.18.0.3' }, { mac: '00:00:00:00:00:00', dst: '198.18.0.4' }, { mac: '02:c4:c6:12:10:09', dst: '198.18.0.7' },
    ]));
    expect(canonical(observed?.neighbours)).toEqual(canonical([
      { ip: '198.18.16.1', mac: '02:c4:c6:12:10:01', permanent: true }, { ip: '198.18.16.9', mac: '02:c4:c6:12:10:09', permanent: false },
    ]));
    // the static route and the route in table 100 are not ours to see
    expect(canonical(observed?.routes)).toEqual(canonical([{ dst: '198.19.0.0/24', via: '198.18.16.1' }, { dst: '198.19.1.5/32', via: '' }]));
    expect(readings.netlink.overlays['chorus-missing']).toEqual({ observed: { vxlan: undefined, addresses: [], fdb: [], neighbours: [], routes: [] }, staleDevices: ['chorus-4096', 'chorus-4097', 'chorus-4098'] });
  });

  it('reads an IPv6 underlay\'s device: its IPv6 local address and FDB remotes', () => {
    const { observed } = readings.netlink.overlays['chorus-4098'] ?? { observed: undefined };
    expect(observed?.vxlan).toMatchObject({ name: 'chorus-4098', vni: 4098, local: '2001:db8::1', port: 4790, mtu: 1430 });
    expect(observed?.fdb).toEqual([{ mac: '02:c4:c6:12:10:63', dst: '2001:db8::3' }]);
  });

  it('reads every interface with its addresses of both families (no link-local) and VXLAN identity', () => {
    const byName = new Map(readings.netlink.interfaces.map((i) => [i.name, i]));
    expect(byName.get('ul0')).toEqual({ name: 'ul0', mtu: 1500, cidrs: ['198.18.0.1/24', '198.18.0.5/24'], cidrs6: ['2001:db8::1/64'] });
    expect(byName.get('flannel.1')).toMatchObject({ vxlan: { vni: 1, port: 8472 } });
    expect(byName.get('chorus-4097')).toMatchObject({ vxlan: { vni: 4097, port: 4789 }, cidrs: [] });
  });
});

if (!IS_ROOT) {
  console.warn(E2E_SKIP_REASON);
  describe(E2E_SKIP_REASON, () => {
    it.skip('kernel readers agree', () => undefined);
  });
}
