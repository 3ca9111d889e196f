import { describe, expect, it } from 'vitest';
import { ApiError, Store, type WatchEvent } from '../apiserver/store.ts';
import { RESOURCES, findResource } from '../apiserver/resources.ts';
import { parseFieldSelector, parseLabelSelector } from '../../shared/selectors.ts';
import { applyJsonPatch, applyMergePatch } from '../apiserver/patch.ts';

const cm = findResource('', 'v1', 'configmaps')!;
const nodes = findResource('', 'v1', 'nodes')!;
const all = parseLabelSelector('');
const any = parseFieldSelector('');

function expectApiError(fn: () => unknown, code: number, reason: string): ApiError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(code);
    expect((err as ApiError).reason).toBe(reason);
    return err as ApiError;
  }
  throw new Error(`expected ApiError ${code}`);
}

describe('embedded API store', () => {
  it('gives every write a new resourceVersion and rejects a stale update with 409 Conflict', () => {
    const s = new Store(RESOURCES);
    const a = s.create(cm, 'default', { metadata: { name: 'a' }, data: { k: '1' } });
    const b = s.update(cm, 'default', 'a', { ...a, data: { k: '2' } });
    expect(Number(b.metadata.resourceVersion)).toBeGreaterThan(Number(a.metadata.resourceVersion));
    const err = expectApiError(() => s.update(cm, 'default', 'a', { ...a, data: { k: '3' } }), 409, 'Conflict');
    expect(err.message).toContain('the object has been modified');
    expect(s.get(cm, 'default', 'a').data).toEqual({ k: '2' });
  });

  it('treats a resourceVersion inside a merge patch as a precondition', () => {
    const s = new Store(RESOURCES);
    const a = s.create(cm, 'default', { metadata: { name: 'a' }, data: { k: '1' } });
    s.patch(cm, 'default', 'a', 'merge', { data: { x: 'y' } });
    expectApiError(() => s.patch(cm, 'default', 'a', 'merge', { metadata: { resourceVersion: a.metadata.resourceVersion }, data: { k: '9' } }), 409, 'Conflict');
    const cur = s.get(cm, 'default', 'a');
    const ok = s.patch(cm, 'default', 'a', 'merge', { metadata: { resourceVersion: cur.metadata.resourceVersion }, data: { k: null } });
    expect(ok.data).toEqual({ x: 'y' });
  });

  it('answers 404 for a missing object or namespace and 409 AlreadyExists for a duplicate', () => {
    const s = new Store(RESOURCES);
    expectApiError(() => s.get(cm, 'default', 'nope'), 404, 'NotFound');
    expectApiError(() => s.create(cm, 'nonexistent', { metadata: { name: 'a' } }), 404, 'NotFound');
    s.create(cm, 'default', { metadata: { name: 'a' } });
    expectApiError(() => s.create(cm, 'default', { metadata: { name: 'a' } }), 409, 'AlreadyExists');
  });

  it('rejects invalid names and ConfigMaps over 1 MiB with 422 Invalid', () => {
    const s = new Store(RESOURCES);
    expectApiError(() => s.create(cm, 'default', { metadata: { name: 'Bad_Name' } }), 422, 'Invalid');
    expectApiError(() => s.create(cm, 'default', { metadata: { name: 'big' }, data: { k: 'x'.repeat(1024 * 1024) } }), 422, 'Invalid');
  });

  it('keeps a Node status on main-resource updates and changes only status through /status', () => {
    const s = new Store(RESOURCES);
    const n = s.create(nodes, undefined, { metadata: { name: 'n1' }, spec: { podCIDR: '198.19.0.0/24' }, status: { addresses: [{ type: 'InternalIP', address: '198.18.1.1' }] } });
    const u = s.update(nodes, undefined, 'n1', { ...n, spec: { podCIDR: '198.19.1.0/24' }, status: {} });
    expect(u.status).toEqual(n.status);
    const st = s.update(nodes, undefined, 'n1', { ...u, spec: {}, status: { phase: 'x' } }, 'status');
    expect(st.status).toEqual({ phase: 'x' });
    expect(st.spec).toEqual({ podCIDR: '198.19.1.0/24' });
  });

  it('replays history after a resourceVersion and answers 410 Expired once it is compacted', () => {
    const s = new Store(RESOURCES);
    const a = s.create(cm, 'default', { metadata: { name: 'a' } });
    s.create(cm, 'default', { metadata: { name: 'b' } });
    const seen: WatchEvent[] = [];
    const stop = s.watch(cm, { labelSelector: all, fieldSelector: any, resourceVersion: a.metadata.resourceVersion }, (e) => seen.push(e));
    expect(seen.map((e) => [e.type, (e.object.metadata as { name: string }).name])).toEqual([['ADDED', 'b']]);
    stop();
    s.compact();
    const late: WatchEvent[] = [];
    s.watch(cm, { labelSelector: all, fieldSelector: any, resourceVersion: a.metadata.resourceVersion }, (e) => late.push(e));
    expect(late).toHaveLength(1);
    expect(late[0]?.type).toBe('ERROR');
    expect(late[0]?.object).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
  });

  it('turns an object entering or leaving a label selector into ADDED / DELETED on the watch', () => {
    const s = new Store(RESOURCES);
    const seen: string[] = [];
    s.watch(cm, { namespace: 'default', labelSelector: parseLabelSelector('app=x'), fieldSelector: any }, (e) => seen.push(e.type));
    const a = s.create(cm, 'default', { metadata: { name: 'a' } });
    const b = s.patch(cm, 'default', 'a', 'merge', { metadata: { labels: { app: 'x' } } });
    s.patch(cm, 'default', 'a', 'merge', { data: { k: 'v' } });
    s.patch(cm, 'default', 'a', 'merge', { metadata: { labels: { app: 'y' } } });
    expect(a.metadata.resourceVersion).not.toBe(b.metadata.resourceVersion);
    expect(seen).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
  });

  it('does not bump resourceVersion for a write that changes nothing', () => {
    const s = new Store(RESOURCES);
    const a = s.create(cm, 'default', { metadata: { name: 'a' }, data: { k: '1' } });
    const b = s.patch(cm, 'default', 'a', 'merge', { data: { k: '1' } });
    expect(b.metadata.resourceVersion).toBe(a.metadata.resourceVersion);
  });

  it('deletes with preconditions and removes a namespace with its contents', () => {
    const s = new Store(RESOURCES);
    const ns = findResource('', 'v1', 'namespaces')!;
    s.create(ns, undefined, { metadata: { name: 'team' } });
    const a = s.create(cm, 'team', { metadata: { name: 'a' } });
    expectApiError(() => s.delete(cm, 'team', 'a', { resourceVersion: '1' }), 409, 'Conflict');
    s.delete(ns, undefined, 'team');
    expectApiError(() => s.get(cm, 'team', a.metadata.name!), 404, 'NotFound');
  });
});

