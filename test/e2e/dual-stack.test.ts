// End to end: a dual-stack cluster (IPv4 underlay, pods with an IPv4 and an IPv6 address) and a
// device: the Linux gateway, and the Citrix ADC emulator programmed over NITRO (nsip6, nd6,
// route6). The coordinator runs with --overlay-network-ipv6: the device must reach every pod over
// both families by ping and TCP, the pod must see the device's own overlay address of that family
// as the peer, and nodes joining and leaving must update both families on the device.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { LabDocument } from '../lab/lab.ts';
import { eventually } from '../support/apiserver.ts';
import type { NitroCall } from '../emulators/nitro/server.ts';
import { IS_ROOT, cli, emulatorCalls, inNetns, labCore, labDown, labUp, metricFromNetns, peersSeenByPod, pingOnce } from '../support/lab.ts';

/**
 * Each device with the name of the VXLAN device its namespace gets (the gateway's, the emulator's).
 * The BIG-IP's dual-stack objects (IPv6 self IP, net/ndp, IPv6 routes) are driven end to end by
 * test/e2e/ipv6-underlay.test.ts, whose lab is dual-stack too (over an IPv6 underlay), and against
 * its emulator over an IPv4 tunnel by test/integration/f5-driver.test.ts: one lab fewer here.
 */
const DEVICES = [{ device: 'linux', vxlan: 'chorus-100000' }, { device: 'citrix', vxlan: 'nsvx100000' }] as const;

