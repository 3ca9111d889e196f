import { describe, expect, it } from 'vitest';
import { decodeHubInfo, decodePeer, encodeHubInfo, encodePeer } from '../../shared/tables.ts';
import { macFromOverlayIP } from '../../shared/mac.ts';
import { cidrsOverlap, parseCidr, parseIPv4, formatIPv4, usableHostRange } from '../../shared/ipv4.ts';

const hub = { vni: 4096, port: 4789, overlayNetwork: '198.18.16.0/20', deviceVTEPs: ['198.18.0.3'], deviceOverlayIPs: ['198.18.16.1'] };

describe('published tables', () => {
  it('round-trips hub info and peers', () => {
    expect(decodeHubInfo(encodeHubInfo(hub))).toEqual(hub);
    expect(decodeHubInfo(encodeHubInfo({ ...hub, mtu: 1400 }))).toEqual({ ...hub, mtu: 1400 });
    const peer = { node: 'n1', underlayIP: '198.18.1.1', overlayIP: '198.18.16.2', vtepMAC: '02:c4:c6:12:10:02', podCIDRs: ['198.19.0.0/24'] };
    expect(decodePeer('n1', encodePeer(peer))).toEqual(peer);
  });

  it.each([
    [{ schemaVersion: '3' }, /schemaVersion "3" is not supported \(this build reads "1" and "2"\)/],
    [{ vni: '0' }, /"vni" must be in 1..16777215/],
    [{ port: 'x' }, /"port" must be an integer/],
    [{ deviceVTEPs: '' }, /"deviceVTEPs" is empty/],
    [{ deviceOverlayIPs: '10.0.0.1' }, /outside overlayNetwork/],
    [{ overlayNetwork: '198.18.16.1/20' }, /host bits set/],
  ])('rejects malformed hub info %j with a message naming the field', (change, message) => {
    expect(() => decodeHubInfo({ ...encodeHubInfo(hub), ...change })).toThrow(message);
  });

  it('returns (not throws) an error for a malformed peer entry', () => {
    expect(decodePeer('n1', '{')).toBeInstanceOf(Error);
    expect(decodePeer('n1', JSON.stringify({ underlayIP: '1.2.3', overlayIP: '198.18.16.2', vtepMAC: '02:00:00:00:00:01', podCIDRs: [] }))).toBeInstanceOf(Error);
    expect((decodePeer('n1', JSON.stringify({ underlayIP: '198.18.1.1', overlayIP: '198.18.16.2', vtepMAC: '02:00:00:00:00:01', podCIDRs: ['x'] })) as Error).message).toMatch(/pod CIDR x is invalid/);
  });
});

describe('published tables, schema 2 (dual-stack overlay)', () => {
  const dual = { ...hub, overlayNetworkIPv6: 'fd00:c0::/112', deviceOverlayIPv6s: ['fd00:c0::1'] };
  const peer = { node: 'n1', underlayIP: '198.18.1.1', overlayIP: '198.18.16.2', vtepMAC: '02:c4:c6:12:10:02', podCIDRs: ['198.19.0.0/24'] };

  it('writes schema 1, key for key as before, while there is no IPv6 overlay, and schema 2 with it', () => {
    expect(encodeHubInfo(hub)).toEqual({ schemaVersion: '1', vni: '4096', port: '4789', overlayNetwork: '198.18.16.0/20', deviceVTEPs: '198.18.0.3', deviceOverlayIPs: '198.18.16.1' });
    expect(encodeHubInfo(dual)).toEqual({ ...encodeHubInfo(hub), schemaVersion: '2', overlayNetworkIPv6: 'fd00:c0::/112', deviceOverlayIPv6s: 'fd00:c0::1' });
    expect(decodeHubInfo(encodeHubInfo(dual))).toEqual(dual);
    // an IPv4 peer entry is byte for byte a schema-1 entry; a dual-stack one adds two fields
    expect(encodePeer(peer)).toBe('{"underlayIP":"198.18.1.1","overlayIP":"198.18.16.2","vtepMAC":"02:c4:c6:12:10:02","podCIDRs":["198.19.0.0/24"]}');
    const peer6 = { ...peer, overlayIPv6: 'fd00:c0::2', podCIDRsIPv6: ['fd00:10::/64'] };
    expect(encodePeer(peer6)).toBe('{"underlayIP":"198.18.1.1","overlayIP":"198.18.16.2","vtepMAC":"02:c4:c6:12:10:02","podCIDRs":["198.19.0.0/24"],"overlayIPv6":"fd00:c0::2","podCIDRsIPv6":["fd00:10::/64"]}');
    expect(decodePeer('n1', encodePeer(peer6))).toEqual(peer6);
  });

  it('ignores IPv6 keys in a schema-1 document (a v1 writer never puts them there)', () => {
    expect(decodeHubInfo({ ...encodeHubInfo(hub), overlayNetworkIPv6: 'nonsense' })).toEqual(hub);
  });

  it.each([
    [{ overlayNetworkIPv6: '198.18.32.0/20' }, /"overlayNetworkIPv6" 198.18.32.0\/20 is not an IPv6 network/],
    [{ overlayNetworkIPv6: 'fd00:c0::1/112' }, /"overlayNetworkIPv6" "fd00:c0::1\/112" is not an IPv6 network/],
    [{ deviceOverlayIPv6s: '' }, /"deviceOverlayIPv6s" is empty/],
    [{ deviceOverlayIPv6s: '198.18.16.1' }, /"deviceOverlayIPv6s" has "198.18.16.1", not an IPv6 address/],
    [{ deviceOverlayIPv6s: 'fd00:c0::1,fd00:c0::2' }, /one address per device overlay IP \(1\), got 2/],
    [{ deviceOverlayIPv6s: 'fd00:c1::1' }, /device overlay IPv6 fd00:c1::1 is outside overlayNetworkIPv6 fd00:c0::\/112/],
  ])('rejects malformed schema-2 hub info %j with a message naming the field', (change, message) => {
    expect(() => decodeHubInfo({ ...encodeHubInfo(dual), ...change })).toThrow(message);
  });

  it.each([
    [{ overlayIPv6: 'fd00:c0::2' }, /podCIDRsIPv6 is not a list of strings/],
    [{ podCIDRsIPv6: [] }, /overlayIPv6 undefined is not IPv6/],
    [{ overlayIPv6: '198.18.16.2', podCIDRsIPv6: [] }, /overlayIPv6 "198.18.16.2" is not IPv6/],
    [{ overlayIPv6: 'fd00:c0::2', podCIDRsIPv6: ['198.19.0.0/24'] }, /IPv6 pod CIDR 198.19.0.0\/24 is not IPv6/],
    [{ overlayIPv6: 'fd00:c0::2', podCIDRsIPv6: ['fd00:10::1/64'] }, /IPv6 pod CIDR fd00:10::1\/64 is invalid/],
  ])('returns an error for a peer entry with malformed IPv6 fields %j', (change, message) => {
    const got = decodePeer('n1', JSON.stringify({ ...JSON.parse(encodePeer(peer)), ...change }));
    expect(got).toBeInstanceOf(Error);
    expect((got as Error).message).toMatch(message);
  });
});

