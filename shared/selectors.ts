/**
 * Label and field selectors as the Kubernetes API parses them
 * (k8s.io/apimachinery/pkg/labels and .../fields):
 *   labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma = AND
 *   fields: `path=value`, `path==value`, `path!=value`, comma = AND, on dotted paths
 */

export type Selector = (obj: Record<string, unknown>) => boolean;

export class SelectorError extends Error {}

type LabelReq = (labels: Record<string, string>) => boolean;

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

const KEY = '[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?';
const VALUE = '([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?';

function parseLabelRequirement(req: string): LabelReq {
  let m = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`).exec(req);
  if (m) {
    const [key, op, value] = [m[1] as string, m[3] as string, m[4] ?? ''];
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  m = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^)]*)\\)$`).exec(req);
  if (m) {
    const key = m[1] as string;
    const values = new Set((m[4] ?? '').split(',').map((v) => v.trim()).filter((v) => v !== ''));
    return m[3] === 'in' ? (l) => l[key] !== undefined && values.has(l[key]) : (l) => l[key] === undefined || !values.has(l[key]);
  }
  m = new RegExp(`^(!)?\\s*(${KEY})$`).exec(req);
  if (m) {
    const key = m[2] as string;
    return m[1] ? (l) => !(key in l) : (l) => key in l;
  }
  throw new SelectorError(`unable to parse requirement: ${JSON.stringify(req)}`);
}

export function parseLabelSelector(text: string | null | undefined): Selector {
  if (!text) return () => true;
  const reqs = splitTopLevel(text).map(parseLabelRequirement);
  return (obj) => {
    const meta = obj.metadata as { labels?: Record<string, string> } | undefined;
    const labels = meta?.labels ?? {};
    return reqs.every((r) => r(labels));
  };
}

function fieldValue(obj: Record<string, unknown>, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return '';
    cur = (cur as Record<string, unknown>)[part];
  }
  if (cur === undefined || cur === null) return '';
  return typeof cur === 'string' ? cur : JSON.stringify(cur);
}

export function parseFieldSelector(text: string | null | undefined): Selector {
  if (!text) return () => true;
  const reqs = splitTopLevel(text).map((req) => {
    const m = /^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$/.exec(req);
    if (!m) throw new SelectorError(`invalid field selector: ${JSON.stringify(req)}`);
    const [path, op, value] = [m[1] as string, m[2] as string, m[3] as string];
    return op === '!=' ? (o: Record<string, unknown>) => fieldValue(o, path) !== value : (o: Record<string, unknown>) => fieldValue(o, path) === value;
  });
  return (obj) => reqs.every((r) => r(obj));
}
