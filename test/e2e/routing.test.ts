// Direct routing end to end (--routing direct|auto), on each device: the device reaches pods via
// the nodes' own addresses with full 1500-byte packets and no tunnel; in auto mode the nodes behind
// a router stay tunneled; a node moved between the two keeps answering and leaves nothing stale.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabDocument } from '../lab/lab.ts';
import { eventually } from '../support/apiserver.ts';
import {
  E2E_SKIP_REASON, IS_ROOT, cli, deviceGet, deviceHeaders, fullSizeTcpSegments, inNetns, labCore, labDown, labStatus, labUp, lossFromDevice, pingOnce, podSeesFromDevice,
} from '../support/lab.ts';

const DEVICE_IP = '198.18.0.3';
const VXLAN_DEV = 'chorus-100000';

/** A 1500-byte ICMP packet with DF set (1472 bytes of payload) from the device to `ip` answers. */
async function fullSizePing(doc: LabDocument, ip: string): Promise<boolean> {
  return (await inNetns(doc.device.netns, ['ping', '-c', '1', '-W', '1', '-M', 'do', '-s', '1472', ip])).exitCode === 0;
}

/** Every pod answers from the device: ping, 1500-byte DF ping and full-size TCP for a direct node, and the pod sees `peer` as the device. */
async function expectDirectPath(doc: LabDocument, node: LabDocument['nodes'][number]): Promise<void> {
  const pod = node.pods[0]!;
  expect(await pingOnce(doc.device.netns, pod.ip), `${node.name} answers`).toBe(true);
  expect(await fullSizePing(doc, pod.ip), `${node.name}: a 1500-byte DF ping`).toBe(true);
  expect(await fullSizeTcpSegments(doc, pod), `${node.name}: TCP segments of 1500 bytes with DF`).toBeGreaterThan(0);
  expect(await podSeesFromDevice(doc, pod)).toBe(DEVICE_IP);
  // no tunnel on the node: with --routing auto, a node is tunneled until the device's subnets are
  // read (the first plan waits 2 s for them at most), so its agent may still be removing the
  // device it made when the lab reports the pods answering (they answer over either path)
  await eventually(`${node.name}: its agent removes the VXLAN device`, async () => ((await inNetns(node.netns, ['ip', 'link', 'show', 'dev', VXLAN_DEV])).exitCode !== 0 ? true : undefined), 10_000);
}

/** Packets lost (transmitted - received) in a ping summary. */
function lost(output: string): number {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(output);
  if (!m) throw new Error(`no ping summary in: ${output}`);
  return Number(m[1]) - Number(m[2]);
}

async function peerEntry(doc: LabDocument, node: string): Promise<Record<string, unknown>> {
  const maps = await labCore(doc).listNamespacedConfigMap({ namespace: 'chorus-system' });
  const value = maps.items.filter((c) => c.metadata?.name?.startsWith('chorus-kube-router-peers-')).map((c) => c.data?.[node]).find((v) => v !== undefined);
  if (value === undefined) throw new Error(`no peer entry for ${node}`);
  return JSON.parse(value) as Record<string, unknown>;
}