describe('published tables, schema 2 (IPv6 underlay)', () => {
  const v6under = { ...hub, deviceVTEPs: ['2001:db8:18::3'] };

  it('writes schema 2 for IPv6 VTEPs (a schema-1 reader refuses the document instead of misreading it), and reads them back canonical; a peer\'s underlay address may be IPv6', () => {
    expect(encodeHubInfo(v6under)).toMatchObject({ schemaVersion: '2', deviceVTEPs: '2001:db8:18::3' });
    expect(decodeHubInfo(encodeHubInfo(v6under))).toEqual(v6under);
    expect(decodeHubInfo({ ...encodeHubInfo(v6under), deviceVTEPs: '2001:DB8:18:0::3' }).deviceVTEPs).toEqual(['2001:db8:18::3']);
    // schema 1 holds IPv4 VTEPs only
    expect(() => decodeHubInfo({ ...encodeHubInfo(v6under), schemaVersion: '1' })).toThrow(/"deviceVTEPs" has "2001:db8:18::3", not an IPv4 address/);
    // one family: a mixed underlay is refused
    expect(() => decodeHubInfo({ ...encodeHubInfo(v6under), deviceVTEPs: '2001:db8:18::3,198.18.0.3' })).toThrow(/"deviceVTEPs" has "198.18.0.3", not an IPv6 address/);
    const peer = { node: 'n1', underlayIP: '2001:db8:18::11', overlayIP: '198.18.16.2', vtepMAC: '02:c4:c6:12:10:02', podCIDRs: ['198.19.0.0/24'] };
    expect(decodePeer('n1', encodePeer(peer))).toEqual(peer);
    expect((decodePeer('n1', encodePeer({ ...peer, underlayIP: '2001:db8:zz::1' })) as Error).message).toMatch(/underlayIP "2001:db8:zz::1" is not an IP address/);
  });
});

describe('address math', () => {
  it('derives a stable locally administered MAC from the overlay IP', () => {
    expect(macFromOverlayIP('198.18.16.2')).toBe('02:c4:c6:12:10:02');
    expect(macFromOverlayIP('10.0.0.255')).toBe('02:c4:0a:00:00:ff');
  });
  it('parses and formats IPv4 and CIDRs', () => {
    expect(formatIPv4(parseIPv4('198.19.255.254'))).toBe('198.19.255.254');
    expect(() => parseIPv4('256.1.1.1')).toThrow(/octet 256/);
    expect(cidrsOverlap(parseCidr('198.18.0.0/15'), parseCidr('198.19.4.0/24'))).toBe(true);
    expect(cidrsOverlap(parseCidr('198.18.0.0/16'), parseCidr('198.19.4.0/24'))).toBe(false);
    expect(usableHostRange(parseCidr('198.18.0.0/30')).count).toBe(2);
    expect(usableHostRange(parseCidr('198.18.0.0/31')).count).toBe(2);
  });
});
