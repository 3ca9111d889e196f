// The device reconciler's event-driven passes diff only what changed since the desired state the
// device was last brought to (diffDeviceDelta of desiredDelta). Over random changes to a desired state, the
// changes it finds must be exactly those the full diff finds.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { desiredDelta, diffDevice, diffDeviceDelta, entryId, type DeviceChange, type DeviceEntry } from '../../coordinator/drivers/driver.ts';

const KINDS = ['arp', 'route', 'fdb'];
const entry = (kind: number, key: number, field: number): DeviceEntry => ({ kind: KINDS[kind % KINDS.length]!, key: `k${key}`, fields: field === 0 ? {} : { v: String(field) }, node: `n${key % 5}` });

/** The changes from the desired state the device was brought to (`previous`), as the device loop finds them. */
const diffSince = (previous: ReadonlySet<DeviceEntry>, desired: readonly DeviceEntry[], observed: ReadonlyMap<string, DeviceEntry>): DeviceChange[] => diffDeviceDelta(desiredDelta(previous, desired), observed);

/** One entry per id: the last one given wins (as a desired state has). */
function unique(entries: DeviceEntry[]): DeviceEntry[] {
  return [...new Map(entries.map((e) => [entryId(e), e])).values()];
}

const text = (changes: readonly DeviceChange[]): string[] =>
  changes.map((c) => `${c.op} ${entryId(c.entry)} ${JSON.stringify(c.entry.fields)}${c.op === 'update' ? ` from ${JSON.stringify(c.previous.fields)}` : ''}`).sort();

const spec = fc.tuple(fc.nat(2), fc.nat(30), fc.nat(2));

describe('diffDeviceDelta of desiredDelta: the full diff\'s changes, from what changed since the device matched', () => {
  it('finds what diffDevice finds, for any change of the desired state', () => {
    fc.assert(fc.property(
      fc.array(spec, { maxLength: 40 }),
      fc.array(fc.boolean(), { maxLength: 40 }),
      fc.array(fc.boolean(), { maxLength: 40 }),
      fc.array(spec, { maxLength: 15 }),
      (before, kept, observedAsCopies, incoming) => {
        const previous = unique(before.map(([k, key, f]) => entry(k, key, f)));
        // the device as the reconciler knows it after the pass that applied `previous`: the
        // applied objects themselves, or (after an observation) copies with the same fields
        const known = new Map(previous.map((e, i) => [entryId(e), observedAsCopies[i] ? { ...e, fields: { ...e.fields } } : e]));
        const desired = unique([...previous.filter((_, i) => kept[i] ?? true), ...incoming.map(([k, key, f]) => entry(k, key, f))]);
        expect(text(diffSince(new Set(previous), desired, known))).toEqual(text(diffDevice(desired, [...known.values()])));
      },
    ), { numRuns: 500 });
  });

  it('its delta, applied to the set it was taken from, is the new desired set (the reconciler keeps one set and moves it)', () => {
    fc.assert(fc.property(fc.array(spec, { maxLength: 40 }), fc.array(fc.boolean(), { maxLength: 40 }), fc.array(spec, { maxLength: 15 }), (before, kept, incoming) => {
      const previous = unique(before.map(([k, key, f]) => entry(k, key, f)));
      const desired = [...previous.filter((_, i) => kept[i] ?? true), ...incoming.map(([k, key, f]) => entry(k, key, f))];
      const set = new Set(previous);
      const delta = desiredDelta(set, desired);
      for (const e of delta.removed) set.delete(e);
      for (const e of delta.added) set.add(e);
      // the very objects (a Set compares by object, as the reconciler does)
      const want = new Set(desired);
      expect(set.size).toBe(want.size);
      expect([...set].every((e) => want.has(e))).toBe(true);
    }), { numRuns: 300 });
  });

  it('a node joining changes only its own entries', () => {
    const previous = [entry(0, 1, 1), entry(1, 1, 0), entry(0, 2, 1)];
    const known = new Map(previous.map((e) => [entryId(e), e]));
    const joined = entry(1, 3, 0);
    expect(diffSince(new Set(previous), [...previous, joined], known)).toEqual([{ op: 'add', entry: joined }]);
  });
});
