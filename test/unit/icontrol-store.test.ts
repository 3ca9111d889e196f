// The iControl emulator's store and request execution: references, uniqueness, immutable fields,
// error shapes, and transactions that apply all or nothing.
import { describe, expect, it } from 'vitest';
import { execute } from '../emulators/icontrol/server.ts';
import { F5Error, IControlStore } from '../emulators/icontrol/store.ts';

const q = new URLSearchParams();
const run = (s: IControlStore, method: string, path: string, body: Record<string, unknown> = {}): Record<string, unknown> => execute(s, method, path, q, body);
const failure = (f: () => unknown): F5Error => {
  try {
    f();
  } catch (err) {
    if (err instanceof F5Error) return err;
    throw err;
  }
  throw new Error('expected an F5Error');
};

function withTunnel(): IControlStore {
  const s = new IControlStore();
  run(s, 'POST', '/mgmt/tm/net/tunnels/vxlan', { name: 'p', partition: 'Common', port: 4789, floodingType: 'none' });
  run(s, 'POST', '/mgmt/tm/net/tunnels/tunnel', { name: 't', partition: 'Common', key: 7, localAddress: '198.18.0.3', profile: '/Common/p' });
  return s;
}

describe('iControl emulator store', () => {
  it('answers 409 and 404 with the device messages', () => {
    const s = withTunnel();
    const dup = failure(() => run(s, 'POST', '/mgmt/tm/net/tunnels/tunnel', { name: 't', partition: 'Common', key: 8, profile: '/Common/p' }));
    expect(dup.status).toBe(409);
    expect(dup.body()).toEqual({ code: 409, message: '01020066:3: The requested tunnel (/Common/t) already exists in partition Common.', errorStack: [], apiError: 3 });
    const gone = failure(() => run(s, 'DELETE', '/mgmt/tm/net/route/~Common~nope'));
    expect(gone.status).toBe(404);
    expect(gone.message).toBe('01020036:3: The requested route (/Common/nope) was not found.');
    expect(failure(() => run(s, 'GET', '/mgmt/tm/net/nothing')).message).toMatch(/URI path \/mgmt\/tm\/net\/nothing not registered/);
  });

  it('refuses a second tunnel with the same VNI, a missing profile, and deletes that would break references', () => {
    const s = withTunnel();
    expect(failure(() => run(s, 'POST', '/mgmt/tm/net/tunnels/tunnel', { name: 'u', key: 7, profile: '/Common/p' })).message).toMatch(/^010716ce:3: .*must have a unique VNI/);
    expect(failure(() => run(s, 'POST', '/mgmt/tm/net/tunnels/tunnel', { name: 'u', key: 9, profile: '/Common/none' })).status).toBe(404);
    run(s, 'POST', '/mgmt/tm/net/self', { name: 'self', address: '198.18.16.1/20', vlan: '/Common/t' });
    expect(failure(() => run(s, 'DELETE', '/mgmt/tm/net/tunnels/tunnel/~Common~t')).message).toMatch(/referenced by Self IP/);
    expect(failure(() => run(s, 'DELETE', '/mgmt/tm/net/tunnels/vxlan/~Common~p')).message).toMatch(/referenced by tunnel/);
    expect(failure(() => run(s, 'POST', '/mgmt/tm/net/self', { name: 'self2', address: '198.18.16.9/20', vlan: '/Common/external' })).message).toMatch(/network is defined on two vlans/);
  });

  it('IPv6: self IPs and routes of either family, a route\'s gateway of the route\'s family, static NDP entries at net/ndp (IPv6 only, address immutable)', () => {
    const s = withTunnel();
    run(s, 'POST', '/mgmt/tm/net/self', { name: 's6', partition: 'Common', address: 'fd00:c0::1/64', vlan: '/Common/t' });
    run(s, 'POST', '/mgmt/tm/net/route', { name: 'r6', partition: 'Common', network: 'fd00:19::/64', gw: 'fd00:c0::2' });
    expect(failure(() => run(s, 'POST', '/mgmt/tm/net/route', { name: 'mixed', partition: 'Common', network: 'fd00:20::/64', gw: '198.18.16.2' })).message).toMatch(/not of the network's address family/);
    expect(failure(() => run(s, 'POST', '/mgmt/tm/net/route', { name: 'bad', partition: 'Common', network: 'fd00:zz::/64', gw: 'fd00:c0::2' })).status).toBe(400);
    run(s, 'POST', '/mgmt/tm/net/ndp', { name: 'n6', partition: 'Common', ipAddress: 'fd00:c0::2', macAddress: '02:c4:c6:12:10:02' });
    expect(run(s, 'GET', '/mgmt/tm/net/ndp/~Common~n6')).toMatchObject({ kind: 'tm:net:ndp:ndpstate', ipAddress: 'fd00:c0::2', macAddress: '02:c4:c6:12:10:02' });
    expect(failure(() => run(s, 'POST', '/mgmt/tm/net/ndp', { name: 'n4', partition: 'Common', ipAddress: '198.18.16.2', macAddress: '02:c4:c6:12:10:02' })).message).toMatch(/not an IPv6 address/);
    expect(failure(() => run(s, 'PATCH', '/mgmt/tm/net/ndp/~Common~n6', { ipAddress: 'fd00:c0::9' })).message).toMatch(/cannot be modified/);
    // the same IPv6 network on a second VLAN is refused as for IPv4, whatever the spelling
    run(s, 'POST', '/mgmt/tm/net/tunnels/tunnel', { name: 't2', partition: 'Common', key: 8, localAddress: '198.18.0.3', profile: '/Common/p' });
    expect(failure(() => run(s, 'POST', '/mgmt/tm/net/self', { name: 's6b', partition: 'Common', address: 'FD00:C0:0::9/64', vlan: '/Common/t2' })).message).toMatch(/defined on two vlans/);
  });

  it('IPv6 underlay: a tunnel with an IPv6 local address and FDB records toward IPv6 endpoints (listed with %0)', () => {
    const s = new IControlStore();
    run(s, 'POST', '/mgmt/tm/net/tunnels/vxlan', { name: 'p', partition: 'Common', port: 4789, floodingType: 'none' });
    run(s, 'POST', '/mgmt/tm/net/tunnels/tunnel', { name: 't6', partition: 'Common', key: 9, localAddress: '2001:db8:18::3', profile: '/Common/p' });
    run(s, 'PUT', '/mgmt/tm/net/fdb/tunnel/~Common~t6', { records: [{ name: '02:c4:c6:12:10:02', endpoint: '2001:db8:18::1:1' }] });
    expect([...s.fdbRecords('/Common/t6')]).toEqual([['02:c4:c6:12:10:02', '2001:db8:18::1:1%0']]);
    expect(failure(() => run(s, 'PUT', '/mgmt/tm/net/fdb/tunnel/~Common~t6', { records: [{ name: '02:c4:c6:12:10:02', endpoint: '2001:db8:zz::1' }] })).status).toBe(400);
    expect(failure(() => run(s, 'POST', '/mgmt/tm/net/tunnels/tunnel', { name: 'bad', partition: 'Common', key: 10, localAddress: 'fd00::g', profile: '/Common/p' })).status).toBe(400);
  });

  it('refuses to change an ARP entry\'s address or a route\'s network by update', () => {
    const s = withTunnel();
    run(s, 'POST', '/mgmt/tm/net/arp', { name: 'a', ipAddress: '198.18.16.2', macAddress: '02:00:00:00:00:01' });
    expect(failure(() => run(s, 'PATCH', '/mgmt/tm/net/arp/~Common~a', { ipAddress: '198.18.16.3' })).status).toBe(400);
    expect(run(s, 'PATCH', '/mgmt/tm/net/arp/~Common~a', { macAddress: '02:00:00:00:00:02' })).toMatchObject({ macAddress: '02:00:00:00:00:02' });
  });

  it('keeps FDB records per tunnel with ip%0 endpoints, replaced as a set or one by one; records: null clears them', () => {
    const s = withTunnel();
    const tmos12 = (method: string, path: string, body: Record<string, unknown> = {}): Record<string, unknown> => execute(s, method, path, new URLSearchParams(), body, '12.1.0');
    tmos12('PUT', '/mgmt/tm/net/fdb/tunnel/~Common~t', { records: [{ name: '02:00:00:00:00:01', endpoint: '198.18.1.1' }] });
    tmos12('POST', '/mgmt/tm/net/fdb/tunnel/~Common~t/records', { name: '02:00:00:00:00:02', endpoint: '198.18.1.2' });
    expect(tmos12('GET', '/mgmt/tm/net/fdb/tunnel/~Common~t').records).toEqual([{ name: '02:00:00:00:00:01', endpoint: '198.18.1.1%0' }, { name: '02:00:00:00:00:02', endpoint: '198.18.1.2%0' }]);
    expect(failure(() => tmos12('POST', '/mgmt/tm/net/fdb/tunnel/~Common~t/records', { name: '02:00:00:00:00:02', endpoint: '198.18.1.2' })).status).toBe(409);
    tmos12('DELETE', '/mgmt/tm/net/fdb/tunnel/~Common~t/records/02:00:00:00:00:01');
    tmos12('PUT', '/mgmt/tm/net/fdb/tunnel/~Common~t', { records: null });
    expect(tmos12('GET', '/mgmt/tm/net/fdb/tunnel/~Common~t').records).toBeUndefined();
  });

  it('answers FDB records as TMOS 14+ does: a recordsReference sub-collection, inline only with expandSubcollections=true', () => {
    // TMOS >= 14 (captures in F5's k8s-bigip-ctlr issues; F5's SDK follows recordsReference): `records` is gone from the tunnel
    const s = withTunnel();
    run(s, 'PUT', '/mgmt/tm/net/fdb/tunnel/~Common~t', { records: [{ name: '02:00:00:00:00:01', endpoint: '198.18.1.1' }] });
    const tunnel = run(s, 'GET', '/mgmt/tm/net/fdb/tunnel/~Common~t');
    expect(tunnel.records).toBeUndefined();
    expect(tunnel.recordsReference).toEqual({ link: 'https://localhost/mgmt/tm/net/fdb/tunnel/~Common~t/records?ver=17.1.0', isSubcollection: true });
    const sub = run(s, 'GET', '/mgmt/tm/net/fdb/tunnel/~Common~t/records');
    expect(sub).toMatchObject({ kind: 'tm:net:fdb:tunnel:records:recordscollectionstate' });
    expect(sub.items).toEqual([{ kind: 'tm:net:fdb:tunnel:records:recordsstate', name: '02:00:00:00:00:01', endpoint: '198.18.1.1%0', selfLink: 'https://localhost/mgmt/tm/net/fdb/tunnel/~Common~t/records/02:00:00:00:00:01?ver=17.1.0' }]);
    const expanded = execute(s, 'GET', '/mgmt/tm/net/fdb/tunnel/~Common~t', new URLSearchParams('expandSubcollections=true'), {});
    expect((expanded.records as { name: string }[]).map((r) => r.name)).toEqual(['02:00:00:00:00:01']);
  });

  it('filters lists by partition and picks fields with $select; numbers (key, mtu) come back as numbers, allow-service normalised', () => {
    const s = withTunnel();
    s.partitions.add('k8s');
    run(s, 'POST', '/mgmt/tm/net/tunnels/vxlan', { name: 'p2', partition: 'k8s' });
    const list = execute(s, 'GET', '/mgmt/tm/net/tunnels/tunnel', new URLSearchParams('$filter=partition+eq+Common&$select=name,key'), {});
    expect(list.items).toEqual([{ name: 't', key: 7 }]);
    run(s, 'POST', '/mgmt/tm/net/self', { name: 'self', address: '198.18.16.1/20', vlan: '/Common/t', allowService: ['udp:53', 'tcp:443', 'udp:53'] });
    expect(run(s, 'GET', '/mgmt/tm/net/self/~Common~self').allowService).toEqual(['tcp:443', 'udp:53']);
    const k8s = execute(s, 'GET', '/mgmt/tm/net/tunnels/vxlan', new URLSearchParams('$filter=partition eq k8s&$select=name'), {});
    expect(k8s.items).toEqual([{ name: 'p2' }]);
  });
});
