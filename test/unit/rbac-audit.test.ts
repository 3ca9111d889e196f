// The RBAC evaluator the audit uses: it must say no when RBAC says no, and see unused grants.
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../apiserver/server.ts';
import { auditRbac, grantsFor, grantsOf } from '../support/rbac.ts';
import { loadManifests } from '../support/manifests.ts';

const agent = 'system:serviceaccount:chorus-system:chorus-kube-router-agent';
const coordinator = 'system:serviceaccount:chorus-system:chorus-kube-router-coordinator';
const rec = (r: Partial<AuditRecord>): AuditRecord => ({ verb: 'get', group: '', resource: 'configmaps', code: 200, ...r });
const grants = grantsOf(loadManifests());

describe('RBAC evaluation over deploy/', () => {
  it('allows what the rules grant, in their scope and for their names only', () => {
    expect(grantsFor(rec({ user: agent, verb: 'watch', namespace: 'chorus-system', fieldName: 'chorus-kube-router-hub' }), grants)).toHaveLength(1);
    expect(grantsFor(rec({ user: agent, verb: 'watch', namespace: 'chorus-system' }), grants)).toEqual([]); // all ConfigMaps: no
    expect(grantsFor(rec({ user: agent, verb: 'list', namespace: 'chorus-system', fieldName: 'chorus-kube-router-peers-0' }), grants)).toEqual([]);
    expect(grantsFor(rec({ user: agent, verb: 'list', namespace: 'kube-system', fieldName: 'chorus-kube-router-hub' }), grants)).toEqual([]);
    expect(grantsFor(rec({ user: agent, verb: 'patch', resource: 'nodes', name: 'n1' }), grants)).toEqual([]);
    expect(grantsFor(rec({ user: coordinator, verb: 'patch', resource: 'nodes', name: 'n1' }), grants)).toHaveLength(1);
    expect(grantsFor(rec({ user: coordinator, verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: 'chorus-system', name: 'other' }), grants)).toEqual([]);
    expect(grantsFor(rec({ user: coordinator, verb: 'get', resource: 'secrets', namespace: 'chorus-system', name: 'chorus-kube-router-device' }), grants)).toEqual([]);
    expect(grantsFor(rec({ user: coordinator, verb: 'create', resource: 'events', namespace: 'default' }), grants)).toHaveLength(1);
    expect(grantsFor(rec({ user: coordinator, verb: 'create', resource: 'events', namespace: 'chorus-system' }), grants)).toEqual([]);
  });

  it('reports denied requests and grants nobody used', () => {
    const audit = auditRbac([rec({ user: agent, verb: 'delete', resource: 'nodes', name: 'n1' })], loadManifests(), [agent]);
    expect(audit.denied).toHaveLength(1);
    expect(audit.unused.some((u) => u.includes('watch core/nodes'))).toBe(true);
  });
});