describe.skipIf(!IS_ROOT)('direct routing, auto mode, Linux gateway (lab: 4 nodes x 1 pod; nodes 2 and 4 behind a router)', () => {
  let doc: LabDocument;
  beforeAll(async () => {
    doc = await labUp(['--nodes', '4', '--pods-per-node', '1', '--routing', 'auto']);
  }, 180_000);
  afterAll(async () => {
    await labDown(doc);
  }, 60_000);

  /** The gateway's kernel state toward the nodes: FDB destinations, static neighbours, routes to pod CIDRs. */
  async function gatewayState(): Promise<{ fdb: string[]; neighbours: string[]; routes: string[] }> {
    const fdb = String((await inNetns(doc.device.netns, ['bridge', 'fdb', 'show', 'dev', VXLAN_DEV], true)).stdout).split('\n')
      .map((l) => /^(\S+) dst (\S+)/.exec(l)).filter((m): m is RegExpExecArray => m !== null && m[1] !== '00:00:00:00:00:00').map((m) => m[2]!).sort();
    const neighbours = String((await inNetns(doc.device.netns, ['ip', 'neigh', 'show', 'dev', VXLAN_DEV, 'nud', 'permanent'], true)).stdout).split('\n').filter((l) => l.trim() !== '').map((l) => l.split(' ')[0]!).sort();
    const routes = String((await inNetns(doc.device.netns, ['ip', 'route', 'show', 'proto', '196'], true)).stdout).split('\n').filter((l) => l.trim() !== '').map((l) => l.replace(/ proto 196| onlink/g, '').trim()).sort();
    return { fdb, neighbours, routes };
  }

  it('routes the nodes on the device\'s subnet directly and tunnels the ones behind the router, and says so in the peer table, on the Node and in status', async () => {
    expect(doc.nodes.map((n) => [n.name, n.underlayIP, n.path])).toEqual([
      ['node-1', '198.18.1.1', 'direct'], ['node-2', '198.18.65.2', 'vxlan'], ['node-3', '198.18.1.3', 'direct'], ['node-4', '198.18.65.4', 'vxlan'],
    ]);
    expect(await peerEntry(doc, 'node-1')).toMatchObject({ underlayIP: '198.18.1.1', path: 'direct' });
    expect(await peerEntry(doc, 'node-2')).not.toHaveProperty('path');
    // the gateway reports what it programmed a moment after it has (its status ConfigMap): wait for that report, not for a guess of how long it takes
    const table = await eventually('the gateway reports every node programmed', async () => {
      const t = String((await cli(['status', '--kubeconfig', doc.kubeconfig])).stdout);
      return t.includes('not reported yet') ? undefined : t;
    });
    expect(table).toMatch(/^node-1 +198\.18\.1\.1 +198\.18\.16\.\d+ +\S+ +198\.19\.0\.0\/24 +direct +yes +yes$/m);
    expect(table).toMatch(/^node-2 +198\.18\.65\.2 +198\.18\.16\.\d+ +\S+ +198\.19\.1\.0\/24 +vxlan +yes +yes$/m);
    const byName = new Map(doc.nodes.map((n) => [n.name, n]));
    const overlay = (n: string): string => byName.get(n)!.overlayIP!;
    expect(await gatewayState()).toEqual({
      fdb: ['198.18.65.2', '198.18.65.4'],
      neighbours: [overlay('node-2'), overlay('node-4')].sort(),
      routes: [
        '198.19.0.0/24 via 198.18.1.1 dev eth0', `198.19.1.0/24 via ${overlay('node-2')} dev ${VXLAN_DEV}`,
        '198.19.2.0/24 via 198.18.1.3 dev eth0', `198.19.3.0/24 via ${overlay('node-4')} dev ${VXLAN_DEV}`,
      ],
    });
  });

  it('reaches the direct nodes\' pods with full 1500-byte packets (ping and TCP, DF set), the pods seeing the device\'s own address; the tunneled ones through VXLAN', async () => {
    for (const name of ['node-1', 'node-3']) await expectDirectPath(doc, doc.nodes.find((n) => n.name === name)!);
    for (const name of ['node-2', 'node-4']) {
      const n = doc.nodes.find((x) => x.name === name)!;
      expect(await pingOnce(doc.device.netns, n.pods[0]!.ip), `${name} answers`).toBe(true);
      // through the tunnel: 50 bytes less
      expect(await fullSizePing(doc, n.pods[0]!.ip)).toBe(false);
      expect(await podSeesFromDevice(doc, n.pods[0]!)).toBe(doc.device.overlayIPs[0]);
    }
  });

  it('moves a node from direct to tunneled and another from tunneled to direct, each losing at most 1 s of a 50 pps ping, and leaves nothing stale on the gateway', async () => {
    for (const name of ['node-1', 'node-2']) {
      const pod = doc.nodes.find((n) => n.name === name)!.pods[0]!;
      let moved: { underlayIP?: string; segment?: string } = {};
      const { output } = await lossFromDevice(doc, pod.ip, 60, async () => {
        await new Promise((r) => setTimeout(r, 1_000));
        moved = JSON.parse(String((await cli(['lab', 'move-node', name])).stdout)) as typeof moved;
        // a second after the move, so that a late loss would count
        await new Promise((r) => setTimeout(r, 1_000));
      }, { untilDone: true });
      expect(lost(output), `${name} moved to ${JSON.stringify(moved)}: ${output}`).toBeLessThanOrEqual(50);
    }
    doc = await labStatus();
    expect(doc.nodes.map((n) => [n.name, n.underlayIP, n.path])).toEqual([
      ['node-1', '198.18.65.1', 'vxlan'], ['node-2', '198.18.1.2', 'direct'], ['node-3', '198.18.1.3', 'direct'], ['node-4', '198.18.65.4', 'vxlan'],
    ]);
    const overlay = (n: string): string => doc.nodes.find((x) => x.name === n)!.overlayIP!;
    expect(await gatewayState()).toEqual({
      fdb: ['198.18.65.1', '198.18.65.4'],
      neighbours: [overlay('node-1'), overlay('node-4')].sort(),
      routes: [
        `198.19.0.0/24 via ${overlay('node-1')} dev ${VXLAN_DEV}`, '198.19.1.0/24 via 198.18.1.2 dev eth0',
        '198.19.2.0/24 via 198.18.1.3 dev eth0', `198.19.3.0/24 via ${overlay('node-4')} dev ${VXLAN_DEV}`,
      ],
    });
    await expectDirectPath(doc, doc.nodes.find((n) => n.name === 'node-2')!);
    expect(String((await inNetns(doc.nodes[0]!.netns, ['ip', '-d', 'link', 'show', 'dev', VXLAN_DEV], true)).stdout)).toMatch(/local 198\.18\.65\.1/);
  }, 150_000);
});