describe('selectors', () => {
  const obj = { metadata: { name: 'n1', namespace: 'd', labels: { app: 'web', tier: 'front' } }, spec: { x: 'y' } };
  it.each([
    ['app=web', true], ['app==web', true], ['app!=web', false], ['app in (web,api)', true], ['app notin (web)', false],
    ['tier', true], ['!tier', false], ['missing', false], ['!missing', true], ['app=web,tier=back', false],
  ])('label selector %s -> %s', (sel, want) => {
    expect(parseLabelSelector(sel)(obj)).toBe(want);
  });
  it.each([
    ['metadata.name=n1', true], ['metadata.name!=n1', false], ['metadata.namespace==d,spec.x=y', true], ['spec.x=z', false],
  ])('field selector %s -> %s', (sel, want) => {
    expect(parseFieldSelector(sel)(obj)).toBe(want);
  });
  it('rejects a malformed selector', () => {
    expect(() => parseLabelSelector('a in b')).toThrow(/unable to parse/);
  });
});

describe('patches', () => {
  it('applies RFC 7386 merge patch (null deletes, objects merge, arrays replace)', () => {
    expect(applyMergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { a: null, b: { c: 5 }, l: [3] })).toEqual({ b: { c: 5, d: 3 }, l: [3] });
  });
  it('applies RFC 6902 JSON patch operations and fails a test op', () => {
    const doc = { a: { b: 1 }, l: [1, 2] };
    expect(applyJsonPatch(doc, [
      { op: 'add', path: '/a/c', value: 2 }, { op: 'replace', path: '/a/b', value: 3 }, { op: 'remove', path: '/l/0' },
      { op: 'add', path: '/l/-', value: 9 }, { op: 'copy', from: '/a/c', path: '/d' }, { op: 'move', from: '/d', path: '/e' },
      { op: 'add', path: '/k~1x', value: true },
    ])).toEqual({ a: { b: 3, c: 2 }, l: [2, 9], e: 2, 'k/x': true });
    expect(() => applyJsonPatch(doc, [{ op: 'test', path: '/a/b', value: 2 }])).toThrow(/test failed/);
    expect(() => applyJsonPatch(doc, [{ op: 'replace', path: '/zz', value: 2 }])).toThrow(/does not exist/);
  });
});
