/**
 * Builds and removes the lab's hosts as network namespaces. Nothing is created in the host's own
 * namespace: veth pairs are made inside the underlay switch namespace with their peer moved
 * straight into the host namespace that owns it.
 *
 *   <p>-ul  underlay switch: bridge br0, one port per host
 *   <p>-cp  control plane (API server, coordinators)  <p>-dev  external device (gateway)
 *   <p>-nI  node I: eth0 on the underlay, bridge cni0 for its pods, ip_forward on (as a CNI does)
 *   <p>-nIpJ  pod J of node I: eth0 on cni0, default route via the node
 *   <p>-rt  router (--routing auto): eth0 on br0, eth1 on br1, the switch's second segment (the
 *           routed subnet); a node there has eth1 on br1 and its default route via the router,
 *           and the control plane and devices route the routed subnet via the router
 */
import { execa } from 'execa';
import { ipRoute } from '../../shared/iproute.ts';
import { ROUTED_NETWORK, ROUTED_PREFIX, ROUTER_ROUTED_IP, ROUTER_UNDERLAY_IP, UNDERLAY_PREFIX, UNDERLAY_PREFIX_IPV6, podGatewayIP, podGatewayIPv6, podIP, podIPv6, type Names, type Segment } from './addressing.ts';

async function ipBatch(lines: string[], netns?: string): Promise<void> {
  await ipRoute(netns).batch('ip', lines);
}

async function sysctl(netns: string, key: string, value: string): Promise<void> {
  await execa('ip', ['netns', 'exec', netns, 'sh', '-c', `echo ${value} > /proc/sys/${key.replace(/\./g, '/')}`]);
}

export async function listNamespaces(): Promise<string[]> {
  const r = await execa('ip', ['-j', 'netns', 'list'], { reject: false });
  if (r.exitCode !== 0 || r.stdout.trim() === '') return [];
  return (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name);
}

/** Creates a host namespace attached to the underlay switch with `ip`/20 on eth0. */
export async function addUnderlayHost(names: Names, netns: string, port: string, ip: string): Promise<void> {
  await ipBatch([`netns add ${netns}`]);
  await ipBatch([
    `link add ${port} type veth peer name eth0 netns ${netns}`,
    `link set ${port} master br0 up`,
  ], names.underlay);
  await ipBatch(['link set lo up', `addr add ${ip}/${UNDERLAY_PREFIX} dev eth0`, 'link set eth0 up'], netns);
}

/** An IPv6 underlay address beside a host's IPv4 one on the switch (nodad: the lab's addresses are unique by construction). */
export async function addUnderlayIPv6(netns: string, ip: string, iface = 'eth0'): Promise<void> {
  await ipBatch([`addr add ${ip}/${UNDERLAY_PREFIX_IPV6} dev ${iface} nodad`], netns);
}

export async function createCore(names: Names, controlPlaneIP: string, deviceIP: string): Promise<void> {
  await ipBatch([`netns add ${names.underlay}`]);
  await ipBatch(['link set lo up', 'link add br0 type bridge', 'link set br0 up'], names.underlay);
  await addUnderlayHost(names, names.controlPlane, 'ul-cp', controlPlaneIP);
  await addUnderlayHost(names, names.device, 'ul-dev', deviceIP);
}

/** `ipv6`: dual-stack pods (an IPv6 address on cni0 and on every pod, IPv6 forwarding on, as a dual-stack CNI does). */
export async function createNode(names: Names, index: number, underlayIP: string, pods: number, segment: Segment = 'switch', ipv6 = false): Promise<void> {
  const node = names.node(index);
  await ipBatch([`netns add ${node}`]);
  await attachNode(names, index, segment, underlayIP);
  await sysctl(node, 'net.ipv4.ip_forward', '1');
  if (ipv6) await sysctl(node, 'net.ipv6.conf.all.forwarding', '1');
  // nodad: the lab's addresses are unique by construction, and duplicate address detection would hold each back a second
  await ipBatch(['link add cni0 type bridge', `addr add ${podGatewayIP(index)}/24 dev cni0`, ...(ipv6 ? [`addr add ${podGatewayIPv6(index)}/64 dev cni0 nodad`] : []), 'link set cni0 up'], node);
  for (let j = 1; j <= pods; j++) await createPod(names, index, j, ipv6);
}

/** The node's interface and its port on the switch, per segment: eth0 on br0, or eth1 on br1 behind the router. */
const SEGMENT_LINKS: Record<Segment, { bridge: string; iface: string; port: (index: number) => string }> = {
  switch: { bridge: 'br0', iface: 'eth0', port: (i) => `ul-n${i}` },
  routed: { bridge: 'br1', iface: 'eth1', port: (i) => `ur-n${i}` },
};

