/** The resources the embedded API server serves, with what discovery says about each. */

export interface ResourceType {
  readonly group: string; // '' for the core group
  readonly version: string;
  readonly plural: string;
  readonly singular: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames?: readonly string[];
  /** Has a /status subresource: writes to the main resource keep .status, /status writes only it. */
  readonly statusSubresource?: boolean;
  /** A review (SelfSubjectAccessReview): create only, answered by the authorizer, never stored. */
  readonly review?: boolean;
}

export const RESOURCES: readonly ResourceType[] = [
  { group: '', version: 'v1', plural: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, shortNames: ['ns'], statusSubresource: true },
  { group: '', version: 'v1', plural: 'nodes', singular: 'node', kind: 'Node', namespaced: false, shortNames: ['no'], statusSubresource: true },
  { group: '', version: 'v1', plural: 'configmaps', singular: 'configmap', kind: 'ConfigMap', namespaced: true, shortNames: ['cm'] },
  { group: '', version: 'v1', plural: 'secrets', singular: 'secret', kind: 'Secret', namespaced: true },
  { group: '', version: 'v1', plural: 'events', singular: 'event', kind: 'Event', namespaced: true, shortNames: ['ev'] },
  { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', singular: 'lease', kind: 'Lease', namespaced: true },
  // what deploy/ installs (stored only: nothing runs them), so the manifests can be applied
  { group: '', version: 'v1', plural: 'serviceaccounts', singular: 'serviceaccount', kind: 'ServiceAccount', namespaced: true, shortNames: ['sa'] },
  { group: 'apps', version: 'v1', plural: 'daemonsets', singular: 'daemonset', kind: 'DaemonSet', namespaced: true, shortNames: ['ds'], statusSubresource: true },
  { group: 'apps', version: 'v1', plural: 'deployments', singular: 'deployment', kind: 'Deployment', namespaced: true, shortNames: ['deploy'], statusSubresource: true },
  { group: 'batch', version: 'v1', plural: 'jobs', singular: 'job', kind: 'Job', namespaced: true, statusSubresource: true },
  { group: 'policy', version: 'v1', plural: 'poddisruptionbudgets', singular: 'poddisruptionbudget', kind: 'PodDisruptionBudget', namespaced: true, shortNames: ['pdb'], statusSubresource: true },
  { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', singular: 'clusterrole', kind: 'ClusterRole', namespaced: false },
  { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterrolebindings', singular: 'clusterrolebinding', kind: 'ClusterRoleBinding', namespaced: false },
  { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', singular: 'role', kind: 'Role', namespaced: true },
  { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', singular: 'rolebinding', kind: 'RoleBinding', namespaced: true },
  // stored only, so that `kubectl describe node` can list a node's pods as it does on a real cluster
  { group: '', version: 'v1', plural: 'pods', singular: 'pod', kind: 'Pod', namespaced: true, shortNames: ['po'], statusSubresource: true },
  // deploy/'s admission policy: stored, and enforced by the server (admission.ts)
  { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'validatingadmissionpolicies', singular: 'validatingadmissionpolicy', kind: 'ValidatingAdmissionPolicy', namespaced: false, statusSubresource: true },
  { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'validatingadmissionpolicybindings', singular: 'validatingadmissionpolicybinding', kind: 'ValidatingAdmissionPolicyBinding', namespaced: false },
  // `kubectl auth can-i` asks these
  { group: 'authorization.k8s.io', version: 'v1', plural: 'selfsubjectaccessreviews', singular: 'selfsubjectaccessreview', kind: 'SelfSubjectAccessReview', namespaced: false, review: true },
];

/** Custom resources the lab's cluster can serve, by the CNI that defines them. */
export const CRD_RESOURCES: Record<'calico' | 'cilium', readonly ResourceType[]> = {
  calico: [{ group: 'crd.projectcalico.org', version: 'v1', plural: 'blockaffinities', singular: 'blockaffinity', kind: 'BlockAffinity', namespaced: false }],
  cilium: [{ group: 'cilium.io', version: 'v2', plural: 'ciliumnodes', singular: 'ciliumnode', kind: 'CiliumNode', namespaced: false, shortNames: ['cn'] }],
};

export const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export function apiVersionOf(rt: ResourceType): string {
  return rt.group === '' ? rt.version : `${rt.group}/${rt.version}`;
}

export function findResource(group: string, version: string, plural: string, served: readonly ResourceType[] = RESOURCES): ResourceType | undefined {
  return served.find((r) => r.group === group && r.version === version && r.plural === plural);
}

export function groups(served: readonly ResourceType[] = RESOURCES): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const r of served) {
    if (r.group === '') continue;
    const versions = map.get(r.group) ?? [];
    if (!versions.includes(r.version)) versions.push(r.version);
    map.set(r.group, versions);
  }
  return map;
}

export function apiResourceList(group: string, version: string, served: readonly ResourceType[] = RESOURCES): Record<string, unknown> | undefined {
  const list = served.filter((r) => r.group === group && r.version === version);
  if (list.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const r of list) {
    resources.push({ name: r.plural, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: r.review ? ['create'] : VERBS, ...(r.shortNames ? { shortNames: r.shortNames } : {}) });
    if (r.statusSubresource) resources.push({ name: `${r.plural}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] });
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group === '' ? version : `${group}/${version}`, resources };
}
