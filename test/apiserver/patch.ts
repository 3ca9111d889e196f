/**
 * The patch formats the API server accepts: RFC 7386 JSON merge patch and RFC 6902 JSON patch.
 * Strategic merge patch is served as a merge patch (the difference is only in how lists with
 * patch keys merge; none of the resources served here has one that our clients patch).
 */

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