describe.skipIf(!IS_ROOT)('direct routing, Citrix ADC (lab: 2 nodes x 1 pod, --routing direct, NITRO emulator)', () => {
  let doc: LabDocument;
  beforeAll(async () => {
    doc = await labUp(['--nodes', '2', '--pods-per-node', '1', '--device', 'citrix', '--routing', 'direct']);
  }, 180_000);
  afterAll(async () => {
    await labDown(doc);
  }, 60_000);

  it('routes each pod CIDR via the node\'s address with a claim, and no arp or bridgetable entry for the nodes', async () => {
    const get = async (resource: string): Promise<Record<string, string>[]> => ((await deviceGet(doc, `/nitro/v1/config/${resource}`, deviceHeaders(doc))) as Record<string, Record<string, string>[] | undefined>)[resource.split('/')[0]!] ?? [];
    const routes = (await get('route')).filter((r) => r.network?.startsWith('198.19.'));
    expect(routes.map((r) => `${r.network}/${r.netmask} via ${r.gateway}`).sort()).toEqual(['198.19.0.0/255.255.255.0 via 198.18.1.1', '198.19.1.0/255.255.255.0 via 198.18.1.2']);
    expect((await get('arp')).filter((a) => doc.nodes.some((n) => n.overlayIP === a.ipaddress))).toEqual([]);
    expect((await get('bridgetable')).filter((b) => doc.nodes.some((n) => n.underlayIP === b.vtep))).toEqual([]);
    const claims = (await get('policystringmap_pattern_binding/chorus_kube_router_owners')).map((c) => c.key).filter((k) => k?.startsWith('route-'));
    expect(claims.sort()).toEqual(['route-198.19.0.0/255.255.255.0/198.18.1.1', 'route-198.19.1.0/255.255.255.0/198.18.1.2']);
  });

  it('reaches every pod with full 1500-byte packets (ping and TCP, DF set), the pods seeing the ADC\'s SNIP', async () => {
    for (const n of doc.nodes) await expectDirectPath(doc, n);
  });

  it('removes a leaving node\'s route and its claim', async () => {
    await cli(['lab', 'remove-node', 'node-2']);
    await eventually('node-2\'s route and claim gone', async () => {
      const routes = ((await deviceGet(doc, '/nitro/v1/config/route', deviceHeaders(doc))) as { route?: { gateway: string }[] }).route ?? [];
      const claims = ((await deviceGet(doc, '/nitro/v1/config/policystringmap_pattern_binding/chorus_kube_router_owners', deviceHeaders(doc))) as { policystringmap_pattern_binding?: { key: string }[] }).policystringmap_pattern_binding ?? [];
      return !routes.some((r) => r.gateway === '198.18.1.2') && !claims.some((c) => c.key.includes('198.18.1.2')) ? true : undefined;
    }, 20_000);
  });
});