/**
 * Plugs node `index` into a segment with `ip`. Behind the router it also gets its default route
 * via the router; on the switch the subnet is connected. A node can be on both for a moment (a
 * move is make-before-break: see Lab.moveNode).
 */
export async function attachNode(names: Names, index: number, segment: Segment, ip: string): Promise<void> {
  const node = names.node(index);
  const l = SEGMENT_LINKS[segment];
  await ipBatch([`link add ${l.port(index)} type veth peer name ${l.iface} netns ${node}`, `link set ${l.port(index)} master ${l.bridge} up`], names.underlay);
  const prefix = segment === 'switch' ? UNDERLAY_PREFIX : ROUTED_PREFIX;
  await ipBatch(['link set lo up', `addr add ${ip}/${prefix} dev ${l.iface}`, `link set ${l.iface} up`, ...(segment === 'routed' ? [`route replace default via ${ROUTER_ROUTED_IP} dev ${l.iface}`] : [])], node);
}

/** Unplugs node `index` from a segment (its address and routes there go with the link). */
export async function detachNode(names: Names, index: number, segment: Segment): Promise<void> {
  await ipRoute(names.underlay).batch('ip', [`link del ${SEGMENT_LINKS[segment].port(index)}`]);
}

/** The router of --routing auto, and the routes to the subnet behind it from the hosts that talk to nodes there. */
export async function createRouter(names: Names, hosts: readonly string[]): Promise<void> {
  await ipBatch(['link add br1 type bridge', 'link set br1 up'], names.underlay);
  await addUnderlayHost(names, names.router, 'ul-rt', ROUTER_UNDERLAY_IP);
  await ipBatch(['link add ur-rt type veth peer name eth1 netns ' + names.router, 'link set ur-rt master br1 up'], names.underlay);
  await ipBatch([`addr add ${ROUTER_ROUTED_IP}/${ROUTED_PREFIX} dev eth1`, 'link set eth1 up'], names.router);
  await sysctl(names.router, 'net.ipv4.ip_forward', '1');
  for (const h of hosts) await routeViaRouter(h);
}

/** A host on the switch reaches the routed subnet through the router. */
export async function routeViaRouter(netns: string): Promise<void> {
  await ipBatch([`route replace ${ROUTED_NETWORK} via ${ROUTER_UNDERLAY_IP}`], netns);
}

/**
 * Removes node `index`'s port on the underlay switch. Deleting its namespace alone would leave
 * the port to the kernel's asynchronous namespace cleanup, and a node added at once under the
 * same index would find the port name taken ("File exists").
 */
export async function removeUnderlayPort(names: Names, index: number): Promise<void> {
  for (const segment of ['switch', 'routed'] as const) {
    await ipRoute(names.underlay).batch('ip', [`link del ${SEGMENT_LINKS[segment].port(index)}`]).catch((err: unknown) => {
      if (!/Cannot find device/.test(String(err))) throw err;
    });
  }
}

export async function createPod(names: Names, index: number, j: number, ipv6 = false): Promise<void> {
  const node = names.node(index);
  const pod = names.pod(index, j);
  await ipBatch([`netns add ${pod}`]);
  await ipBatch([`link add p${j} type veth peer name eth0 netns ${pod}`, `link set p${j} master cni0 up`], node);
  await ipBatch([
    'link set lo up', `addr add ${podIP(index, j)}/24 dev eth0`, ...(ipv6 ? [`addr add ${podIPv6(index, j)}/64 dev eth0 nodad`] : []), 'link set eth0 up',
    `route add default via ${podGatewayIP(index)}`, ...(ipv6 ? [`route add ::/0 via ${podGatewayIPv6(index)}`] : []),
  ], pod);
}

export async function deleteNamespaces(namesToDelete: readonly string[]): Promise<void> {
  if (namesToDelete.length === 0) return;
  // pods first, so no veth peer is left dangling in a namespace that is already gone
  const ordered = [...namesToDelete].sort((a, b) => b.length - a.length);
  await execa('ip', ['-force', '-batch', '-'], { input: ordered.map((n) => `netns del ${n}`).join('\n') + '\n', reject: false });
}

export async function deleteAllWithPrefix(prefix: string): Promise<string[]> {
  const mine = (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
  await deleteNamespaces(mine);
  return mine;
}

export async function ping(netns: string, ip: string, timeoutS = 1): Promise<number | undefined> {
  const r = await execa('ip', ['netns', 'exec', netns, 'ping', '-c', '1', '-W', String(timeoutS), '-n', '-q', ip], { reject: false });
  if (r.exitCode !== 0) return undefined;
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return m ? Number(m[1]) : undefined;
}
