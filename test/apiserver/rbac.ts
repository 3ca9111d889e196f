/**
 * RBAC as kube-apiserver's authorizer evaluates it, over the Roles, ClusterRoles and bindings
 * stored in the server: a ClusterRoleBinding grants everywhere, a RoleBinding only in its
 * namespace; a rule matches on apiGroup, resource (with /subresource), verb and, when it lists
 * resourceNames, the object's name (list/watch: the metadata.name of the field selector; create
 * is never narrowed by name). Subjects are Users, Groups and ServiceAccounts, whose users are
 * `system:serviceaccount:<ns>:<name>` in the groups `system:serviceaccounts`,
 * `system:serviceaccounts:<ns>` and `system:authenticated`.
 *
 * What kube-apiserver's bootstrap roles give every authenticated user is built in: discovery and
 * version URLs (system:discovery, system:public-info-viewer) and self subject access and rules
 * reviews (system:basic-user). `system:masters` (the lab's admin) is allowed everything.
 */

export interface PolicyRule {
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly nonResourceURLs?: readonly string[];
}

export interface Subject { readonly kind: string; readonly name: string; readonly namespace?: string; readonly apiGroup?: string }

/** Who is asking: the authenticated (or impersonated) user and its groups. */
export interface UserInfo { readonly name: string; readonly groups: readonly string[] }

/** What is asked, as kube-apiserver's RequestInfo describes a resource request. */
export interface ResourceAttributes {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource?: string | undefined;
  readonly namespace?: string | undefined;
  /** The object's name, or for list/watch the `metadata.name=` of the field selector. */
  readonly name?: string | undefined;
}

/** The RBAC objects the authorizer reads, as stored. */
export interface RbacSource {
  clusterRoles(): readonly { metadata: { name?: string }; rules?: readonly PolicyRule[] }[];
  roles(namespace: string): readonly { metadata: { name?: string }; rules?: readonly PolicyRule[] }[];
  clusterRoleBindings(): readonly Binding[];
  roleBindings(namespace: string): readonly Binding[];
}

export interface Binding {
  readonly metadata: { name?: string; namespace?: string };
  readonly roleRef: { readonly kind: string; readonly name: string };
  readonly subjects?: readonly Subject[];
}

export const MASTERS_GROUP = 'system:masters';
const AUTHENTICATED = 'system:authenticated';

/** The user and groups of a ServiceAccount, as the token authenticator (and impersonation) gives them. */
export function serviceAccountUserInfo(user: string): UserInfo {
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user);
  if (!m) return { name: user, groups: [AUTHENTICATED] };
  return { name: user, groups: ['system:serviceaccounts', `system:serviceaccounts:${m[1] ?? ''}`, AUTHENTICATED] };
}

/** The user a binding subject stands for (ServiceAccount or User); groups are matched apart. */
export function subjectUser(s: Subject): string | undefined {
  if (s.kind === 'ServiceAccount') return `system:serviceaccount:${s.namespace ?? ''}:${s.name}`;
  return s.kind === 'User' ? s.name : undefined;
}

function subjectMatches(s: Subject, user: UserInfo): boolean {
  if (s.kind === 'Group') return user.groups.includes(s.name);
  return subjectUser(s) === user.name;
}

const has = (list: readonly string[] | undefined, value: string): boolean => list !== undefined && (list.includes('*') || list.includes(value));

/** Whether one rule allows a resource request. */
export function ruleAllows(rule: PolicyRule, a: ResourceAttributes): boolean {
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  if (!has(rule.verbs, a.verb) || !has(rule.apiGroups, a.group)) return false;
  const resources = rule.resources ?? [];
  const resourceOk = resources.includes('*') || resources.includes(resource) || (a.subresource !== undefined && resources.includes(`*/${a.subresource}`));
  if (!resourceOk) return false;
  if (!rule.resourceNames || rule.resourceNames.length === 0) return true;
  return a.verb !== 'create' && a.name !== undefined && rule.resourceNames.includes(a.name);
}

function nonResourceAllowed(rule: PolicyRule, verb: string, path: string): boolean {
  if (!has(rule.verbs, verb)) return false;
  return (rule.nonResourceURLs ?? []).some((u) => u === '*' || u === path || (u.endsWith('*') && path.startsWith(u.slice(0, -1))));
}

/** What bootstrap policy gives every authenticated user (kube-apiserver's default ClusterRoles). */
const AUTHENTICATED_RULES: readonly PolicyRule[] = [
  { nonResourceURLs: ['/api', '/api/*', '/apis', '/apis/*', '/openapi', '/openapi/*', '/version', '/version/', '/healthz', '/livez', '/readyz'], verbs: ['get'] },
  { apiGroups: ['authorization.k8s.io'], resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'], verbs: ['create'] },
];

export interface Decision { readonly allowed: boolean; readonly reason: string }

export class RbacAuthorizer {
  private readonly source: RbacSource;
  constructor(source: RbacSource) {
    this.source = source;
  }

  /** The rules that apply to the user in a namespace (undefined: cluster-wide rules only). */
  rulesFor(user: UserInfo, namespace: string | undefined): { rule: PolicyRule; via: string }[] {
    const out: { rule: PolicyRule; via: string }[] = [];
    if (user.groups.includes(AUTHENTICATED)) for (const rule of AUTHENTICATED_RULES) out.push({ rule, via: 'bootstrap policy for authenticated users' });
    const clusterRoles = new Map(this.source.clusterRoles().map((r) => [r.metadata.name ?? '', r.rules ?? []]));
    const add = (b: Binding, scope: string | undefined): void => {
      if (!(b.subjects ?? []).some((s) => subjectMatches(s, user))) return;
      const rules = b.roleRef.kind === 'ClusterRole'
        ? clusterRoles.get(b.roleRef.name)
        : this.source.roles(scope ?? '').find((r) => r.metadata.name === b.roleRef.name)?.rules;
      const kind = scope === undefined ? 'ClusterRoleBinding' : 'RoleBinding';
      for (const rule of rules ?? []) out.push({ rule, via: `${kind} "${b.metadata.name ?? ''}"${scope ? ` of namespace "${scope}"` : ''} of ${b.roleRef.kind} "${b.roleRef.name}"` });
    };
    for (const b of this.source.clusterRoleBindings()) add(b, undefined);
    if (namespace !== undefined) for (const b of this.source.roleBindings(namespace)) add(b, namespace);
    return out;
  }

  authorizeResource(user: UserInfo, a: ResourceAttributes): Decision {
    if (user.groups.includes(MASTERS_GROUP)) return { allowed: true, reason: `member of ${MASTERS_GROUP}` };
    const match = this.rulesFor(user, a.namespace).find((r) => ruleAllows(r.rule, a));
    return match ? { allowed: true, reason: `RBAC: allowed by ${match.via}` } : { allowed: false, reason: '' };
  }

  authorizeNonResource(user: UserInfo, verb: string, path: string): Decision {
    if (user.groups.includes(MASTERS_GROUP)) return { allowed: true, reason: `member of ${MASTERS_GROUP}` };
    const match = this.rulesFor(user, undefined).find((r) => nonResourceAllowed(r.rule, verb, path));
    return match ? { allowed: true, reason: `RBAC: allowed by ${match.via}` } : { allowed: false, reason: '' };
  }
}

/** kube-apiserver's message for a forbidden resource request. */
export function forbiddenMessage(user: string, a: ResourceAttributes): string {
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const what = a.name ? `${resource} "${a.name}"` : resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  return `${what} is forbidden: User "${user}" cannot ${a.verb} resource "${resource}" in API group "${a.group}" ${scope}`;
}
