/**
 * Kubernetes RBAC, evaluated over deploy/'s manifests: which rules bind a user (ServiceAccount
 * subjects of RoleBindings and ClusterRoleBindings), which of them grant an audited request, and
 * which grants no request used. Semantics as the RBAC authorizer's: a ClusterRoleBinding grants
 * everywhere, a RoleBinding only in its namespace; a rule matches on apiGroup, resource (with
 * /subresource), verb, and, when it lists resourceNames, on the object's name (for list/watch:
 * the metadata.name of the field selector); create is never narrowed by name.
 */
import type { AuditRecord } from '../apiserver/server.ts';
import { ruleAllows, subjectUser, type Subject } from '../apiserver/rbac.ts';
import type { Manifest } from './manifests.ts';

interface Rule { readonly apiGroups: readonly string[]; readonly resources: readonly string[]; readonly verbs: readonly string[]; readonly resourceNames?: readonly string[] }

/** One (verb, resource, name) a rule grants, in one scope: the unit "used or not" is judged on. */
export interface Grant {
  readonly id: string;
  readonly user: string;
  /** Namespace the grant is limited to, or undefined (cluster-wide). */
  readonly namespace: string | undefined;
  readonly group: string;
  readonly resource: string;
  readonly verb: string;
  readonly resourceNames: readonly string[] | undefined;
}

/** Every grant the manifests give each user. */
export function grantsOf(manifests: readonly Manifest[]): Grant[] {
  const roles = new Map<string, readonly Rule[]>();
  for (const m of manifests) {
    if (m.kind === 'ClusterRole') roles.set(`ClusterRole/${m.metadata.name}`, (m.rules as Rule[] | undefined) ?? []);
    if (m.kind === 'Role') roles.set(`Role/${m.metadata.namespace ?? ''}/${m.metadata.name}`, (m.rules as Rule[] | undefined) ?? []);
  }
  const grants: Grant[] = [];
  for (const b of manifests.filter((m) => m.kind === 'RoleBinding' || m.kind === 'ClusterRoleBinding')) {
    const ref = b.roleRef as { kind: string; name: string };
    const scope = b.kind === 'RoleBinding' ? b.metadata.namespace : undefined;
    const key = ref.kind === 'ClusterRole' ? `ClusterRole/${ref.name}` : `Role/${scope ?? ''}/${ref.name}`;
    const rules = roles.get(key);
    if (!rules) throw new Error(`${b.kind} ${b.metadata.name} refers to ${key}, which deploy/ does not define`);
    for (const s of (b.subjects as Subject[] | undefined) ?? []) {
      const user = subjectUser(s);
      if (!user) continue;
      rules.forEach((r, i) => {
        for (const group of r.apiGroups) for (const resource of r.resources) for (const verb of r.verbs) {
          grants.push({ id: `${b.kind} ${b.metadata.name} -> ${key} rule ${i + 1}: ${verb} ${group || 'core'}/${resource}${r.resourceNames ? ` [${r.resourceNames.join(',')}]` : ''}${scope ? ` in ${scope}` : ''}`, user, namespace: scope, group, resource, verb, resourceNames: r.resourceNames });
        }
      });
    }
  }
  return grants;
}

/** The grants that allow a request (none: the request would be forbidden). */
export function grantsFor(r: AuditRecord, grants: readonly Grant[]): Grant[] {
  const request = { verb: r.verb, group: r.group, resource: r.resource, subresource: r.subresource, namespace: r.namespace, name: r.name ?? r.fieldName };
  // each grant is one (verb, resource) of a rule, judged by the API server's own rule matching
  return grants.filter((g) => g.user === r.user && (g.namespace === undefined || g.namespace === r.namespace)
    && ruleAllows({ apiGroups: [g.group], resources: [g.resource], verbs: [g.verb], ...(g.resourceNames ? { resourceNames: g.resourceNames } : {}) }, request));
}

export interface RbacAudit {
  /** Requests of the audited users that no grant allows. */
  readonly denied: readonly AuditRecord[];
  /** Grants to the audited users that no request used. */
  readonly unused: readonly string[];
}

export function auditRbac(records: readonly AuditRecord[], manifests: readonly Manifest[], users: readonly string[]): RbacAudit {
  const grants = grantsOf(manifests).filter((g) => users.includes(g.user));
  const used = new Set<string>();
  const denied: AuditRecord[] = [];
  for (const r of records.filter((x) => x.user !== undefined && users.includes(x.user))) {
    const allowing = grantsFor(r, grants);
    if (allowing.length === 0) denied.push(r);
    for (const g of allowing) used.add(`${g.user} ${g.id}`);
  }
  const unused = [...new Set(grants.map((g) => `${g.user} ${g.id}`))].filter((id) => !used.has(id));
  return { denied, unused };
}
