import { describe, expect, it } from 'vitest';
import { allocate } from '../../coordinator/ipam.ts';
import { parseCidr } from '../../shared/ipv4.ts';

const network = parseCidr('198.18.16.0/29'); // usable .1-.6

describe('overlay IPAM', () => {
  it('gives the device the first address(es) and nodes the next ones in order', () => {
    const r = allocate({ network, deviceCount: 1, nodes: ['a', 'b'], held: new Map() });
    expect(r.deviceIPs).toEqual(['198.18.16.1']);
    expect([...r.allocations]).toEqual([['a', '198.18.16.2'], ['b', '198.18.16.3']]);
  });

  it('keeps held addresses stable and fills gaps for new nodes', () => {
    const held = new Map([['b', '198.18.16.5'], ['a', '198.18.16.2']]);
    const r = allocate({ network, deviceCount: 1, nodes: ['a', 'b', 'c'], held });
    expect(r.allocations.get('a')).toBe('198.18.16.2');
    expect(r.allocations.get('b')).toBe('198.18.16.5');
    expect(r.allocations.get('c')).toBe('198.18.16.3');
  });

  it('frees the address of a node that is gone', () => {
    const held = new Map([['gone', '198.18.16.2'], ['b', '198.18.16.3']]);
    const r = allocate({ network, deviceCount: 1, nodes: ['b', 'new'], held });
    expect(r.allocations.get('new')).toBe('198.18.16.2');
    expect(r.allocations.has('gone')).toBe(false);
  });

  it('never gives one address to two nodes, even when the table says so', () => {
    const held = new Map([['a', '198.18.16.2'], ['b', '198.18.16.2']]);
    const r = allocate({ network, deviceCount: 1, nodes: ['a', 'b'], held });
    expect(r.allocations.get('a')).toBe('198.18.16.2');
    expect(r.allocations.get('b')).toBe('198.18.16.3');
    expect(r.rejected).toEqual([{ node: 'b', ip: '198.18.16.2', reason: 'held by another node too' }]);
  });

  it('re-allocates a held address that is a device address or outside the network', () => {
    const held = new Map([['a', '198.18.16.1'], ['b', '10.0.0.1']]);
    const r = allocate({ network, deviceCount: 1, nodes: ['a', 'b'], held });
    expect(r.rejected.map((x) => x.reason)).toEqual(['reserved for the device', 'outside the overlay network']);
    expect(new Set(r.allocations.values()).size).toBe(2);
    expect(r.allocations.get('a')).not.toBe('198.18.16.1');
  });

  it('serves the nodes that fit and names the others when the network is exhausted', () => {
    const nodes = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7'];
    const r = allocate({ network, deviceCount: 1, nodes, held: new Map() });
    expect(r.allocations.size).toBe(5);
    expect(r.unallocated.map((u) => u.node)).toEqual(['n6', 'n7']);
    expect(r.unallocated[0]?.reason).toMatch(/exhausted/);
  });

  it('refuses a network smaller than the device addresses', () => {
    expect(() => allocate({ network: parseCidr('198.18.16.0/30'), deviceCount: 3, nodes: [], held: new Map() })).toThrow(/fewer than the 3 device/);
  });
});
