/**
 * The patch formats the API server accepts: RFC 7386 JSON merge patch, RFC 6902 JSON patch, and
 * Kubernetes' strategic merge patch (kubectl's `patch` and `apply` default for built-in kinds):
 * lists with a patch merge key merge element by element, `$patch`, `$retainKeys`,
 * `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>` directives are honoured, as in
 * k8s.io/apimachinery's strategicpatch package. Merge keys come from schema.ts.
 */
import { listStrategy, replacesWhole, retainsKeys, typeOfFile, type FieldType, type ListStrategy } from './schema.ts';

export class PatchError extends Error {}

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function applyMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const result: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

function decodePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(`invalid JSON pointer ${JSON.stringify(pointer)}`);
  return pointer.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: Json, tokens: string[], op: string): { parent: Record<string, Json> | Json[]; key: string } {
  let cur: Json = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObject(cur)) cur = cur[t];
    else cur = undefined;
    if (cur === undefined) throw new PatchError(`${op}: path /${tokens.join('/')} does not exist`);
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw new PatchError(`${op}: parent of /${tokens.join('/')} is not a container`);
  return { parent: cur, key: tokens[tokens.length - 1] ?? '' };
}

function getAt(doc: Json, pointer: string, op: string): Json {
  let cur: Json = doc;
  for (const t of decodePointer(pointer)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObject(cur)) cur = cur[t];
    else cur = undefined;
    if (cur === undefined) throw new PatchError(`${op}: path ${pointer} does not exist`);
  }
  return cur;
}

function removeAt(doc: Json, pointer: string, op: string): Json {
  const tokens = decodePointer(pointer);
  const { parent, key } = parentOf(doc, tokens, op);
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!Number.isInteger(i) || i < 0 || i >= parent.length) throw new PatchError(`${op}: index ${key} out of range at ${pointer}`);
    return parent.splice(i, 1)[0];
  }
  if (!(key in parent)) throw new PatchError(`${op}: path ${pointer} does not exist`);
  const old = parent[key];
  delete parent[key];
  return old;
}

function addAt(doc: Json, pointer: string, value: Json, op: string, replace: boolean): Json {
  const tokens = decodePointer(pointer);
  if (tokens.length === 0) return structuredClone(value);
  const { parent, key } = parentOf(doc, tokens, op);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(i) || i < 0 || i > parent.length || (replace && i >= parent.length)) throw new PatchError(`${op}: index ${key} out of range at ${pointer}`);
    parent.splice(i, replace ? 1 : 0, structuredClone(value));
  } else {
    if (replace && !(key in parent)) throw new PatchError(`${op}: path ${pointer} does not exist`);
    parent[key] = structuredClone(value);
  }
  return doc;
}

interface JsonPatchOp { op: string; path: string; from?: string; value?: Json }

export function applyJsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('JSON patch must be an array of operations');
  let doc = structuredClone(target);
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') throw new PatchError(`invalid JSON patch operation ${JSON.stringify(raw)}`);
    const o = raw as unknown as JsonPatchOp;
    switch (o.op) {
      case 'add': doc = addAt(doc, o.path, o.value, 'add', false); break;
      case 'replace': doc = addAt(doc, o.path, o.value, 'replace', true); break;
      case 'remove': removeAt(doc, o.path, 'remove'); break;
      case 'move': {
        if (typeof o.from !== 'string') throw new PatchError('move: "from" is required');
        const v = removeAt(doc, o.from, 'move');
        doc = addAt(doc, o.path, v, 'move', false);
        break;
      }
      case 'copy': {
        if (typeof o.from !== 'string') throw new PatchError('copy: "from" is required');
        doc = addAt(doc, o.path, getAt(doc, o.from, 'copy'), 'copy', false);
        break;
      }
      case 'test': {
        const actual = getAt(doc, o.path, 'test');
        if (JSON.stringify(actual) !== JSON.stringify(o.value)) throw new PatchError(`test failed at ${o.path}`);
        break;
      }
      default: throw new PatchError(`unknown JSON patch op ${JSON.stringify(o.op)}`);
    }
  }
  return doc;
}

/**
 * A strategic merge patch applied to an object of the type declared in `typeFile` (undefined: a
 * kind without a Go type, such as a custom resource, for which the real server refuses strategic
 * merge patch; the caller checks that).
 */
export function applyStrategicMergePatch(target: Json, patch: Json, typeFile: string | undefined): Json {
  if (!isObject(patch)) throw new PatchError('strategic merge patch must be a JSON object');
  return mergeMap(isObject(target) ? target : {}, patch, typeFile);
}

function mergeMap(target: Record<string, Json>, patch: Record<string, Json>, typeFile: string | undefined): Record<string, Json> {
  const directive = patch.$patch;
  if (directive === 'replace') {
    const { $patch: _p, ...rest } = patch;
    return structuredClone(rest);
  }
  if (directive === 'delete') return {};
  if (directive !== undefined) throw new PatchError(`unknown patch type: ${JSON.stringify(directive)} in map`);
  const t = typeFile ? typeOfFile(typeFile) : 'any';
  const typeName = typeof t === 'object' ? t.name : undefined;
  const result: Record<string, Json> = { ...target };
  const orders = new Map<string, Json[]>();
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$retainKeys') continue;
    if (key.startsWith('$setElementOrder/')) {
      if (Array.isArray(value)) orders.set(key.slice('$setElementOrder/'.length), value);
    } else if (key.startsWith('$deleteFromPrimitiveList/')) {
      deleteFromPrimitiveList(result, key.slice('$deleteFromPrimitiveList/'.length), value);
    } else if (value === null) {
      delete result[key];
    } else {
      result[key] = mergeField(result[key], value, typeof t === 'object' ? t.fields.get(key) : undefined, typeName, key);
    }
  }
  if (Array.isArray(patch.$retainKeys)) retainOnly(result, patch.$retainKeys);
  for (const [field, order] of orders) {
    const list = result[field];
    if (Array.isArray(list) && typeName) result[field] = reorder(list, order, listStrategy(typeName, field)?.mergeKey);
  }
  return result;
}

