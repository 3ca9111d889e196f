// End to end: an IPv6 underlay (--ip-family ipv6). The device's VTEP and every node's VTEP (its
// IPv6 InternalIP) are IPv6, so the VXLAN between them runs over IPv6, carrying a dual-stack
// overlay. For the Linux gateway and the BIG-IP emulator: the device reaches every pod over both
// families (ping and TCP, the pod seeing the device's overlay address), full-size packets pass at
// the MTU the 70-byte overhead leaves (DF at the largest size passes, one byte more is refused),
// joins and leaves update both families, and a node's firewall drops our VXLAN from an IPv6 host
// that is not a device VTEP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { LabDocument } from '../lab/lab.ts';
import { namesFor } from '../lab/addressing.ts';
import { addUnderlayHost, addUnderlayIPv6 } from '../lab/netns.ts';
import { eventually } from '../support/apiserver.ts';
import { IS_ROOT, cli, droppedVxlan, inNetns, labCore, labDown, labUp, peersSeenByPod, pingOnce } from '../support/lab.ts';

const DEVICES = [{ device: 'linux', vxlan: 'chorus-100000' }, { device: 'f5', vxlan: 'f5vx100000' }] as const;
/** The lab's underlay MTU (veth default) less VXLAN over IPv6: outer IPv6 40 + UDP 8 + VXLAN 8 + Ethernet 14. */
const OVERLAY_MTU = 1500 - 70;

/** One DF ping of `size` bytes of payload; true when it was answered. */
async function pingDF(netns: string, ip: string, size: number): Promise<boolean> {
  const r = await inNetns(netns, ['ping', ...(ip.includes(':') ? ['-6'] : []), '-c', '1', '-W', '2', '-M', 'do', '-s', String(size), ip]);
  return r.exitCode === 0;
}

