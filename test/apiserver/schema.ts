/**
 * The fields of the built-in kinds, as the real API server knows them from its Go types, so that
 * the embedded server can do what kube-apiserver does with them: strict field validation
 * (`fieldValidation=Strict`, kubectl's default, refuses unknown fields) and strategic merge patch
 * (lists merged by their patch merge keys).
 *
 * The field names and types come from the `kubernetes-models` package (generated from the
 * Kubernetes OpenAPI spec; its declaration files are read on demand, one type at a time). The
 * OpenAPI spec it was generated from drops the patch strategy of each list, so those are written
 * below from the Go types (k8s.io/api core/v1, apps/v1, meta/v1 `patchStrategy`/`patchMergeKey`
 * tags) for the lists of the kinds this server stores.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type FieldType =
  | { readonly kind: 'scalar' }
  | { readonly kind: 'any' }
  | { readonly kind: 'object'; readonly type: string }
  | { readonly kind: 'array'; readonly of: FieldType }
  | { readonly kind: 'map'; readonly of: FieldType };

export interface ObjectType {
  readonly name: string;
  readonly fields: ReadonlyMap<string, FieldType>;
}

/** Patch strategy of a list field, by `<type>.<field>` (type names as in kubernetes-models, without the leading I). */
export interface ListStrategy { readonly mergeKey?: string; readonly strategy: 'merge' | 'merge,retainKeys' }

const LIST_STRATEGIES: Readonly<Record<string, ListStrategy>> = {
  'PodSpec.containers': { mergeKey: 'name', strategy: 'merge' },
  'PodSpec.initContainers': { mergeKey: 'name', strategy: 'merge' },
  'PodSpec.ephemeralContainers': { mergeKey: 'name', strategy: 'merge' },
  'PodSpec.volumes': { mergeKey: 'name', strategy: 'merge,retainKeys' },
  'PodSpec.imagePullSecrets': { mergeKey: 'name', strategy: 'merge' },
  'PodSpec.hostAliases': { mergeKey: 'ip', strategy: 'merge' },
  'PodSpec.topologySpreadConstraints': { mergeKey: 'topologyKey', strategy: 'merge' },
  'PodSpec.resourceClaims': { mergeKey: 'name', strategy: 'merge,retainKeys' },
  'PodSpec.schedulingGates': { mergeKey: 'name', strategy: 'merge' },
  'Container.ports': { mergeKey: 'containerPort', strategy: 'merge' },
  'Container.env': { mergeKey: 'name', strategy: 'merge' },
  'Container.volumeMounts': { mergeKey: 'mountPath', strategy: 'merge' },
  'Container.volumeDevices': { mergeKey: 'devicePath', strategy: 'merge' },
  'ObjectMeta.finalizers': { strategy: 'merge' },
  'ObjectMeta.ownerReferences': { mergeKey: 'uid', strategy: 'merge' },
  'NodeStatus.conditions': { mergeKey: 'type', strategy: 'merge' },
  'NodeStatus.addresses': { mergeKey: 'type', strategy: 'merge' },
  'PodStatus.conditions': { mergeKey: 'type', strategy: 'merge' },
  'DeploymentStatus.conditions': { mergeKey: 'type', strategy: 'merge' },
  'DaemonSetStatus.conditions': { mergeKey: 'type', strategy: 'merge' },
  'ServiceAccount.secrets': { mergeKey: 'name', strategy: 'merge' },
};

/** Structs whose patch strategy is retainKeys (a union: setting one member clears the others). */
const RETAIN_KEYS_FIELDS = new Set(['DeploymentSpec.strategy', 'DaemonSetSpec.updateStrategy']);
/** Structs whose patch strategy is replace: a patch replaces them whole. */
const REPLACE_FIELDS = new Set(['PodDisruptionBudgetSpec.selector']);

export function replacesWhole(type: string, field: string): boolean {
  return REPLACE_FIELDS.has(`${type}.${field}`);
}

export function listStrategy(type: string, field: string): ListStrategy | undefined {
  return LIST_STRATEGIES[`${type}.${field}`];
}

export function retainsKeys(type: string, field: string): boolean {
  return RETAIN_KEYS_FIELDS.has(`${type}.${field}`);
}

const require = createRequire(import.meta.url);
const MODELS_DIR = dirname(require.resolve('kubernetes-models/package.json'));
const APIMACHINERY_DIR = dirname(require.resolve('@kubernetes-models/apimachinery/package.json'));

