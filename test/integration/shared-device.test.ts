// Several clusters on one device (issue: several clusters per device). Each cluster has its own
// embedded API server, so its identity is its own kube-system namespace's UID, derived as in
// production; its coordinator programs the same NITRO or iControl emulator. Clusters with their
// own VNIs both converge and stay quiet over resyncs; a cluster whose VNI another cluster holds
// refuses, with the owner named on each of its Nodes, and writes nothing; one cluster's teardown
// leaves the device exactly as the other cluster's objects alone made it.
import { afterEach, describe, expect, it } from 'vitest';
import { CoreV1Api, type V1Node } from '@kubernetes/client-node';
import type { Coordinator } from '../../coordinator/coordinator.ts';
import { clusterIdFromApi } from '../../coordinator/cluster-identity.ts';
import { diffDevice, type DeviceDriver } from '../../coordinator/drivers/driver.ts';
import type { OverlayConfig } from '../../coordinator/plan.ts';
import { DEVICE_STATUS_CONFIGMAP } from '../../shared/keys.ts';
import { silentLogger } from '../../shared/log.ts';
import { eventually, startTestApiServer, type TestApiServer } from '../support/apiserver.ts';
import { startCoordinator } from '../support/coordinator.ts';
import { citrixDriver, startNitroEmulator } from '../support/nitro.ts';
import { f5Driver, startIControlEmulator } from '../support/icontrol.ts';

interface SharedDevice {
  driver(clusterId: string, overlay: OverlayConfig): DeviceDriver;
  /** Everything configured on the device, as text (the device's own entries and counters aside). */
  snapshot(): string;
  writes(): number;
  close(): Promise<void>;
}

async function nitroDevice(): Promise<SharedDevice> {
  const { emulator, url, caFile } = await startNitroEmulator();
  // what the operator prepares: the SNIP the VTEP is bound to
  emulator.store.add('nsip', { ipaddress: '198.18.0.3', netmask: '255.255.240.0', type: 'SNIP' });
  return {
    driver: (clusterId, overlay) => citrixDriver(url, caFile, silentLogger(), { clusterId, vni: overlay.vni, overlayNetwork: overlay.overlayNetwork }),
    snapshot: () => JSON.stringify([...emulator.store.objects.keys()].sort().map((r) => [r, emulator.store.configured(r).map((o) => JSON.stringify(o)).sort()])),
    writes: () => emulator.writes().filter((c) => c.action !== 'save').length,
    close: () => emulator.close(),
  };
}

async function icontrolDevice(): Promise<SharedDevice> {
  const { emulator, url, caFile } = await startIControlEmulator();
  return {
    driver: (clusterId, overlay) => f5Driver(url, caFile, silentLogger(), { clusterId, namePrefix: `chorus-${overlay.vni}` }),
    snapshot: () => JSON.stringify([
      [...emulator.store.objects.keys()].sort().map((k) => [k, [...(emulator.store.objects.get(k)?.values() ?? [])].map((o) => JSON.stringify(o)).sort()]),
      [...emulator.store.records.keys()].sort().map((k) => [k, [...(emulator.store.records.get(k) ?? new Map<string, string>())].sort()]),
    ]),
    writes: () => emulator.calls.filter((c) => c.write && !c.path.includes('/sys/config')).length,
    close: () => emulator.close(),
  };
}

interface Cluster {
  readonly api: TestApiServer;
  readonly core: CoreV1Api;
  readonly id: string;
  readonly overlay: OverlayConfig;
  readonly nodes: readonly string[];
  coordinator?: Coordinator;
}

const clusters: Cluster[] = [];
let device: SharedDevice | undefined;

/** A cluster with its own API server and two nodes (underlay 198.18.<n>.x, pods 198.19.<n*10+i>.0/24). */
async function cluster(n: number, overlay: OverlayConfig): Promise<Cluster> {
  const api = await startTestApiServer();
  const core = api.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'chorus-system' } } });
  const nodes = [1, 2].map((i) => `c${n}-node-${i}`);
  for (let i = 1; i <= 2; i++) {
    const node: V1Node = { metadata: { name: `c${n}-node-${i}` }, spec: { podCIDRs: [`198.19.${n * 10 + i}.0/24`] }, status: { addresses: [{ type: 'InternalIP', address: `198.18.${n}.${i}` }] } };
    await core.createNode({ body: node });
  }
  const id = await clusterIdFromApi({ kubeConfig: api.kubeConfig, log: silentLogger() });
  const c: Cluster = { api, core, id, overlay, nodes };
  clusters.push(c);
  return c;
}

function run(c: Cluster, d: SharedDevice): Coordinator {
  c.coordinator = startCoordinator(c.api.kubeConfig, `coordinator-${c.id.slice(0, 8)}`, c.overlay, { driver: d.driver(c.id, c.overlay), clusterId: c.id, deviceResyncMs: 60_000, podCidrSource: 'node' });
  return c.coordinator;
}

