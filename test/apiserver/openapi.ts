/**
 * The OpenAPI v3 discovery kube-apiserver serves (/openapi/v3 and one document per group
 * version), as much of it as clients read from the embedded server: every path of every served
 * kind with its operations, each tagged with `x-kubernetes-group-version-kind`, and the
 * `fieldValidation` query parameter on the writes. kubectl (client-side apply, create, replace,
 * patch) looks for that parameter on a kind's PATCH operation to learn that the server validates
 * fields itself (it then sends fieldValidation=Strict instead of validating against a downloaded
 * schema); server.ts does that validation. Component schemas are not served: kubectl then computes
 * strategic merge patches from its compiled-in types, as it does for any kind it finds no schema for.
 */
import { createHash } from 'node:crypto';
import { apiVersionOf, type ResourceType } from './resources.ts';

const groupVersionPath = (r: ResourceType): string => (r.group === '' ? `api/${r.version}` : `apis/${r.group}/${r.version}`);

export function openApiV3Paths(served: readonly ResourceType[]): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const gv of new Set(served.map(groupVersionPath))) {
    const hash = createHash('sha512').update(JSON.stringify(openApiV3Document(gv, served))).digest('hex').toUpperCase();
    paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=${hash}` };
  }
  return { paths };
}

const param = (name: string, description: string): Record<string, unknown> => ({ name, in: 'query', description, schema: { type: 'string', uniqueItems: true } });
const FIELD_VALIDATION = param('fieldValidation', 'fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, Warn (the default), Strict.');
const FIELD_MANAGER = param('fieldManager', 'fieldManager is a name associated with the actor or entity that is making these changes.');
const DRY_RUN = param('dryRun', 'When present, indicates that modifications should not be persisted.');

export function openApiV3Document(gv: string, served: readonly ResourceType[]): Record<string, unknown> | undefined {
  const kinds = served.filter((r) => groupVersionPath(r) === gv);
  if (kinds.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  for (const r of kinds) {
    const gvk = { group: r.group, version: r.version, kind: r.kind };
    const op = (action: string, params: Record<string, unknown>[] = []): Record<string, unknown> => ({
      operationId: `${action}${r.kind}`, 'x-kubernetes-action': action, 'x-kubernetes-group-version-kind': gvk,
      parameters: params, responses: { '200': { description: 'OK' } },
    });
    const base = `/${gv}${r.namespaced ? '/namespaces/{namespace}' : ''}/${r.plural}`;
    const writes = [FIELD_MANAGER, FIELD_VALIDATION, DRY_RUN];
    if (r.review) {
      paths[base] = { post: op('post', writes) };
      continue;
    }
    paths[base] = { get: op('list'), post: op('post', writes), delete: op('deletecollection') };
    paths[`${base}/{name}`] = { get: op('get'), put: op('put', writes), patch: op('patch', writes), delete: op('delete') };
    if (r.statusSubresource) paths[`${base}/{name}/status`] = { get: op('get'), put: op('put', writes), patch: op('patch', writes) };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: apiVersionOf(kinds[0] as ResourceType) }, paths, components: { schemas: {} } };
}