/** The declaration file of a kind: kubernetes-models/<group or v1>/<version>/<Kind>.d.ts. */
export function kindFile(group: string, version: string, kind: string): string | undefined {
  const file = group === '' ? join(MODELS_DIR, version, `${kind}.d.ts`) : join(MODELS_DIR, group, version, `${kind}.d.ts`);
  return existsSync(file) ? file : undefined;
}

const cache = new Map<string, ObjectType | 'scalar' | 'any'>();

/** The type declared in one file: an object with its fields, a scalar alias, or free-form JSON. */
export function typeOfFile(file: string): ObjectType | 'scalar' | 'any' {
  const hit = cache.get(file);
  if (hit) return hit;
  const text = readFileSync(file, 'utf8');
  const imports = new Map<string, string>();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) imports.set(m[1] ?? '', resolveImport(file, m[2] ?? ''));
  const iface = /^export interface I(\w+)(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/m.exec(text);
  let result: ObjectType | 'scalar' | 'any';
  if (!iface) result = /^export type I\w+ = ([^;]+);/m.test(text) ? 'scalar' : 'any';
  else {
    const fields = parseFields(iface[2] ?? '', imports);
    result = fields.size === 0 ? 'any' : { name: iface[1] ?? '', fields };
  }
  cache.set(file, result);
  return result;
}

function resolveImport(from: string, spec: string): string {
  if (spec.startsWith('.')) return join(dirname(from), spec.replace(/\.js$/, '.d.ts'));
  const rest = spec.replace(/^@kubernetes-models\/apimachinery\//, '');
  return join(APIMACHINERY_DIR, `${rest}.d.ts`);
}

/** Fields of an interface body: `"name"?: Type;` at the first level, comments skipped. */
function parseFields(body: string, imports: ReadonlyMap<string, string>): Map<string, FieldType> {
  const fields = new Map<string, FieldType>();
  const clean = body.replace(/\/\*\*[\s\S]*?\*\//g, '');
  const re = /^ {4}"([^"]+)"\??: /gm;
  let m: RegExpExecArray | null;
  while ((m = re.exec(clean)) !== null) {
    let i = re.lastIndex;
    let depth = 0;
    for (; i < clean.length; i++) {
      const c = clean[i];
      if (c === '{' || c === '<') depth++;
      else if (c === '}' || c === '>') depth--;
      else if (c === ';' && depth === 0) break;
    }
    fields.set(m[1] ?? '', parseType(clean.slice(re.lastIndex, i).replace(/\s+/g, ''), imports));
    re.lastIndex = i;
  }
  return fields;
}

function parseType(t: string, imports: ReadonlyMap<string, string>): FieldType {
  const arr = /^Array<(.+)>$/.exec(t);
  if (arr) return { kind: 'array', of: parseType(arr[1] ?? '', imports) };
  const map = /^\{\[key:string\]:(.+?);?\}$/.exec(t);
  if (map) return { kind: 'map', of: parseType(map[1] ?? '', imports) };
  const file = imports.get(t);
  if (file) return { kind: 'object', type: file };
  if (/^(string|number|boolean|"[^"]*")(\|(string|number|boolean|"[^"]*"))*$/.test(t)) return { kind: 'scalar' };
  return { kind: 'any' };
}

/**
 * The paths of fields an object has that its type does not (kube-apiserver's "unknown field"
 * list for strict field validation), in its format: `spec.template.spec.containers[0].bogus`.
 */
export function unknownFields(file: string, value: unknown, path = ''): string[] {
  const t = typeOfFile(file);
  if (t === 'scalar' || t === 'any' || typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  const out: string[] = [];
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (key.startsWith('$')) continue; // strategic merge patch directives
    const here = path === '' ? key : `${path}.${key}`;
    const f = t.fields.get(key);
    if (!f) out.push(here);
    else out.push(...unknownIn(f, v, here));
  }
  return out;
}

function unknownIn(f: FieldType, v: unknown, path: string): string[] {
  if (v === null || v === undefined) return [];
  switch (f.kind) {
    case 'object': return unknownFields(f.type, v, path);
    case 'array': return Array.isArray(v) ? v.flatMap((x, i) => unknownIn(f.of, x, `${path}[${i}]`)) : [];
    case 'map': return typeof v === 'object' && !Array.isArray(v) ? Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => unknownIn(f.of, x, `${path}.${k}`)) : [];
    default: return [];
  }
}