describe.skipIf(!IS_ROOT).each(DEVICES)('IPv6 underlay end to end (lab: 2 nodes x 1 pod, --ip-family ipv6, $device device)', ({ device, vxlan }) => {
  let doc: LabDocument;
  let core: CoreV1Api;

  beforeAll(async () => {
    doc = await labUp(['--nodes', '2', '--pods-per-node', '1', '--ip-family', 'ipv6', '--device', device]);
    core = labCore(doc);
  }, 180_000);

  afterAll(async () => {
    await labDown(doc);
  }, 60_000);

  it('publishes IPv6 VTEPs (hub schema 2) and each node\'s IPv6 InternalIP as its underlay address; the VXLAN devices are sourced from them', async () => {
    expect(doc.device.underlayIP).toBe('2001:db8:18::3');
    const hub = await core.readNamespacedConfigMap({ name: 'chorus-kube-router-hub', namespace: 'chorus-system' });
    expect(hub.data).toMatchObject({ schemaVersion: '2', deviceVTEPs: '2001:db8:18::3', overlayNetworkIPv6: '2001:db8:c0::/64' });
    const shard = await core.readNamespacedConfigMap({ name: 'chorus-kube-router-peers-0', namespace: 'chorus-system' });
    for (const n of doc.nodes) {
      expect(n.underlayIP).toMatch(/^2001:db8:18::1:/);
      expect(JSON.parse(shard.data?.[n.name] ?? '{}')).toMatchObject({ underlayIP: n.underlayIP });
      const link = String((await inNetns(n.netns, ['ip', '-d', 'link', 'show', 'chorus-100000'], true)).stdout);
      expect(link).toContain(`local ${n.underlayIP} `);
      expect(link).toContain(`mtu ${OVERLAY_MTU} `);
    }
    const deviceLink = String((await inNetns(doc.device.netns, ['ip', '-d', 'link', 'show', vxlan], true)).stdout);
    expect(deviceLink).toContain('local 2001:db8:18::3 ');
    expect(deviceLink).toContain(`mtu ${OVERLAY_MTU} `);
    const fdb = String((await inNetns(doc.device.netns, ['bridge', 'fdb', 'show', 'dev', vxlan], true)).stdout);
    for (const n of doc.nodes) expect(fdb).toContain(`dst ${n.underlayIP} `);
  });

  it('reaches every pod over IPv4 and IPv6 by ping, and by TCP with the pod seeing the device\'s overlay address', async () => {
    for (const n of doc.nodes) for (const p of n.pods) for (const ip of p.ips) expect(await pingOnce(doc.device.netns, ip), `${p.name} ${ip}`).toBe(true);
    expect(await peersSeenByPod(doc, doc.nodes[0]!.pods[0]!)).toEqual({ ipv6: '2001:db8:c0::1', ipv4: '::ffff:198.18.16.1' });
  });

  it(`passes full-size packets at the overlay MTU (${OVERLAY_MTU}): DF at the largest size gets through, one byte more is refused`, async () => {
    const pod = doc.nodes[1]!.pods[0]!;
    // ICMP payload = MTU - IP header - ICMP header (8): 20-byte IPv4 header, 40-byte IPv6 header
    expect(await pingDF(doc.device.netns, pod.ip, OVERLAY_MTU - 28)).toBe(true);
    expect(await pingDF(doc.device.netns, pod.ip, OVERLAY_MTU - 27)).toBe(false);
    expect(await pingDF(doc.device.netns, pod.ips[1]!, OVERLAY_MTU - 48)).toBe(true);
    expect(await pingDF(doc.device.netns, pod.ips[1]!, OVERLAY_MTU - 47)).toBe(false);
  });

  it('a node that joins is reachable over both families through the IPv6 underlay, and one that leaves is gone from the device', async () => {
    const added = JSON.parse(String((await cli(['lab', 'add-node', '--pods', '1'])).stdout)) as LabDocument['nodes'][number];
    expect(added.underlayIP).toMatch(/^2001:db8:18::1:/);
    for (const ip of added.pods[0]!.ips) expect(await pingOnce(doc.device.netns, ip), ip).toBe(true);
    await cli(['lab', 'remove-node', added.name]);
    await eventually('the left node\'s FDB entry removed from the device', async () => {
      const fdb = String((await inNetns(doc.device.netns, ['bridge', 'fdb', 'show', 'dev', vxlan], true)).stdout);
      return !fdb.includes(`dst ${added.underlayIP} `) ? true : undefined;
    });
    for (const n of doc.nodes) expect(await pingOnce(doc.device.netns, n.pods[0]!.ips[1]!)).toBe(true);
  });

  it.runIf(device === 'linux')('`doctor` on a node passes every check and names both families: the IPv6 underlay and its 70-byte overhead, IPv6 forwarding, the device reached over both', async () => {
    const r = await cli(['lab', 'doctor', doc.nodes[0]!.name, '--json'], { reject: false });
    const checks = (JSON.parse(String(r.stdout)) as { checks: { check: string; ok: boolean; detail: string }[] }).checks;
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(r.exitCode).toBe(0);
    const detail = (name: string): string => checks.find((c) => c.check === name)?.detail ?? `no ${name} check`;
    expect(detail('inputs')).toMatch(/overlay IPv4 198\.18\.16\.\d+\/20, IPv6 2001:db8:c0::[0-9a-f]+\/64, .*device VTEP\(s\) 2001:db8:18::3 \(IPv6 underlay\)/);
    expect(detail('MTU')).toBe(`chorus-100000 MTU ${OVERLAY_MTU} (underlay MTU - 70: VXLAN over IPv6)`);
    expect(detail('firewall')).toContain('only from 2001:db8:18::3');
    expect(detail('ipv6 forwarding')).toBe('net.ipv6.conf.all.forwarding = 1');
    expect(detail('device reachable (IPv6)')).toMatch(/^2001:db8:c0::1 answered [1-3]\/3 pings/);
  });

  it.runIf(device === 'linux')('a node drops our VXLAN from an IPv6 underlay host that is not a device VTEP; the device still gets through', async () => {
    const target = doc.nodes[0]!;
    const intruder = `${doc.prefix}-x6`;
    await addUnderlayHost(namesFor(doc.prefix), intruder, 'ul-x6', '198.18.0.10');
    await addUnderlayIPv6(intruder, '2001:db8:18::99');
    const mac = String((await inNetns(target.netns, ['cat', '/sys/class/net/chorus-100000/address'], true)).stdout).trim();
    for (const cmd of [
      ['ip', 'link', 'add', 'chorus-100000', 'type', 'vxlan', 'id', '100000', 'local', '2001:db8:18::99', 'dstport', '4789', 'nolearning'],
      ['ip', 'addr', 'add', '198.18.16.250/20', 'dev', 'chorus-100000'], ['ip', 'link', 'set', 'chorus-100000', 'up'],
      ['bridge', 'fdb', 'append', mac, 'dev', 'chorus-100000', 'dst', target.underlayIP],
      ['ip', 'neigh', 'replace', target.overlayIP!, 'lladdr', mac, 'dev', 'chorus-100000', 'nud', 'permanent'],
      ['ip', 'route', 'add', target.podCIDRs[0]!, 'via', target.overlayIP!, 'dev', 'chorus-100000'],
    ]) await inNetns(intruder, cmd, true);
    const droppedBefore = await droppedVxlan(target.netns);
    expect(await pingOnce(intruder, target.pods[0]!.ip)).toBe(false);
    expect(await droppedVxlan(target.netns)).toBeGreaterThan(droppedBefore);
    expect(await pingOnce(doc.device.netns, target.pods[0]!.ip)).toBe(true);
  });
});