describe.skipIf(!IS_ROOT)('direct routing, F5 BIG-IP (lab: 2 nodes x 1 pod, --routing direct, iControl REST emulator)', () => {
  let doc: LabDocument;
  beforeAll(async () => {
    doc = await labUp(['--nodes', '2', '--pods-per-node', '1', '--device', 'f5', '--routing', 'direct']);
  }, 180_000);
  afterAll(async () => {
    await labDown(doc);
  }, 60_000);

  it('routes each pod CIDR with gw the node\'s address, and keeps no FDB record or ARP entry for the nodes', async () => {
    const items = async (path: string): Promise<Record<string, unknown>[]> => ((await deviceGet(doc, `/mgmt/tm/${path}`, deviceHeaders(doc))) as { items?: Record<string, unknown>[] }).items ?? [];
    const routes = (await items('net/route')).filter((r) => String(r.network).startsWith('198.19.'));
    expect(routes.map((r) => `${String(r.network)} gw ${String(r.gw).replace(/%\d+$/, '')}`).sort()).toEqual(['198.19.0.0/24 gw 198.18.1.1', '198.19.1.0/24 gw 198.18.1.2']);
    const tunnels = await items('net/fdb/tunnel');
    expect(tunnels.flatMap((t) => (t.records as unknown[] | undefined) ?? [])).toEqual([]);
    expect((await items('net/arp')).filter((a) => doc.nodes.some((n) => n.overlayIP === a.ipAddress))).toEqual([]);
  });

  it('reaches every pod with full 1500-byte packets (ping and TCP, DF set), the pods seeing the BIG-IP\'s self IP', async () => {
    for (const n of doc.nodes) await expectDirectPath(doc, n);
  });
});

/** What the ADC or the BIG-IP holds toward the nodes: routes to pod CIDRs, neighbour entries for overlay IPs, tunnel destinations. */
async function deviceObjects(doc: LabDocument): Promise<{ routes: string[]; neighbours: string[]; tunnelDestinations: string[] }> {
  if (doc.device.type === 'citrix') {
    const get = async (resource: string): Promise<Record<string, string>[]> => ((await deviceGet(doc, `/nitro/v1/config/${resource}`, deviceHeaders(doc))) as Record<string, Record<string, string>[] | undefined>)[resource] ?? [];
    const arps = (await get('arp')).filter((a) => a.ipaddress?.startsWith('198.18.16.') && a.ipaddress !== '198.18.16.1');
    // the ADC tunnels to a node through its arp entry's vtep (and bridgetable entries, when used)
    const bridges = (await get('bridgetable')).filter((b) => String(b.vxlan) === '100000');
    return {
      routes: (await get('route')).filter((r) => r.network?.startsWith('198.19.')).map((r) => `${r.network}/${r.netmask} via ${r.gateway}`).sort(),
      neighbours: arps.map((a) => a.ipaddress!).sort(),
      tunnelDestinations: [...new Set([...arps.map((a) => a.vtep!), ...bridges.map((b) => b.vtep!)])].sort(),
    };
  }
  const items = async (path: string): Promise<Record<string, unknown>[]> => ((await deviceGet(doc, `/mgmt/tm/${path}`, deviceHeaders(doc))) as { items?: Record<string, unknown>[] }).items ?? [];
  const tunnels = await items('net/fdb/tunnel?expandSubcollections=true');
  const records = tunnels.flatMap((t) => ((t.records as { endpoint: string }[] | undefined) ?? (t.recordsReference as { items?: { endpoint: string }[] } | undefined)?.items ?? []));
  return {
    routes: (await items('net/route')).filter((r) => String(r.network).startsWith('198.19.')).map((r) => `${String(r.network)} via ${String(r.gw).replace(/%\d+$/, '')}`).sort(),
    neighbours: (await items('net/arp')).map((a) => String(a.ipAddress).replace(/%\d+$/, '')).filter((ip) => ip.startsWith('198.18.16.')).sort(),
    tunnelDestinations: records.map((r) => r.endpoint.replace(/%\d+$/, '')).sort(),
  };
}