async function deviceStatus(c: Cluster): Promise<Record<string, string>> {
  return (await c.core.readNamespacedConfigMap({ name: DEVICE_STATUS_CONFIGMAP, namespace: 'chorus-system' }).catch(() => ({ data: {} }))).data ?? {};
}

async function programmed(c: Cluster): Promise<void> {
  await eventually(`cluster ${c.id} programmed`, async () => {
    const s = await deviceStatus(c);
    const dev = c.coordinator?.status().device as { converged: boolean } | undefined;
    return c.nodes.every((n) => s[n] === 'programmed') && dev?.converged ? true : undefined;
  }, 20_000);
}

async function resyncs(c: Cluster, times: number): Promise<void> {
  const loop = c.coordinator?.device.loop;
  if (!loop) throw new Error('not running');
  for (let i = 0; i < times; i++) {
    loop.trigger('timer');
    await loop.idle();
  }
}

afterEach(async () => {
  for (const c of clusters.splice(0)) {
    await c.coordinator?.stop();
    await c.api.close();
  }
  await device?.close();
  device = undefined;
});

const A: OverlayConfig = { vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'] };
const B: OverlayConfig = { vni: 4097, port: 4789, overlayNetwork: '198.18.32.0/20', deviceVTEPs: ['198.18.0.3'] };
// the same VNI as B, another overlay network
const C: OverlayConfig = { vni: 4097, port: 4789, overlayNetwork: '198.18.48.0/20', deviceVTEPs: ['198.18.0.3'] };

describe.each([
  { name: 'Citrix ADC (NITRO emulator)', make: nitroDevice, conflict: (vni: number) => new RegExp(`^failed: VXLAN ${vni} on the ADC belongs to cluster "([^"]+)"`) },
  { name: 'F5 BIG-IP (iControl emulator)', make: icontrolDevice, conflict: (vni: number) => new RegExp(`^failed: tunnel /Common/chorus-${vni} on the BIG-IP belongs to cluster "([^"]+)"`) },
])('two clusters on one $name', ({ make, conflict }) => {
  it('both converge with their own VNIs, resyncs write nothing, a third cluster on a VNI already held refuses on every Node, and one teardown leaves the other untouched', async () => {
    const d = await make();
    device = d;
    const b = await cluster(2, B);
    const a = await cluster(1, A);
    const c = await cluster(3, C);
    // identities come from each cluster's own kube-system namespace
    expect(new Set([a.id, b.id, c.id]).size).toBe(3);
    expect(b.id).toBe((await b.core.readNamespace({ name: 'kube-system' })).metadata?.uid);

    run(b, d);
    await programmed(b);
    const onlyB = d.snapshot();
    run(a, d);
    await programmed(a);
    expect(d.snapshot()).not.toBe(onlyB);

    // three resyncs of each: both read the device, neither writes
    const quiet = d.writes();
    await resyncs(a, 3);
    await resyncs(b, 3);
    expect(d.writes()).toBe(quiet);

    // cluster C wants VNI 4097, which B holds: every one of its Nodes says who owns it, and C writes nothing
    run(c, d);
    await eventually('C refused on both nodes', async () => {
      const s = await deviceStatus(c);
      const reasons = c.nodes.map((n) => conflict(C.vni).exec(s[n] ?? '')?.[1]);
      return reasons.every((owner) => owner === b.id) ? true : undefined;
    }, 20_000);
    const events = await c.core.listNamespacedEvent({ namespace: 'default' });
    expect(events.items.filter((e) => e.reason === 'DeviceOwnedByAnotherCluster').map((e) => e.involvedObject.name).sort()).toEqual(['c3-node-1', 'c3-node-2']);
    expect(String((c.coordinator?.status().device as { lastError: string }).lastError)).toContain(`this cluster is "${c.id}"`);
    await resyncs(c, 2);
    expect(d.writes()).toBe(quiet);

    // A's teardown removes all of A and nothing of B: the device is as B alone made it
    await a.coordinator?.stop();
    a.coordinator = undefined;
    const driver = d.driver(a.id, A);
    const owned = await driver.observe();
    expect(owned.length).toBeGreaterThan(5);
    expect(await driver.apply(diffDevice([], owned), () => [])).toEqual([]);
    expect(await driver.observe()).toEqual([]);
    await driver.close();
    expect(d.snapshot()).toBe(onlyB);
    // and B, still running, finds nothing to change
    const afterTeardown = d.writes();
    await resyncs(b, 1);
    expect(d.writes()).toBe(afterTeardown);
    const statusB = await deviceStatus(b);
    expect(b.nodes.map((n) => statusB[n])).toEqual(['programmed', 'programmed']);
  });
});
