// The RBAC audit: the agent, the coordinator and the gateway run in the lab as their own
// ServiceAccounts (each its own token), through the life of a cluster: start, node join and
// leave, a node that cannot be served, bad hub info, a coordinator restart (Lease release and
// takeover), Calico and Cilium IPAM, Citrix mode with a second instance (F5) beside it. The API server records every (verb, resource,
// namespace, name, user). The test fails if deploy/base/rbac.yaml does not grant a request made, or
// grants something no component used.
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord } from '../apiserver/server.ts';
import { INSTANCE_B_COMPONENTS, LAB_COMPONENTS, serviceAccountUser, type LabDocument } from '../lab/lab.ts';
import { eventually } from '../support/apiserver.ts';
import { E2E_SKIP_REASON, IS_ROOT, cli, labCore, labDown, labStatus, labUp } from '../support/lab.ts';
import { DEPLOY_DIR, installManifests, renderedManifests } from '../support/manifests.ts';
import { auditRbac } from '../support/rbac.ts';

const users = LAB_COMPONENTS.map(serviceAccountUser);
const records: AuditRecord[] = [];
let doc: LabDocument | undefined;

function collect(d: LabDocument): void {
  for (const line of readFileSync(d.apiServer.auditFile, 'utf8').split('\n')) if (line.trim() !== '') records.push(JSON.parse(line) as AuditRecord);
}

async function eventFrom(d: LabDocument, component: string, reason: string): Promise<void> {
  await eventually(`a ${reason} Event from the ${component}`, async () => {
    const events = await labCore(d).listNamespacedEvent({ namespace: 'default' });
    return events.items.some((e) => e.reason === reason && e.source?.component === `chorus-kube-router-${component}`) ? true : undefined;
  }, 20_000);
}

afterAll(async () => {
  await labDown(doc);
}, 60_000);

describe.skipIf(!IS_ROOT)('RBAC audit of deploy/base/rbac.yaml against what the components do', () => {
  it('a cluster\'s life with node IPAM: every request granted', async () => {
    doc = await labUp(['--nodes', '2', '--pods-per-node', '1']);
    const core = labCore(doc);
    const added = JSON.parse(String((await cli(['lab', 'add-node', '--pods', '1'])).stdout)) as LabDocument['nodes'][number];
    await cli(['lab', 'remove-node', added.name]);
    // a node without an address: the coordinator records an Event on it
    await core.createNode({ body: { metadata: { name: 'no-address' } } });
    await eventFrom(doc, 'coordinator', 'OverlayNotServed');
    // bad hub info (the coordinator puts it right again): the agents record an Event
    await core.patchNamespacedConfigMap({ name: 'chorus-kube-router-hub', namespace: 'chorus-system', body: [{ op: 'replace', path: '/data/vni', value: 'not-a-number' }] });
    await eventFrom(doc, 'agent', 'OverlayInputInvalid');
    // renewals, then a restart: the Lease is released and taken over
    await new Promise((r) => setTimeout(r, 2_500));
    const pid = (await labStatus()).coordinators[0]?.pid ?? 0;
    process.kill(pid, 'SIGTERM');
    await eventually('coordinator back', async () => {
      const now = (await labStatus()).coordinators[0]?.pid;
      return now !== null && now !== undefined && now !== pid ? now : undefined;
    }, 15_000);
    await new Promise((r) => setTimeout(r, 2_500));
    collect(doc);
    await labDown(doc);
    doc = undefined;
    const audit = auditRbac(records, installManifests(), users);
    expect(audit.denied).toEqual([]);
  }, 180_000);

  it.each([['calico'], ['cilium']])('with %s IPAM: every request granted', async (ipam) => {
    doc = await labUp(['--nodes', '1', '--pods-per-node', '1', '--ipam', ipam]);
    collect(doc);
    await labDown(doc);
    doc = undefined;
    expect(auditRbac(records, installManifests(), users).denied).toEqual([]);
  }, 120_000);

  it('Citrix mode, with instance b (deploy/instance-b) on an F5 beside it: every request of both instances granted', async () => {
    doc = await labUp(['--nodes', '2', '--pods-per-node', '1', '--device', 'citrix', '--second-instance', 'f5']);
    const added = JSON.parse(String((await cli(['lab', 'add-node', '--pods', '1'])).stdout)) as LabDocument['nodes'][number];
    await cli(['lab', 'remove-node', added.name]);
    await new Promise((r) => setTimeout(r, 2_500));
    const before = records.length;
    collect(doc);
    await labDown(doc);
    doc = undefined;
    const usersB = INSTANCE_B_COMPONENTS.map(serviceAccountUser);
    expect(records.slice(before).some((r) => r.user === serviceAccountUser('coordinator-b')), 'instance b\'s coordinator made requests').toBe(true);
    expect(records.slice(before).some((r) => r.user === serviceAccountUser('agent-b')), 'instance b\'s agents made requests').toBe(true);
    expect(auditRbac(records, [...installManifests(), ...renderedManifests(join(DEPLOY_DIR, 'instance-b'))], [...users, ...usersB]).denied).toEqual([]);
  }, 180_000);

  it('every grant was used by some component (nothing granted that the code does not need)', () => {
    for (const u of users) expect(records.some((r) => r.user === u), `${u} made requests`).toBe(true);
    expect(auditRbac(records, installManifests(), users).unused).toEqual([]);
  });
});

if (!IS_ROOT) {
  console.warn(E2E_SKIP_REASON);
  describe(E2E_SKIP_REASON, () => {
    it.skip('RBAC audit', () => undefined);
  });
}
