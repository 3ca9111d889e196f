// deploy/base/admission-policy.yaml, evaluated as kube-apiserver evaluates a ValidatingAdmissionPolicy
// (test/apiserver/admission.ts, over a CEL implementation nobody on the project wrote): a
// coordinator may change only its own two annotations on a Node; its instance's, if it has one.
import { describe, expect, it } from 'vitest';
import { admit, type AdmissionRequest } from '../apiserver/admission.ts';
import { loadManifests } from '../support/manifests.ts';

const manifests = loadManifests().filter((m) => m.file === 'base/admission-policy.yaml');
const policies = manifests.filter((m) => m.kind === 'ValidatingAdmissionPolicy') as unknown as Record<string, unknown>[];
const bindings = manifests.filter((m) => m.kind === 'ValidatingAdmissionPolicyBinding') as unknown as Record<string, unknown>[];

const SA = 'system:serviceaccount:chorus-system:';
const node = (annotations: Record<string, string>, labels: Record<string, string> = { 'kubernetes.io/hostname': 'n1' }, spec: Record<string, unknown> = { podCIDRs: ['198.19.0.0/24'] }): Record<string, unknown> => ({
  apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', annotations, labels }, spec, status: { addresses: [{ type: 'InternalIP', address: '198.18.1.1' }] },
});
const before = node({ 'node.alpha.kubernetes.io/ttl': '0', 'kube-router.chorus.io/overlay-ip': '198.18.16.2' });

function request(user: string, object: Record<string, unknown>, oldObject: Record<string, unknown> | null = before, operation: AdmissionRequest['operation'] = 'UPDATE'): AdmissionRequest {
  return { operation, group: '', version: 'v1', resource: 'nodes', name: 'n1', object, oldObject, userInfo: { username: user, groups: ['system:serviceaccounts'] } };
}
const withAnnotations = (extra: Record<string, string | undefined>): Record<string, unknown> => {
  const a: Record<string, string> = { 'node.alpha.kubernetes.io/ttl': '0', 'kube-router.chorus.io/overlay-ip': '198.18.16.2' };
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete a[k]; else a[k] = v;
  return node(a);
};

describe('the coordinator\'s Node admission policy (deploy/base/admission-policy.yaml)', () => {
  it('is shipped with Deny bindings', () => {
    expect(policies).toHaveLength(2);
    expect(bindings.map((b) => (b.spec as { validationActions: string[] }).validationActions)).toEqual([['Deny'], ['Deny']]);
  });

  it('lets the coordinator change its own two annotations', () => {
    expect(admit(policies, bindings, request(`${SA}chorus-kube-router-coordinator`, withAnnotations({ 'kube-router.chorus.io/overlay-ip': '198.18.16.9', 'kube-router.chorus.io/vtep-mac': '02:c4:c6:12:10:09' })))).toBeUndefined();
  });

  it.each([
    ['another annotation', withAnnotations({ 'example.com/owner': 'x' }), /may change only its own annotations/],
    ['removing another annotation', withAnnotations({ 'node.alpha.kubernetes.io/ttl': undefined }), /may change only its own annotations/],
    ['an instance\'s annotation', withAnnotations({ 'b.kube-router.chorus.io/overlay-ip': '198.18.32.9' }), /may change only its own annotations/],
    ['a label', node({ 'node.alpha.kubernetes.io/ttl': '0', 'kube-router.chorus.io/overlay-ip': '198.18.16.2' }, { 'kubernetes.io/hostname': 'n1', 'node-role.kubernetes.io/control-plane': '' }), /may not change a Node's labels/],
    ['a taint', node({ 'node.alpha.kubernetes.io/ttl': '0', 'kube-router.chorus.io/overlay-ip': '198.18.16.2' }, undefined, { podCIDRs: ['198.19.0.0/24'], taints: [{ key: 'x', effect: 'NoSchedule' }] }), /may not change a Node's spec/],
  ])('refuses the coordinator %s, with 403 and kube-apiserver\'s message', (_what, object, message) => {
    const d = admit(policies, bindings, request(`${SA}chorus-kube-router-coordinator`, object));
    expect(d).toMatchObject({ code: 403, reason: 'Forbidden' });
    expect(d?.message).toMatch(/^ValidatingAdmissionPolicy 'chorus-kube-router-coordinator-node-writes' with binding 'chorus-kube-router-coordinator-node-writes' denied request: /);
    expect(d?.message).toMatch(message);
  });

  it('lets an instance\'s coordinator change only that instance\'s annotations', () => {
    const own = withAnnotations({ 'b.kube-router.chorus.io/overlay-ip': '198.18.32.2', 'b.kube-router.chorus.io/vtep-mac': '02:c4:c6:12:20:02' });
    expect(admit(policies, bindings, request(`${SA}chorus-kube-router-coordinator-b`, own))).toBeUndefined();
    expect(admit(policies, bindings, request(`${SA}chorus-kube-router-coordinator-bb`, own))).toMatchObject({ code: 403 });
    expect(admit(policies, bindings, request(`${SA}chorus-kube-router-coordinator-b`, withAnnotations({ 'kube-router.chorus.io/overlay-ip': '198.18.16.3' })))).toMatchObject({ code: 403 });
    expect(admit(policies, bindings, request(`${SA}chorus-kube-router-coordinator-b`, withAnnotations({ 'ab.kube-router.chorus.io/overlay-ip': '1' })))).toMatchObject({ code: 403 });
  });

  it('does not apply to anyone else, or to creating a Node', () => {
    const labelled = node({}, { 'kubernetes.io/hostname': 'n1', team: 'x' });
    expect(admit(policies, bindings, request(`${SA}chorus-kube-router-agent`, labelled))).toBeUndefined();
    expect(admit(policies, bindings, request('kubernetes-admin', labelled))).toBeUndefined();
    expect(admit(policies, bindings, request(`${SA}chorus-kube-router-coordinator`, labelled, null, 'CREATE'))).toBeUndefined();
  });
});

describe('the coordinator\'s ConfigMap admission policy', () => {
  const cm = (name: string): Record<string, unknown> => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'chorus-system' }, data: {} });
  const write = (user: string, name: string, operation: AdmissionRequest['operation'] = 'CREATE'): ReturnType<typeof admit> =>
    admit(policies, bindings, { operation, group: '', version: 'v1', resource: 'configmaps', name, namespace: 'chorus-system', object: cm(name), oldObject: operation === 'CREATE' ? null : cm(name), userInfo: { username: user, groups: [] } });
  it('lets a coordinator write the tables only', () => {
    for (const name of ['chorus-kube-router-hub', 'chorus-kube-router-device', 'chorus-kube-router-peers-0', 'chorus-kube-router-peers-12', 'chorus-kube-router-b-hub']) {
      expect(write(`${SA}chorus-kube-router-coordinator`, name), name).toBeUndefined();
      expect(write(`${SA}chorus-kube-router-coordinator-b`, name, 'UPDATE'), name).toBeUndefined();
    }
    for (const name of ['chorus-kube-router-coordinator-settings', 'kube-root-ca.crt', 'chorus-kube-router-peers-x', 'other-hub']) {
      expect(write(`${SA}chorus-kube-router-coordinator`, name), name).toMatchObject({ code: 403, message: expect.stringContaining('may write only its tables') });
    }
    expect(write('kubernetes-admin', 'chorus-kube-router-coordinator-settings')).toBeUndefined();
  });
});
