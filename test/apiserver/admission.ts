/**
 * ValidatingAdmissionPolicy, as kube-apiserver applies it, for the policies the lab stores: a
 * binding (validationActions Deny) names a policy; the policy matches a request by its
 * matchConstraints.resourceRules (apiGroups, apiVersions, resources, operations) and its
 * matchConditions; variables are evaluated in order; the first validation that is false denies the
 * request with its reason (Invalid by default: 422; Forbidden: 403) and the message kube-apiserver
 * gives: "ValidatingAdmissionPolicy '<policy>' with binding '<binding>' denied request: <message>"
 * (the server wraps it as admission.NewForbidden does: `<resource> "<name>" is forbidden: ...`).
 * An expression that fails to evaluate denies too (failurePolicy Fail, the default).
 *
 * Expressions are evaluated by @marcbachmann/cel-js, a CEL implementation nobody on this project
 * wrote. Not emulated: paramKind/paramRef, namespaceSelector/objectSelector, excludeResourceRules,
 * messageExpression, auditAnnotations, the Warn and Audit actions, Kubernetes' CEL extension
 * libraries beyond the CEL standard (the shipped policy uses only standard CEL), and type checking
 * (kube-apiserver compiles object and oldObject as dyn and only reports type warnings).
 */
import { parse } from '@marcbachmann/cel-js';

export interface AdmissionRequest {
  readonly operation: 'CREATE' | 'UPDATE' | 'DELETE';
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly subresource?: string | undefined;
  readonly name: string;
  readonly namespace?: string | undefined;
  readonly object: Record<string, unknown> | null;
  readonly oldObject: Record<string, unknown> | null;
  readonly userInfo: { readonly username: string; readonly groups: readonly string[] };
}

export interface AdmissionDenial {
  readonly code: number;
  readonly reason: string;
  readonly message: string;
}

type Obj = Record<string, unknown>;
const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});

const STATUS: Record<string, number> = { Invalid: 422, Forbidden: 403, Unauthorized: 401, RequestEntityTooLarge: 413 };

const compiled = new Map<string, ReturnType<typeof parse>>();
function evaluate(expression: string, context: Obj): unknown {
  let fn = compiled.get(expression);
  if (!fn) {
    fn = parse(expression);
    compiled.set(expression, fn);
  }
  return fn(context);
}

function ruleMatches(rule: Obj, r: AdmissionRequest): boolean {
  const has = (values: string[], v: string): boolean => values.includes('*') || values.includes(v);
  const res = list(rule.resources);
  const resourceMatches = r.subresource
    ? res.includes(`${r.resource}/${r.subresource}`) || res.includes(`${r.resource}/*`) || res.includes(`*/${r.subresource}`) || res.includes('*/*')
    : res.includes(r.resource) || res.includes('*');
  return has(list(rule.apiGroups), r.group) && has(list(rule.apiVersions), r.version) && has(list(rule.operations), r.operation) && resourceMatches;
}

/** Whether any bound policy's rules match the request (its object aside): if none, there is nothing to evaluate. */
export function anyPolicyMatches(policies: readonly Obj[], bindings: readonly Obj[], r: Omit<AdmissionRequest, 'object' | 'oldObject' | 'name'>): boolean {
  return bindings.some((b) => {
    const policy = policies.find((p) => obj(p.metadata).name === obj(b.spec).policyName);
    const rules = (obj(obj(policy?.spec).matchConstraints).resourceRules ?? []) as Obj[];
    return rules.some((rule) => ruleMatches(rule, { ...r, name: '', object: null, oldObject: null }));
  });
}

/** The denial of the first bound policy that refuses the request, or undefined when every one admits it. */
export function admit(policies: readonly Obj[], bindings: readonly Obj[], r: AdmissionRequest): AdmissionDenial | undefined {
  for (const binding of bindings) {
    const bspec = obj(binding.spec);
    if (!list(bspec.validationActions).includes('Deny')) continue;
    const policy = policies.find((p) => obj(p.metadata).name === bspec.policyName);
    if (!policy) continue;
    const denial = evaluatePolicy(policy, text(obj(binding.metadata).name), r);
    if (denial) return denial;
  }
  return undefined;
}

function evaluatePolicy(policy: Obj, bindingName: string, r: AdmissionRequest): AdmissionDenial | undefined {
  const spec = obj(policy.spec);
  const policyName = text(obj(policy.metadata).name);
  const rules = (obj(spec.matchConstraints).resourceRules ?? []) as Obj[];
  if (!rules.some((rule) => ruleMatches(rule, r))) return undefined;
  const deny = (reason: string, message: string): AdmissionDenial => ({
    code: STATUS[reason] ?? 422, reason, message: `ValidatingAdmissionPolicy '${policyName}' with binding '${bindingName}' denied request: ${message}`,
  });
  const variables: Obj = {};
  const context: Obj = {
    object: r.object, oldObject: r.oldObject, variables,
    request: { operation: r.operation, name: r.name, namespace: r.namespace ?? '', userInfo: { username: r.userInfo.username, groups: [...r.userInfo.groups] }, kind: {}, resource: { group: r.group, version: r.version, resource: r.resource } },
  };
  try {
    for (const c of (spec.matchConditions ?? []) as Obj[]) if (evaluate(String(c.expression), context) !== true) return undefined;
    for (const v of (spec.variables ?? []) as Obj[]) variables[String(v.name)] = evaluate(String(v.expression), context);
    for (const v of (spec.validations ?? []) as Obj[]) {
      if (evaluate(String(v.expression), context) !== true) return deny(typeof v.reason === 'string' ? v.reason : 'Invalid', typeof v.message === 'string' ? v.message : `failed expression: ${String(v.expression)}`);
    }
  } catch (err) {
    if (spec.failurePolicy === 'Ignore') return undefined;
    return deny('Invalid', `expression evaluation failed: ${err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err)}`);
  }
  return undefined;
}
