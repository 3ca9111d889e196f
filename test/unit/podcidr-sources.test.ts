import { describe, expect, it } from 'vitest';
import type { V1Node } from '@kubernetes/client-node';
import { detectSource, podCIDRsBySource } from '../../coordinator/podcidr-sources.ts';

const nodes: V1Node[] = [{ metadata: { name: 'n1' }, spec: { podCIDRs: ['198.19.0.0/24', 'fd00::/64'] } }, { metadata: { name: 'n2' } }];

describe('pod CIDR sources', () => {
  it('reads spec.podCIDRs of both families for the node source, in the Node\'s order; text of neither family is dropped', () => {
    expect([...podCIDRsBySource('node', nodes, [])]).toEqual([['n1', ['198.19.0.0/24', 'fd00::/64']], ['n2', []]]);
    expect(podCIDRsBySource('node', [{ metadata: { name: 'n3' }, spec: { podCIDRs: ['pods', '198.19.1.0/24'] } }], []).get('n3')).toEqual(['198.19.1.0/24']);
  });
  it('collects every confirmed Calico block of a node, ignoring pending and deleted ones', () => {
    const blocks = [
      { spec: { node: 'n1', cidr: '198.19.64.0/26', state: 'confirmed', deleted: 'false' } },
      { spec: { node: 'n1', cidr: '198.19.64.64/26', state: 'confirmed' } },
      { spec: { node: 'n1', cidr: '198.19.65.0/26', state: 'pending' } },
      { spec: { node: 'n2', cidr: '198.19.66.0/26', state: 'confirmed', deleted: 'true' } },
      { spec: { node: 'n1', cidr: 'fd00:c1:0:40::/122', state: 'confirmed' } },
    ];
    expect([...podCIDRsBySource('calico', nodes, blocks)]).toEqual([['n1', ['198.19.64.0/26', '198.19.64.64/26', 'fd00:c1:0:40::/122']], ['n2', []]]);
  });
  it('reads CiliumNode spec.ipam.podCIDRs by node name', () => {
    const cn = [{ metadata: { name: 'n2' }, spec: { ipam: { podCIDRs: ['fd00:9::/64', '198.19.9.0/24'] } } }];
    expect(podCIDRsBySource('cilium', nodes, cn).get('n2')).toEqual(['198.19.9.0/24', 'fd00:9::/64']);
  });
  it('detects the IPAM mode from the API groups the cluster serves', () => {
    expect(detectSource(['apps', 'crd.projectcalico.org'])).toBe('calico');
    expect(detectSource(['cilium.io'])).toBe('cilium');
    expect(detectSource(['apps'])).toBe('node');
  });
});
