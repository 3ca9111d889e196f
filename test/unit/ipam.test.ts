import { describe, expect, it } from 'vitest';
import { allocate } from '../../coordinator/ipam.ts';
import { parseCidr } from '../../shared/ipv4.ts';

const network = parseCidr('198.18.16.0/29'); // usable .1-.6

describe('overlay IPAM', () => {
  it('gives the device the first address(es) and nodes the next ones in order', () => {
    const r = allocate({ network, deviceCount: 1, nodes: ['a', 'b'], held: new Map(), shardSize: 1000 });
    expect(r.deviceIPs).toEqual(['198.18.16.1']);
    expect([...r.allocations]).toEqual([['a', '198.18.16.2'], ['b', '198.18.16.3']]);
  });

  it('keeps held addresses stable; a new node takes the next never-used address, not a gap', () => {
    const held = new Map([['b', '198.18.16.5'], ['a', '198.18.16.2']]);
    const r = allocate({ network, deviceCount: 1, nodes: ['a', 'b', 'c'], held, shardSize: 1000 });
    expect(r.allocations.get('a')).toBe('198.18.16.2');
    expect(r.allocations.get('b')).toBe('198.18.16.5');
    // .3 and .4 lie below the highest address handed out, so they may have been used: reused last
    expect(r.allocations.get('c')).toBe('198.18.16.6');
  });

  it('reuses the address of a node that is gone last, after every never-used one', () => {
    // a and b held .2 and .3 once (high-water 2); a is gone
    const held = new Map([['b', '198.18.16.3']]);
    const r = allocate({ network, deviceCount: 1, nodes: ['b', 'c', 'd', 'e', 'f'], held, highWater: new Map([[0, 2]]), shardSize: 1000 });
    expect([...r.allocations]).toEqual([['b', '198.18.16.3'], ['c', '198.18.16.4'], ['d', '198.18.16.5'], ['e', '198.18.16.6'], ['f', '198.18.16.2']]);
    expect(r.highWater.get(0)).toBe(5);
  });

  it('fills shards in order and records each shard\'s high-water mark', () => {
    const big = parseCidr('198.18.16.0/24'); // 254 usable, 253 node addresses
    const nodes = Array.from({ length: 12 }, (_, i) => `n${i}`);
    const r = allocate({ network: big, deviceCount: 1, nodes, held: new Map(), shardSize: 5 });
    expect([...r.highWater]).toEqual([[0, 5], [1, 5], [2, 2]]);
    expect(r.allocations.get('n11')).toBe('198.18.16.13');
    expect(r.capacity).toBe(253);
  });

  it('never gives one address to two nodes, even when the table says so', () => {
    const held = new Map([['a', '198.18.16.2'], ['b', '198.18.16.2']]);
    const r = allocate({ network, deviceCount: 1, nodes: ['a', 'b'], held, shardSize: 1000 });
    expect(r.allocations.get('a')).toBe('198.18.16.2');
    expect(r.allocations.get('b')).toBe('198.18.16.3');
    expect(r.rejected).toEqual([{ node: 'b', ip: '198.18.16.2', reason: 'held by another node too' }]);
  });

  it('re-allocates a held address that is a device address or outside the network', () => {
    const held = new Map([['a', '198.18.16.1'], ['b', '10.0.0.1']]);
    const r = allocate({ network, deviceCount: 1, nodes: ['a', 'b'], held, shardSize: 1000 });
    expect(r.rejected.map((x) => x.reason)).toEqual(['reserved for the device', 'outside the overlay network']);
    expect(new Set(r.allocations.values()).size).toBe(2);
    expect(r.allocations.get('a')).not.toBe('198.18.16.1');
  });

  it('serves the nodes that fit and names the others when the network is exhausted', () => {
    const nodes = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7'];
    const r = allocate({ network, deviceCount: 1, nodes, held: new Map(), shardSize: 1000 });
    expect(r.allocations.size).toBe(5);
    expect(r.unallocated.map((u) => u.node)).toEqual(['n6', 'n7']);
    expect(r.unallocated[0]?.reason).toMatch(/exhausted/);
  });

  it('refuses a network smaller than the device addresses', () => {
    expect(() => allocate({ network: parseCidr('198.18.16.0/30'), deviceCount: 3, nodes: [], held: new Map(), shardSize: 1000 })).toThrow(/fewer than the 3 device/);
  });
});
