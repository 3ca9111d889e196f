// The agent in production conditions, end to end in the lab with real kernel VXLAN: restarts
// that do not drop a packet, drift repaired without restarts, the VXLAN firewall boundary, no
// masquerade toward the device, the computed MTU, bad hub info, and a cleanup that leaves
// nothing behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { LabDocument } from '../lab/lab.ts';
import { agentArgs } from '../lab/lab.ts';
import { addUnderlayHost } from '../lab/netns.ts';
import { namesFor } from '../lab/addressing.ts';
import { CLI_PATH } from '../lab/processes.ts';
import { HUB_CONFIGMAP } from '../../shared/keys.ts';
import { mergePatch } from '../../shared/kube/client.ts';
import { macFromOverlayIP } from '../../shared/mac.ts';
import { eventually } from '../support/apiserver.ts';
import { E2E_SKIP_REASON, IS_ROOT, cli, httpFromNetns, inNetns, labStatus, labUp, lossFromDevice, pingOnce, answersWithin, labDown, labCore, startAddressEcho, tcpAnswer, droppedVxlan, metricFromNetns } from '../support/lab.ts';

let doc: LabDocument;
let core: CoreV1Api;
const DEV = 'chorus-100000';

function agentURL(n: LabDocument['nodes'][number], path: string): string {
  return n.agentHealthURL.replace('/healthz', path);
}