describe.skipIf(!IS_ROOT).each(['citrix', 'f5'] as const)('direct routing, auto mode with the subnet read from the device, %s emulator (lab: 2 nodes x 1 pod; node 2 behind a router)', (device) => {
  let doc: LabDocument;
  beforeAll(async () => {
    doc = await labUp(['--nodes', '2', '--pods-per-node', '1', '--device', device, '--routing', 'auto']);
  }, 180_000);
  afterAll(async () => {
    await labDown(doc);
  }, 60_000);

  it('routes node 1 (on the VTEP\'s subnet, read from the device) directly and tunnels node 2; a node moved either way loses at most 1 s of a 50 pps ping and leaves nothing stale', async () => {
    expect(doc.nodes.map((n) => [n.name, n.path])).toEqual([['node-1', 'direct'], ['node-2', 'vxlan']]);
    await expectDirectPath(doc, doc.nodes[0]!);
    expect(await pingOnce(doc.device.netns, doc.nodes[1]!.pods[0]!.ip)).toBe(true);
    for (const name of ['node-1', 'node-2']) {
      const pod = doc.nodes.find((n) => n.name === name)!.pods[0]!;
      const { output } = await lossFromDevice(doc, pod.ip, 60, async () => {
        await new Promise((r) => setTimeout(r, 1_000));
        await cli(['lab', 'move-node', name]);
        await new Promise((r) => setTimeout(r, 1_000));
      }, { untilDone: true });
      expect(lost(output), `${name} moved: ${output}`).toBeLessThanOrEqual(50);
    }
    doc = await labStatus();
    expect(doc.nodes.map((n) => [n.name, n.underlayIP, n.path])).toEqual([['node-1', '198.18.65.1', 'vxlan'], ['node-2', '198.18.1.2', 'direct']]);
    const overlay1 = doc.nodes[0]!.overlayIP!;
    const routes = device === 'citrix'
      ? [`198.19.0.0/255.255.255.0 via ${overlay1}`, '198.19.1.0/255.255.255.0 via 198.18.1.2']
      : [`198.19.0.0/24 via ${overlay1}`, '198.19.1.0/24 via 198.18.1.2'];
    await eventually('the device holds exactly the new paths', async () => {
      const have = await deviceObjects(doc);
      return JSON.stringify(have) === JSON.stringify({ routes, neighbours: [overlay1], tunnelDestinations: ['198.18.65.1'] }) ? true : undefined;
    }, 20_000).catch(async (err: unknown) => {
      throw new Error(`${String(err)}: the device has ${JSON.stringify(await deviceObjects(doc))}`);
    });
    await expectDirectPath(doc, doc.nodes[1]!);
    expect(await pingOnce(doc.device.netns, doc.nodes[0]!.pods[0]!.ip)).toBe(true);
  }, 180_000);
});

describe.skipIf(IS_ROOT)('direct routing', () => {
  it.skip(E2E_SKIP_REASON, () => undefined);
});