describe.skipIf(!IS_ROOT).each(DEVICES)('dual-stack overlay end to end (lab: 2 nodes x 1 pod, --ip-family dual, $device device)', ({ device, vxlan }) => {
  let doc: LabDocument;
  let core: CoreV1Api;

  const deviceRoutes6 = async (): Promise<string> => String((await inNetns(doc.device.netns, ['ip', '-6', 'route', 'show', 'dev', vxlan], true)).stdout);

  beforeAll(async () => {
    doc = await labUp(['--nodes', '2', '--pods-per-node', '1', '--ip-family', 'dual', '--device', device]);
    core = labCore(doc);
  }, 180_000);

  afterAll(async () => {
    await labDown(doc);
  }, 60_000);

  it('lists every pod address of both families and each node\'s IPv6 overlay address in the lab document', () => {
    expect(doc.ipFamily).toBe('dual');
    expect(doc.device.overlayIPs).toEqual(['198.18.16.1']);
    expect(doc.device.overlayIPv6s).toEqual(['2001:db8:c0::1']);
    for (const n of doc.nodes) {
      expect(n.podCIDRs).toEqual([expect.stringMatching(/^198\.19\./), expect.stringMatching(/^2001:db8:19:/)]);
      // the twin of the IPv4 overlay address: the same offset in 2001:db8:c0::/64
      expect(n.overlayIPv6).toBe(`2001:db8:c0::${(Number(n.overlayIP!.split('.')[3]) + 256 * (Number(n.overlayIP!.split('.')[2]) - 16)).toString(16)}`);
      for (const p of n.pods) expect(p.ips).toEqual([p.ip, expect.stringMatching(/^2001:db8:19:/)]);
    }
  });

  it('publishes the hub at schema 2 with the IPv6 overlay network, and each peer with its IPv6 address and pod CIDR', async () => {
    const hub = await core.readNamespacedConfigMap({ name: 'chorus-kube-router-hub', namespace: 'chorus-system' });
    expect(hub.data).toMatchObject({ schemaVersion: '2', overlayNetworkIPv6: '2001:db8:c0::/64', deviceOverlayIPv6s: '2001:db8:c0::1' });
    const shard = await core.readNamespacedConfigMap({ name: 'chorus-kube-router-peers-0', namespace: 'chorus-system' });
    for (const n of doc.nodes) {
      expect(JSON.parse(shard.data?.[n.name] ?? '{}')).toMatchObject({ overlayIP: n.overlayIP, podCIDRs: [n.podCIDRs[0]], overlayIPv6: n.overlayIPv6, podCIDRsIPv6: [n.podCIDRs[1]] });
    }
  });

  it('`chorus-kube-router status` shows both families', async () => {
    const table = await eventually('every node programmed on the device', async () => {
      const t = String((await cli(['status', '--kubeconfig', doc.kubeconfig])).stdout);
      return /^node-2 .* yes +yes$/m.test(t) && /^node-1 .* yes +yes$/m.test(t) ? t : undefined;
    });
    expect(table).toContain(`VNI 100000, port 4789, overlay 198.18.16.0/20 and 2001:db8:c0::/64, device ${device} VTEP 198.18.0.3 overlay 198.18.16.1,2001:db8:c0::1\n`);
    const n1 = doc.nodes[0]!;
    expect(table).toMatch(new RegExp(`^node-1 +198\\.18\\.1\\.1 +${n1.overlayIP!.replace(/\./g, '\\.')},${n1.overlayIPv6!} +\\S+ +198\\.19\\.0\\.0/24,2001:db8:19::/64 +vxlan +yes +yes$`, 'm'));
  });

  it('counts both families in the metrics: IPv6 pod CIDRs published, the agents\' NDP entries toward the device', async () => {
    const n = doc.nodes[0]!;
    expect(await metricFromNetns(n.netns, doc.coordinators[0]!.healthURL, 'chorus_coordinator_pod_cidrs{family="ipv6"}')).toBe(doc.nodes.length);
    expect(await metricFromNetns(n.netns, doc.coordinators[0]!.healthURL, 'chorus_coordinator_pod_cidrs{family="ipv4"}')).toBe(doc.nodes.length);
    expect(await metricFromNetns(n.netns, doc.coordinators[0]!.healthURL, 'chorus_coordinator_unrouted_pod_cidr_nodes{family="ipv6"}')).toBe(0);
    // static entries toward the device where its MAC is published (the Linux device); a Citrix ADC's or BIG-IP's is learned
    const statics = device === 'linux' ? 1 : 0;
    expect(await metricFromNetns(n.netns, n.agentHealthURL, 'chorus_agent_neighbour_entries{family="ipv6"}')).toBe(statics);
    expect(await metricFromNetns(n.netns, n.agentHealthURL, 'chorus_agent_neighbour_entries{family="ipv4"}')).toBe(statics);
  });

  it('reaches every pod from the device by ping over IPv4 and IPv6', async () => {
    for (const n of doc.nodes) for (const p of n.pods) for (const ip of p.ips) expect(await pingOnce(doc.device.netns, ip), `${p.name} ${ip}`).toBe(true);
  });

  it('carries TCP over IPv6 from the device to a pod, the pod seeing the device\'s IPv6 overlay address (and over IPv4 its IPv4 one)', async () => {
    expect(await peersSeenByPod(doc, doc.nodes[1]!.pods[0]!)).toEqual({ ipv6: '2001:db8:c0::1', ipv4: '::ffff:198.18.16.1' });
  });

  it('a node that joins is reachable over both families, and one that leaves is gone from the device in both', async () => {
    const r = await cli(['lab', 'add-node', '--pods', '1']);
    const added = JSON.parse(String(r.stdout)) as LabDocument['nodes'][number];
    expect(added.pods[0]!.ips).toEqual(['198.19.2.2', '2001:db8:19:2::2']);
    // add-node returns once the pod answers over every address it has
    for (const ip of added.pods[0]!.ips) expect(await pingOnce(doc.device.netns, ip), ip).toBe(true);
    expect(await deviceRoutes6()).toContain('2001:db8:19:2::/64');
    await cli(['lab', 'remove-node', added.name]);
    await eventually('the left node\'s IPv6 route removed from the device', async () => (!(await deviceRoutes6()).includes('2001:db8:19:2::/64') ? true : undefined));
    // its neighbour entry too (an ADC may take the route6 and the nd6 in two requests)
    const neighbours = async (): Promise<string> => String((await inNetns(doc.device.netns, ['ip', '-6', 'neigh', 'show', 'dev', vxlan], true)).stdout);
    expect(added.overlayIPv6).toMatch(/^2001:db8:c0::/);
    await eventually('the left node\'s IPv6 neighbour removed from the device', async () => (!(await neighbours()).includes(`${added.overlayIPv6 ?? ''} `) ? true : undefined));
    // the others still answer over IPv6
    for (const n of doc.nodes) expect(await pingOnce(doc.device.netns, n.pods[0]!.ips[1]!)).toBe(true);
  });
  it.runIf(device === 'citrix')('programs the ADC with the IPv6 objects NITRO documents: nsip6, nd6 and route6 per node, deleted when the node leaves', async () => {
    const calls = (): Promise<NitroCall[]> => emulatorCalls<NitroCall>(doc, { 'X-NITRO-USER': doc.device.api.username ?? '', 'X-NITRO-PASS': doc.device.api.password ?? '' });
    const written = (list: NitroCall[]): string[] => list.filter((c) => c.write && c.status > 0 && c.status < 300).map((c) => `${c.method} ${c.resource}${c.action ? `?${c.action}` : ''}`);
    expect(written(await calls())).toEqual(expect.arrayContaining(['POST nsip6', 'POST nd6', 'POST route6']));
    // the writes of the tests before (and their debounced save) are over: 2.5 s without a write
    await eventually('a quiet ADC', async () => {
      const n = (await calls()).length;
      await new Promise((r) => setTimeout(r, 2_500));
      return written((await calls()).slice(n)).length === 0 ? true : undefined;
    }, 30_000);
    const mark = (await calls()).length;
    const added = JSON.parse(String((await cli(['lab', 'add-node', '--pods', '1'])).stdout)) as LabDocument['nodes'][number];
    const joined = await eventually('the save after the join', async () => {
      const w = written((await calls()).slice(mark));
      return w.includes('POST nsconfig?save') ? w : undefined;
    });
    expect(joined).toEqual(['POST arp', 'POST nd6', 'POST route', 'POST route6', 'POST nsconfig?save']);
    const left = (await calls()).length;
    await cli(['lab', 'remove-node', added.name]);
    const leaving = await eventually('the save after the leave', async () => {
      const w = written((await calls()).slice(left));
      return w.includes('POST nsconfig?save') ? w : undefined;
    });
    expect(leaving.sort()).toEqual(['DELETE arp', 'DELETE nd6', 'DELETE route', 'DELETE route6', 'POST nsconfig?save']);
  });
});
