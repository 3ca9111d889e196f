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
    [{ schemaVersion: '2' }, /schemaVersion "2" is not supported/],
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
