// doctor's judgement without a kernel: the faults the e2e suite cannot inject cheaply.
import { describe, expect, it } from 'vitest';
import { diagnose, formatResults, type DoctorFacts } from '../../agent/doctor/checks.ts';
import type { EndpointPlan } from '../../agent/plan-types.ts';

const plan: EndpointPlan = {
  overlay: {
    vxlan: { name: 'chorus-4096', vni: 4096, port: 4789, local: '10.0.0.5', mtu: 1450, mac: '02:c4:c6:12:10:05' },
    addresses: ['198.18.16.5/20'], fdb: [{ mac: '02:c4:c6:12:10:01', dst: '10.0.0.10' }], neighbours: [{ ip: '198.18.16.1', mac: '02:c4:c6:12:10:01' }], routes: [],
  },
  firewall: { vxlanDevice: 'chorus-4096', port: 4789, vni: 4096, underlayDevice: 'eth0', allowedVTEPs: ['10.0.0.10'], deviceOverlayIPs: ['198.18.16.1'], podCIDRs: ['10.244.5.0/24'] },
};
const healthy: DoctorFacts = {
  node: 'n5', plan, firewallEnabled: true,
  observed: { vxlan: { ...plan.overlay.vxlan, index: 7, kind: 'vxlan', learning: false, up: true }, addresses: ['198.18.16.5/20'], fdb: plan.overlay.fdb, neighbours: [{ ...plan.overlay.neighbours[0]!, permanent: true }], routes: [] },
  firewallListing: 'elements = { 10.0.0.10 }\nudp dport 4789 @th,96,24 0x1000 iifname != "eth0" counter drop\nudp dport 4789 @th,96,24 0x1000 ip saddr != @allowed-vteps counter drop\noifname "chorus-4096" ip saddr 10.244.5.0/24 snat to 10.244.5.0/24',
  rpFilter: { all: '0', dev: '2' }, ipForward: '1', ping: { sent: 3, received: 3, target: '198.18.16.1' }, agent: { ok: true, detail: 'ready', url: 'http://127.0.0.1:9641/readyz' },
};
const failures = (f: DoctorFacts): string[] => diagnose(f).filter((r) => !r.ok).map((r) => r.check);

describe('doctor checks', () => {
  it('passes a healthy node', () => {
    expect(failures(healthy)).toEqual([]);
  });

  it('names a VXLAN port and VNI clash with its own check and fix, not as missing inputs', () => {
    const r = diagnose({ ...healthy, plan: { error: 'VXLAN device vxlan.calico ... already uses VNI 4096 on UDP port 4789', check: 'VXLAN port and VNI', fix: 'give chorus-kube-router another VNI' } });
    expect(r.filter((x) => !x.ok).map((x) => [x.check, x.fix])).toEqual([['VXLAN port and VNI', 'give chorus-kube-router another VNI']]);
  });

  it('names strict rp_filter and ip_forward off, with the sysctl that fixes each', () => {
    const r = diagnose({ ...healthy, rpFilter: { all: '1', dev: '0' }, ipForward: '0' });
    expect(r.filter((x) => !x.ok).map((x) => [x.check, x.fix])).toEqual([
      ['rp_filter', expect.stringContaining('sysctl -w net.ipv4.conf.chorus-4096.rp_filter=2')],
      ['ip_forward', expect.stringContaining('sysctl -w net.ipv4.ip_forward=1')],
    ]);
  });

  it('says why it cannot judge when the inputs are missing, and still checks the agent', () => {
    const r = diagnose({ ...healthy, plan: { error: 'Node n5 not found in the API' }, agent: { ok: false, detail: 'no answer', url: 'u' } });
    expect(r.map((x) => `${x.ok ? 'PASS' : 'FAIL'} ${x.check}`)).toEqual(['FAIL inputs', 'FAIL agent']);
    expect(formatResults(r)).toMatch(/FAIL {2}inputs +cannot tell what node n5's overlay should be: Node n5 not found in the API\n {6}fix: /);
  });

  it('names a missing table, a missing VTEP and a wrong device', () => {
    expect(failures({ ...healthy, firewallListing: undefined })).toEqual(['firewall']);
    expect(diagnose({ ...healthy, firewallListing: healthy.firewallListing?.replace('10.0.0.10', '10.0.0.11') }).find((x) => x.check === 'firewall')?.detail).toMatch(/device VTEP 10\.0\.0\.10 in set allowed-vteps/);
    const wrong = diagnose({ ...healthy, observed: { ...healthy.observed, vxlan: { ...healthy.observed.vxlan!, vni: 7 } } });
    expect(wrong.find((x) => x.check === 'overlay device')?.detail).toMatch(/does not match \(vni: 7 vs 4096\)/);
  });
});
