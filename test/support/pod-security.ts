/**
 * The Pod Security Standards' "restricted" profile (kubernetes.io/docs/concepts/security/pod-security-standards,
 * which includes "baseline"), as checks over a pod spec: each violation named as the standard
 * names its control. Used to prove which workloads of deploy/ could run in a restricted namespace.
 */
type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

const RESTRICTED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];

/** The controls one container breaks (its own settings, or the pod's where it sets none). */
function containerViolations(c: Obj, pod: Obj): string[] {
  const out: string[] = [];
  const sc = obj(c.securityContext);
  if (sc.privileged === true) out.push('privileged containers');
  if (arr(c.ports).some((p) => p.hostPort !== undefined && p.hostPort !== 0)) out.push('host ports');
  const caps = obj(sc.capabilities);
  const added = (Array.isArray(caps.add) ? (caps.add as string[]) : []).filter((a) => a !== 'NET_BIND_SERVICE');
  if (added.length > 0) out.push(`capabilities added: ${added.join(', ')}`);
  if (!(Array.isArray(caps.drop) && (caps.drop as string[]).includes('ALL'))) out.push('capabilities not dropping ALL');
  if (sc.allowPrivilegeEscalation !== false) out.push('privilege escalation allowed');
  if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) out.push('runAsNonRoot not set');
  if ((sc.runAsUser ?? pod.runAsUser) === 0) out.push('runAsUser 0');
  const seccomp = obj(sc.seccompProfile).type ?? obj(pod.seccompProfile).type;
  if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') out.push('seccomp profile not RuntimeDefault or Localhost');
  return out;
}

export function restrictedViolations(podSpec: Obj): string[] {
  const out = new Set<string>();
  const pod = obj(podSpec.securityContext);
  if (podSpec.hostNetwork === true || podSpec.hostPID === true || podSpec.hostIPC === true) out.add('host namespaces');
  for (const v of arr(podSpec.volumes)) {
    const kind = Object.keys(v).find((k) => k !== 'name') ?? '';
    if (kind === 'hostPath') out.add('hostPath volumes');
    else if (!RESTRICTED_VOLUMES.includes(kind)) out.add(`volume type ${kind}`);
  }
  for (const c of [...arr(podSpec.initContainers), ...arr(podSpec.containers)]) for (const v of containerViolations(c, pod)) out.add(v);
  return [...out].sort();
}