/** The handle of the agent's nftables table: a table written anew (a replace) gets a new one. */
async function tableHandle(netns: string): Promise<string> {
  const r = await inNetns(netns, ['nft', '-a', 'list', 'table', 'inet', 'chorus-kube-router'], true);
  const handle = /^table inet chorus-kube-router \{ # handle (\d+)/.exec(String(r.stdout))?.[1];
  if (!handle) throw new Error(`no handle in the listing of the agent's table:\n${String(r.stdout)}`);
  return handle;
}

const metric = (n: LabDocument['nodes'][number], name: string): Promise<number> => metricFromNetns(n.netns, n.agentHealthURL, name);

/** ping from the device at 50 pps while `during` runs; returns the packet loss in percent. */
const lossDuring = (ip: string, seconds: number, during: () => Promise<void>, opts: { untilDone?: boolean } = {}): Promise<{ loss: number; output: string }> => lossFromDevice(doc, ip, seconds, during, opts);

describe.skipIf(!IS_ROOT)('agent in production conditions (lab: 2 nodes x 1 pod)', () => {
  beforeAll(async () => {
    doc = await labUp(['--nodes', '2', '--pods-per-node', '1']);
    core = labCore(doc);
  }, 180_000);

  afterAll(async () => {
    await labDown(doc);
  }, 60_000);

  it('serves /healthz, /livez, /readyz and /metrics on the node network, /status on loopback only', async () => {
    const n = doc.nodes[0]!;
    for (const p of ['/healthz', '/livez', '/readyz']) expect((await httpFromNetns(n.netns, agentURL(n, p))).status, p).toBe(200);
    // /status lists VTEPs and peers: on loopback only, not on the node network
    expect((await httpFromNetns(n.netns, agentURL(n, '/status'))).status).toBe(404);
    const status = JSON.parse((await httpFromNetns(n.netns, 'http://127.0.0.1:9644/status')).body) as { node: string; ready: boolean; desired: { overlay: { vxlan: { name: string; mtu: number } } }; observed: { fdb: unknown[] } };
    expect(status).toMatchObject({ node: n.name, ready: true, desired: { overlay: { vxlan: { name: DEV, mtu: 1450 } } } });
    expect(status.observed.fdb.length).toBeGreaterThan(0);
    const metrics = (await httpFromNetns(n.netns, agentURL(n, '/metrics'))).body;
    expect(metrics).toMatch(/^chorus_agent_reconciles_total\{result="ok"\} \d+$/m);
    expect(metrics).toMatch(/^chorus_agent_fdb_entries 2$/m);
    expect(metrics).toMatch(/^chorus_agent_last_success_timestamp_seconds \d+$/m);
    // the process's own series follow the component's: the agent's memory, as an operator sees it
    const rss = Number(/^process_resident_memory_bytes (\d+)$/m.exec(metrics)?.[1]);
    expect(rss).toBeGreaterThan(20 * 2 ** 20);
    expect(metrics).toMatch(/^nodejs_heap_space_size_used_bytes\{space="old"\} \d+$/m);
  });

  it('loses no packet while the agent is restarted by SIGTERM and SIGKILL several times, and keeps its firewall table as it finds it', async () => {
    const pod = doc.nodes[0]!.pods[0]!;
    const handleBefore = await tableHandle(doc.nodes[0]!.netns);
    // the lab restarts a process ~1 s after it dies, with backoff unless it ran 3 s: space the kills.
    // The ping runs until the last restart is done, however long a loaded machine takes for them.
    const { loss, output } = await lossDuring(pod.ip, 120, async () => {
      for (const signal of ['SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGKILL'] as const) {
        const before = (await labStatus()).nodes[0]!.agentPid!;
        process.kill(before, signal);
        await eventually('agent back', async () => {
          const pid = (await labStatus()).nodes[0]!.agentPid;
          return pid !== null && pid !== before ? pid : undefined;
        }, 10_000);
        await new Promise((r) => setTimeout(r, 3_500));
      }
    }, { untilDone: true });
    expect(loss, output).toBe(0);
    // each new agent found the table holding its rules and kept it (a rewrite is a new table, with a new handle)
    expect(await tableHandle(doc.nodes[0]!.netns)).toBe(handleBefore);
    // a budget, not a goal: each round runs `lab status` (a CLI process) several times, seconds each on a loaded machine
  }, 4 * (10_000 + 3_500 + 15_000) + 60_000);

  it('puts back, when it starts, a firewall rule deleted while it was not running', async () => {
    const n = (await labStatus()).nodes[0]!;
    const rules = async (): Promise<string[]> => [...String((await inNetns(n.netns, ['nft', '-a', 'list', 'chain', 'inet', 'chorus-kube-router', 'input'], true)).stdout).matchAll(/^\s*(udp dport .*) # handle (\d+)$/gm)].map((m) => `${m[2]!} ${m[1]!}`);
    const before = await rules();
    expect(before.some((r) => r.includes('saddr != @allowed-vteps'))).toBe(true);
    // frozen, the agent cannot answer the nft monitor event; killed frozen, it never sees the change
    process.kill(n.agentPid!, 'SIGSTOP');
    const guard = before.find((r) => r.includes('saddr != @allowed-vteps'))!;
    await inNetns(n.netns, ['nft', 'delete', 'rule', 'inet', 'chorus-kube-router', 'input', 'handle', guard.split(' ')[0]!], true);
    process.kill(n.agentPid!, 'SIGKILL');
    await eventually('the new agent put the rule back', async () => ((await rules()).some((r) => r.includes('saddr != @allowed-vteps')) ? true : undefined), 30_000);
    expect((await labStatus()).nodes[0]!.agentPid).not.toBe(n.agentPid);
  }, 60_000);

  it('repairs a deleted device, a flushed FDB and a changed MTU without a restart, and counts the repairs', async () => {
    const n = (await labStatus()).nodes[1]!;
    const pid = n.agentPid;
    const repairsBefore = await metric(n, 'chorus_agent_repairs_total');
    // tx checksum offload is off on the agent's device (--tx-checksum-offload off, set over ethtool netlink), as ethtool reads it
    const txChecksum = async (): Promise<string | undefined> => /tx-checksum-ip-generic: (\S+)/.exec(String((await inNetns(n.netns, ['ethtool', '-k', DEV], true)).stdout))?.[1];
    expect(await txChecksum()).toBe('off');
    await inNetns(n.netns, ['ip', 'link', 'del', DEV], true);
    await eventually('device back and pod reachable', async () => ((await pingOnce(doc.device.netns, n.pods[0]!.ip)) ? true : undefined));
    await eventually('tx checksum offload off again on the new device', async () => ((await txChecksum()) === 'off' ? true : undefined));
    await inNetns(n.netns, ['bridge', 'fdb', 'flush', 'dev', DEV], true);
    await eventually('FDB back', async () => (String((await inNetns(n.netns, ['bridge', 'fdb', 'show', 'dev', DEV])).stdout).includes('00:00:00:00:00:00 dst 198.18.0.3') ? true : undefined));
    await inNetns(n.netns, ['ip', 'link', 'set', DEV, 'mtu', '1300'], true);
    await eventually('MTU back to 1450', async () => (String((await inNetns(n.netns, ['ip', 'link', 'show', DEV])).stdout).includes('mtu 1450') ? true : undefined));
    expect(await pingOnce(doc.device.netns, n.pods[0]!.ip)).toBe(true);
    expect((await labStatus()).nodes[1]!.agentPid).toBe(pid);
    expect(await metric(n, 'chorus_agent_repairs_total{kind="device"')).toBeGreaterThanOrEqual(1);
    expect(await metric(n, 'chorus_agent_repairs_total')).toBeGreaterThan(repairsBefore + 2);
  });

  it('drops VXLAN from an underlay host that is not a device VTEP; the device still gets through', async () => {
    const target = doc.nodes[0]!;
    const names = namesFor(doc.prefix);
    const intruder = `${doc.prefix}-x`;
    await addUnderlayHost(names, intruder, 'ul-x', '198.18.0.9');
    const mac = String((await inNetns(target.netns, ["cat", `/sys/class/net/${DEV}/address`], true)).stdout).trim();
    for (const cmd of [
      ['ip', 'link', 'add', DEV, 'type', 'vxlan', 'id', '100000', 'local', '198.18.0.9', 'dstport', '4789', 'nolearning'],
      ['ip', 'addr', 'add', '198.18.16.250/20', 'dev', DEV], ['ip', 'link', 'set', DEV, 'up'],
      ['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', DEV, 'dst', target.underlayIP],
      ['bridge', 'fdb', 'append', mac, 'dev', DEV, 'dst', target.underlayIP],
      ['ip', 'neigh', 'replace', target.overlayIP!, 'lladdr', mac, 'dev', DEV, 'nud', 'permanent'],
      ['ip', 'route', 'add', target.podCIDRs[0]!, 'via', target.overlayIP!, 'dev', DEV],
    ]) await inNetns(intruder, cmd, true);
    const droppedBefore = await droppedVxlan(target.netns);
    expect(await pingOnce(intruder, target.pods[0]!.ip)).toBe(false);
    expect(await droppedVxlan(target.netns)).toBeGreaterThan(droppedBefore);
    expect(await pingOnce(doc.device.netns, target.pods[0]!.ip)).toBe(true);
  });

  it('lets a CNI\'s own VXLAN on the same port (VNI 1) through, while our agents run and restart', async () => {
    const [a, b] = [doc.nodes[0]!, doc.nodes[1]!];
    // what Calico's VXLAN mode does between nodes (its defaults: port 4789; here VNI 1)
    const cni = async (n: typeof a, peer: typeof a, addr: string): Promise<void> => {
      for (const cmd of [
        ['ip', 'link', 'add', 'cnivx1', 'type', 'vxlan', 'id', '1', 'local', n.underlayIP, 'dstport', '4789', 'nolearning'],
        ['ip', 'addr', 'add', `${addr}/24`, 'dev', 'cnivx1'], ['ip', 'link', 'set', 'cnivx1', 'up'],
        ['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'cnivx1', 'dst', peer.underlayIP],
      ]) await inNetns(n.netns, cmd, true);
    };
    await cni(a, b, '198.19.250.1');
    await cni(b, a, '198.19.250.2');
    try {
      await eventually('the CNI overlay answers', async () => ((await pingOnce(a.netns, '198.19.250.2')) ? true : undefined), 10_000);
      const ping = spawn('ip', ['netns', 'exec', a.netns, 'ping', '-i', '0.05', '-c', '160', '-W', '1', '-q', '198.19.250.2']);
      let out = '';
      ping.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const done = new Promise<void>((resolve) => ping.on('close', () => resolve()));
      for (const n of [0, 1]) {
        const before = (await labStatus()).nodes[n]!.agentPid!;
        process.kill(before, 'SIGTERM');
        await eventually('agent back', async () => {
          const pid = (await labStatus()).nodes[n]!.agentPid;
          return pid !== null && pid !== before ? pid : undefined;
        }, 10_000);
      }
      await done;
      expect(/ 0% packet loss/.test(out), out).toBe(true);
      // and our own overlay is unaffected
      expect(await pingOnce(doc.device.netns, a.pods[0]!.ip)).toBe(true);
    } finally {
      for (const n of [a, b]) await inNetns(n.netns, ['ip', 'link', 'del', 'cnivx1']);
    }
  });

  /**
   * A pod with NET_ADMIN/NET_RAW forges our VXLAN toward its own node: its own VXLAN device with a
   * device VTEP as local address, an inner packet to the node's pod-gateway address (which the node
   * would deliver to itself once decapsulated), counted in the node by a table of the test's own.
   */
  async function forge(attackerNetns: string, node: { netns: string; underlayIP: string; podCIDRs: string[] }, nodeMac: string, innerSrc: string): Promise<{ target: string; arrived: () => Promise<number>; cleanup: () => Promise<void> }> {
    const target = node.podCIDRs[0]!.replace(/0\/24$/, '1');
    for (const cmd of [
      ['ip', 'addr', 'add', `${doc.device.underlayIP}/32`, 'dev', 'lo'],
      ['ip', 'link', 'add', 'forge', 'type', 'vxlan', 'id', '100000', 'local', doc.device.underlayIP, 'remote', node.underlayIP, 'dstport', '4789', 'nolearning'],
      ['ip', 'addr', 'add', `${innerSrc}/20`, 'dev', 'forge'], ['ip', 'link', 'set', 'forge', 'up'],
      ['ip', 'neigh', 'replace', target, 'lladdr', nodeMac, 'dev', 'forge', 'nud', 'permanent'],
      ['ip', 'route', 'add', `${target}/32`, 'dev', 'forge', 'src', innerSrc],
    ]) await inNetns(attackerNetns, cmd, true);
    await inNetns(node.netns, ['sh', '-c', `nft add table ip forgecount && nft add chain ip forgecount in '{ type filter hook input priority 0; }' && nft add rule ip forgecount in ip saddr ${innerSrc} counter`], true);
    return {
      target,
      arrived: async () => Number(/packets (\d+)/.exec(String((await inNetns(node.netns, ['nft', 'list', 'chain', 'ip', 'forgecount', 'in'], true)).stdout))?.[1] ?? '0'),
      cleanup: async () => {
        await inNetns(attackerNetns, ['ip', 'link', 'del', 'forge']);
        await inNetns(attackerNetns, ['ip', 'addr', 'del', `${doc.device.underlayIP}/32`, 'dev', 'lo']);
        await inNetns(node.netns, ['nft', 'delete', 'table', 'ip', 'forgecount']);
      },
    };
  }

  it('drops our VXLAN forged from a pod with a device VTEP as its source: nothing reaches its node', async () => {
    const node = doc.nodes[0]!;
    const nodeMac = String((await inNetns(node.netns, ['cat', `/sys/class/net/${DEV}/address`], true)).stdout).trim();
    const f = await forge(node.pods[0]!.netns, node, nodeMac, '198.18.31.250');
    try {
      const droppedBefore = await droppedVxlan(node.netns);
      await inNetns(node.pods[0]!.netns, ['ping', '-c', '5', '-i', '0.2', '-W', '1', '-q', f.target]);
      expect(await droppedVxlan(node.netns)).toBeGreaterThanOrEqual(droppedBefore + 5);
      expect(await f.arrived()).toBe(0);
    } finally {
      await f.cleanup();
    }
  });

  it('drops the same forged VXLAN while a new node\'s agent starts: the table is in place before the device comes up', async () => {
    const added = JSON.parse(String((await cli(['lab', 'add-node', '--pods', '2', '--no-agent'])).stdout)) as LabDocument['nodes'][number];
    const attacker = added.pods[0]!;
    const overlayIP = await eventually('an overlay IP for the new node', async () => (await labStatus()).nodes.find((n) => n.name === added.name)?.overlayIP ?? undefined);
    const f = await forge(attacker.netns, added, macFromOverlayIP(overlayIP), '198.18.31.251');
    // forged packets every 20 ms from before the agent starts until after it is ready
    const flood = spawn('ip', ['netns', 'exec', attacker.netns, 'ping', '-i', '0.02', '-W', '1', '-q', f.target], { stdio: 'ignore' });
    const agent = spawn('ip', ['netns', 'exec', added.netns, process.execPath, '--disable-warning=ExperimentalWarning', CLI_PATH, 'agent', '--kubeconfig', doc.labKubeconfig, '--node-name', added.name, ...agentArgs(added.underlayIP)], { stdio: 'ignore' });
    try {
      // (the attacker pod holds the device's address itself: the device reaches the node's other pod)
      await eventually('the new node answers from the device', async () => ((await pingOnce(doc.device.netns, added.pods[1]!.ip)) ? true : undefined), 30_000);
      await new Promise((r) => setTimeout(r, 500));
      // the packets reached the node and our table dropped them; none reached the node's address, before, during or after the start
      expect(await droppedVxlan(added.netns)).toBeGreaterThan(5);
      expect(await f.arrived()).toBe(0);
    } finally {
      flood.kill('SIGINT');
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
      await f.cleanup();
      await cli(['lab', 'remove-node', added.name], { reject: false });
    }
  });

  it('keeps pod and device addresses unmasqueraded even with the CNI masquerading everything else', async () => {
    const n = doc.nodes[0]!;
    const pod = n.pods[0]!;
    // a flannel-like masquerade for traffic leaving the pod network, plus a masquerade-all toward pods
    await inNetns(n.netns, ['sh', '-c', `nft add table ip cni-masq && nft add chain ip cni-masq post '{ type nat hook postrouting priority srcnat; }' && nft add rule ip cni-masq post ip saddr 198.19.0.0/16 ip daddr != 198.19.0.0/16 masquerade && nft add rule ip cni-masq post oifname cni0 masquerade`], true);
    const onDevice = await startAddressEcho(doc.device.netns, 8081);
    const onPod = await startAddressEcho(pod.netns, 8082);
    try {
      expect(await tcpAnswer(pod.netns, doc.device.overlayIPs[0]!, 8081)).toBe(pod.ip);
      expect(await tcpAnswer(doc.device.netns, pod.ip, 8082)).toBe(doc.device.overlayIPs[0]);
    } finally {
      onDevice.stop();
      onPod.stop();
      await inNetns(n.netns, ['nft', 'delete', 'table', 'ip', 'cni-masq']);
    }
  });

  it('carries full-size packets at the computed MTU (1500 underlay - 50 = 1450) with DF set', async () => {
    const pod = doc.nodes[1]!.pods[0]!;
    const ok = await inNetns(doc.device.netns, ['ping', '-c', '1', '-W', '1', '-M', 'do', '-s', String(1450 - 28), pod.ip]);
    expect(ok.exitCode, String(ok.stdout)).toBe(0);
    const tooBig = await inNetns(doc.device.netns, ['ping', '-c', '1', '-W', '1', '-M', 'do', '-s', String(1450 - 27), pod.ip]);
    expect(tooBig.exitCode).not.toBe(0);
  });

  it('goes not-ready on bad hub info, keeps the last good state and records an Event, then recovers', async () => {
    const n = doc.nodes[0]!;
    const coordinator = (await labStatus()).coordinators[0]!.pid!;
    // hold the coordinator so it does not rewrite the hub info at once
    process.kill(coordinator, 'SIGSTOP');
    try {
      const hub = await core.readNamespacedConfigMap({ name: HUB_CONFIGMAP, namespace: 'chorus-system' });
      await core.patchNamespacedConfigMap({ name: HUB_CONFIGMAP, namespace: 'chorus-system', body: { data: { vni: '0' } } }, mergePatch());
      const notReady = await eventually('agent not ready', async () => {
        const r = await httpFromNetns(n.netns, agentURL(n, '/readyz'));
        return r.status === 503 ? r.body : undefined;
      });
      expect(notReady).toContain('\\"vni\\" must be in 1..16777215');
      expect(await pingOnce(doc.device.netns, n.pods[0]!.ip)).toBe(true);
      const events = await eventually('Event on the Node', async () => {
        const list = await core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${n.name}` });
        return list.items.find((e) => e.reason === 'OverlayInputInvalid');
      });
      expect(events.message).toContain('keeping the last good overlay state');
      await core.patchNamespacedConfigMap({ name: HUB_CONFIGMAP, namespace: 'chorus-system', body: { data: { vni: hub.data!.vni! } } }, mergePatch());
      await eventually('agent ready again', async () => ((await httpFromNetns(n.netns, agentURL(n, '/readyz'))).status === 200 ? true : undefined));
    } finally {
      process.kill(coordinator, 'SIGCONT');
    }
  });

  it('refuses, touching nothing, when another VXLAN device has our VNI on our port, and says why; goes on once it is gone', async () => {
    const added = JSON.parse(String((await cli(['lab', 'add-node', '--pods', '1', '--no-agent'])).stdout)) as LabDocument['nodes'][number];
    const ns = added.netns;
    // a CNI's VXLAN set to our VNI on our port (Calico's defaults, 4096 on 4789, were ours before the default moved)
    await inNetns(ns, ['ip', 'link', 'add', 'vxlan.calico', 'type', 'vxlan', 'id', '100000', 'local', added.underlayIP, 'dstport', '4789', 'nolearning'], true);
    const agent = spawn('ip', ['netns', 'exec', ns, process.execPath, '--disable-warning=ExperimentalWarning', CLI_PATH, 'agent', '--kubeconfig', doc.labKubeconfig, '--node-name', added.name, ...agentArgs(added.underlayIP)], { stdio: 'ignore' });
    try {
      const reason = await eventually('the refusal on /readyz', async () => {
        const r = await httpFromNetns(ns, agentURL(added, '/readyz')).catch(() => undefined);
        return r?.status === 503 && r.body.includes('vxlan.calico') ? r.body : undefined;
      }, 30_000);
      expect(reason).toMatch(/already uses VNI 100000 on UDP port 4789.*give chorus-kube-router another VNI/);
      expect((await inNetns(ns, ['ip', 'link', 'show', DEV])).exitCode).not.toBe(0);
      expect(String((await inNetns(ns, ['ip', '-d', 'link', 'show', 'vxlan.calico'], true)).stdout)).toMatch(/vxlan id 100000/);
      await eventually('an Event on the Node', async () => {
        const events = await core.listNamespacedEvent({ namespace: 'default' });
        return events.items.some((e) => e.involvedObject.name === added.name && e.reason === 'OverlayInputInvalid' && (e.message ?? '').includes('vxlan.calico')) ? true : undefined;
      });
      // doctor names the clash with its fix
      const doctor = JSON.parse(String((await cli(['lab', 'doctor', added.name, '--json'], { reject: false })).stdout)) as { checks: { check: string; ok: boolean; detail: string; fix?: string }[] };
      expect(doctor.checks.find((c) => !c.ok && c.check === 'VXLAN port and VNI')).toMatchObject({ detail: expect.stringContaining('vxlan.calico'), fix: expect.stringContaining('--vni') });
      // the operator removes the clash (or picks another VNI): the agent goes on by itself
      await inNetns(ns, ['ip', 'link', 'del', 'vxlan.calico'], true);
      await eventually('agent ready', async () => ((await httpFromNetns(ns, agentURL(added, '/readyz')).catch(() => undefined))?.status === 200 ? true : undefined), 30_000);
      expect(await answersWithin(doc.device.netns, added.pods[0]!.ip, 10_000)).toBe(true);
    } finally {
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
      await cli(['lab', 'remove-node', added.name], { reject: false });
    }
  });

  it('cleanup leaves links, FDB, static neighbours, routes and the ruleset exactly as before the agent ran', async () => {
    const added = JSON.parse(String((await cli(['lab', 'add-node', '--pods', '1', '--no-agent'])).stdout)) as LabDocument['nodes'][number];
    const ns = added.netns;
    // kernel state the agent could have touched, without what time alone changes (bridge timers,
    // IPv6 link-local addresses finishing DAD)
    const snapshot = async (): Promise<unknown[]> => {
      const [links, ...texts] = await Promise.all([
        ['ip', '-j', '-d', 'link', 'show'], ['bridge', 'fdb', 'show', 'nud', 'permanent'], ['ip', 'neigh', 'show', 'nud', 'permanent'],
        ['ip', '-4', 'route', 'show', 'table', 'all'], ['nft', 'list', 'ruleset'], ['sh', '-c', 'grep . /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/*/rp_filter'],
      ].map(async (c) => String((await inNetns(ns, c, true)).stdout)));
      const linkView = (JSON.parse(links ?? '[]') as { ifname: string; mtu: number; address: string; flags: string[]; master?: string; linkinfo?: { info_kind?: string } }[])
        .map((l) => ({ ifname: l.ifname, mtu: l.mtu, address: l.address, flags: [...l.flags].sort(), master: l.master ?? null, kind: l.linkinfo?.info_kind ?? null }));
      return [linkView, ...texts];
    };
    const before = await snapshot();
    const agent = spawn('ip', ['netns', 'exec', ns, process.execPath, '--disable-warning=ExperimentalWarning', CLI_PATH, 'agent', '--kubeconfig', doc.labKubeconfig, '--node-name', added.name, ...agentArgs(added.underlayIP)], { stdio: 'ignore' });
    try {
      await eventually('agent ready', async () => {
        const r = await httpFromNetns(ns, agentURL(added, '/readyz')).catch(() => undefined);
        return r?.status === 200 ? true : undefined;
      }, 30_000);
      // the agent is ready once its own side is; the device gets the node's entry on its own time
      expect(await answersWithin(doc.device.netns, added.pods[0]!.ip, 10_000)).toBe(true);
    } finally {
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
    }
    // SIGTERM leaves the data plane in place ...
    expect(await pingOnce(doc.device.netns, added.pods[0]!.ip)).toBe(true);
    expect(before).not.toEqual(await snapshot());
    // ... and cleanup removes exactly what the agent made
    await inNetns(ns, [process.execPath, '--disable-warning=ExperimentalWarning', CLI_PATH, 'agent', 'cleanup'], true);
    expect(await snapshot()).toEqual(before);
  });
});

if (!IS_ROOT) {
  console.warn(E2E_SKIP_REASON);
  describe(E2E_SKIP_REASON, () => {
    it.skip('agent end to end', () => undefined);
  });
}
