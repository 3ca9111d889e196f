// The coordinator end to end with a Linux device: pod CIDRs from Calico IPAM blocks and from
// CiliumNodes reach the device as routes; a route deleted by hand on the device comes back; a
// node deleted while the coordinator was down disappears from the device after it starts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CustomObjectsApi, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { LabDocument } from '../lab/lab.ts';
import { eventually } from '../support/apiserver.ts';
import { E2E_SKIP_REASON, IS_ROOT, cli, inNetns, labStatus, labUp, pingOnce, labDown, labKubeConfig } from '../support/lab.ts';

const DEV = 'chorus-100000';
let doc: LabDocument;
let kc: KubeConfig;

async function deviceRoutes(): Promise<string> {
  return String((await inNetns(doc.device.netns, ['ip', 'route', 'show', 'dev', DEV], true)).stdout);
}

describe.skipIf(!IS_ROOT)('coordinator end to end (lab with Calico IPAM blocks)', () => {
  beforeAll(async () => {
    doc = await labUp(['--nodes', '2', '--pods-per-node', '1', '--ipam', 'calico']);
    kc = labKubeConfig(doc);
  }, 180_000);

  afterAll(async () => {
    await labDown(doc);
  }, 60_000);

  it('routes each node\'s Calico blocks (not spec.podCIDRs, which are empty) and reaches its pods', async () => {
    const nodes = await kc.makeApiClient(CoreV1Api).listNode();
    expect(nodes.items.every((n) => (n.spec?.podCIDRs ?? []).length === 0)).toBe(true);
    for (const n of doc.nodes) expect(await deviceRoutes()).toContain(`${n.podCIDRs[0]!} via ${n.overlayIP!}`);
    for (const n of doc.nodes) expect(await pingOnce(doc.device.netns, n.pods[0]!.ip)).toBe(true);
  });

  it('follows a node\'s blocks as they come and go', async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const n1 = doc.nodes[0]!;
    const block = { group: 'crd.projectcalico.org', version: 'v1', plural: 'blockaffinities' };
    await custom.createClusterCustomObject({ ...block, body: { apiVersion: 'crd.projectcalico.org/v1', kind: 'BlockAffinity', metadata: { name: 'node-1-extra' }, spec: { node: 'node-1', cidr: '198.19.200.0/26', state: 'confirmed', deleted: 'false' } } });
    await eventually('extra block routed', async () => ((await deviceRoutes()).includes(`198.19.200.0/26 via ${n1.overlayIP!}`) ? true : undefined));
    await custom.deleteClusterCustomObject({ ...block, name: 'node-1-extra' });
    await eventually('extra block unrouted', async () => (!(await deviceRoutes()).includes('198.19.200.0/26') ? true : undefined));
  });

  it('puts back a route deleted by hand on the device', async () => {
    const n2 = doc.nodes[1]!;
    await inNetns(doc.device.netns, ['ip', 'route', 'del', n2.podCIDRs[0]!, 'dev', DEV], true);
    await eventually('route back', async () => ((await deviceRoutes()).includes(`${n2.podCIDRs[0]!} via ${n2.overlayIP!}`) ? true : undefined));
    expect(await pingOnce(doc.device.netns, n2.pods[0]!.ip)).toBe(true);
  });

  it('removes from the device a node deleted while the coordinator was down, once it starts', async () => {
    const n2 = doc.nodes[1]!;
    const pid = (await labStatus()).coordinators[0]!.pid!;
    process.kill(pid, 'SIGSTOP');
    await kc.makeApiClient(CoreV1Api).deleteNode({ name: n2.name });
    await new Promise((r) => setTimeout(r, 1_000));
    // nobody has updated the peer table: the device still routes to the deleted node
    expect(await deviceRoutes()).toContain(n2.podCIDRs[0]);
    process.kill(pid, 'SIGKILL');
    await eventually('a new coordinator process', async () => {
      const now = (await labStatus()).coordinators[0]!.pid;
      return now !== null && now !== pid ? now : undefined;
    }, 15_000);
    // the device removes a node's route, then its neighbour and FDB entries: wait for all of them
    await eventually('node-2 gone from the device (route and FDB entry)', async () => {
      const fdb = String((await inNetns(doc.device.netns, ['bridge', 'fdb', 'show', 'dev', DEV], true)).stdout);
      return !(await deviceRoutes()).includes(n2.podCIDRs[0]!) && !fdb.includes(`dst ${n2.underlayIP} `) ? true : undefined;
    }, 30_000);
    expect(await pingOnce(doc.device.netns, doc.nodes[0]!.pods[0]!.ip)).toBe(true);
  });
});

describe.skipIf(!IS_ROOT)('coordinator end to end (lab with Cilium cluster-pool IPAM)', () => {
  it('routes CiliumNode spec.ipam.podCIDRs and reaches every pod', async () => {
    const r = await cli(['lab', 'run', '--once', '--nodes', '2', '--pods-per-node', '1', '--ipam', 'cilium']);
    expect(r.exitCode).toBe(0);
    expect(String(r.stdout)).toContain('2/2 pods reachable from the device');
  });
});

if (!IS_ROOT) {
  console.warn(E2E_SKIP_REASON);
  describe(E2E_SKIP_REASON, () => {
    it.skip('coordinator end to end', () => undefined);
  });
}