function deleteFromPrimitiveList(result: Record<string, Json>, field: string, values: Json): void {
  const drop = Array.isArray(values) ? values.map((v) => JSON.stringify(v)) : [];
  const cur = result[field];
  if (Array.isArray(cur)) result[field] = cur.filter((v) => !drop.includes(JSON.stringify(v)));
}

function retainOnly(map: Record<string, Json>, keep: readonly Json[]): void {
  for (const k of Object.keys(map)) if (!keep.includes(k)) delete map[k];
}

/** One field of a typed struct: its Go patch strategy (replace, retainKeys, list merge) decides. */
function mergeField(current: Json, value: Json, field: FieldType | undefined, typeName: string | undefined, key: string): Json {
  if (typeName && replacesWhole(typeName, key)) return structuredClone(value);
  const merged = mergeValue(current, value, field, typeName ? listStrategy(typeName, key) : undefined);
  if (typeName && retainsKeys(typeName, key) && isObject(value) && Array.isArray(value.$retainKeys) && isObject(merged)) retainOnly(merged, value.$retainKeys);
  return merged;
}

function mergeValue(current: Json, value: Json, field: FieldType | undefined, strategy: ListStrategy | undefined): Json {
  if (field?.kind === 'object') return isObject(value) ? mergeMap(isObject(current) ? current : {}, value, field.type) : structuredClone(value);
  if (field?.kind === 'map') return isObject(value) ? mergeTypedMap(current, value, field.of) : structuredClone(value);
  if (field?.kind === 'array' && Array.isArray(value)) return mergeList(current, value, field.of, strategy);
  if (field === undefined && isObject(value)) return applyMergePatch(current, value);
  return structuredClone(value);
}

/** A map field (labels, nodeSelector, resources): keys merged, null deletes, struct values merged by their type. */
function mergeTypedMap(current: Json, value: Record<string, Json>, of: FieldType): Record<string, Json> {
  const base = isObject(current) ? { ...current } : {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null) delete base[k];
    else base[k] = of.kind === 'object' && isObject(v) ? mergeMap(isObject(base[k]) ? base[k] : {}, v, of.type) : structuredClone(v);
  }
  return base;
}

function mergeList(current: Json, value: Json[], of: FieldType, strategy: ListStrategy | undefined): Json[] {
  if (!strategy) return stripDirectives(value);
  const cur: Json[] = Array.isArray(current) ? (current as Json[]) : [];
  if (strategy.mergeKey === undefined) {
    const seen = new Set(cur.map((v) => JSON.stringify(v)));
    return [...cur, ...value.filter((v) => !seen.has(JSON.stringify(v)))];
  }
  return mergeKeyedList(cur, value, strategy.mergeKey, of.kind === 'object' ? of.type : undefined);
}

function mergeKeyedList(current: Json[], patch: Json[], mergeKey: string, itemType: string | undefined): Json[] {
  if (patch.some((p) => isObject(p) && p.$patch === 'replace')) return stripDirectives(patch.filter((p) => !(isObject(p) && p.$patch === 'replace')));
  const result = current.map((c) => structuredClone(c));
  const keyOf = (v: Json): string | undefined => (isObject(v) && v[mergeKey] !== undefined ? JSON.stringify(v[mergeKey]) : undefined);
  for (const p of patch) {
    const k = keyOf(p);
    if (k === undefined || !isObject(p)) throw new PatchError(`map: ${JSON.stringify(p)} does not contain declared merge key: ${mergeKey}`);
    const i = result.findIndex((c) => keyOf(c) === k);
    if (p.$patch === 'delete') {
      if (i >= 0) result.splice(i, 1);
      continue;
    }
    const existing = i >= 0 ? result[i] : undefined;
    const merged = mergeMap(isObject(existing) ? existing : {}, p, itemType);
    if (i >= 0) result[i] = merged;
    else result.push(merged);
  }
  return result;
}

function stripDirectives(list: Json[]): Json[] {
  return list.map((v) => {
    if (!isObject(v)) return structuredClone(v);
    const { $patch: _p, ...rest } = v;
    return structuredClone(rest);
  });
}

/** `$setElementOrder`: the listed elements in the listed order, then any others as they were. */
function reorder(list: Json[], order: Json[], mergeKey: string | undefined): Json[] {
  const keyOf = (v: Json): string => JSON.stringify(mergeKey !== undefined && isObject(v) ? v[mergeKey] : v);
  const rank = new Map(order.map((o, i) => [keyOf(o), i]));
  const at = (v: Json, i: number): number => rank.get(keyOf(v)) ?? order.length + i;
  return list.map((v, i) => ({ v, r: at(v, i) })).sort((a, b) => a.r - b.r).map((x) => x.v);
}
