/**
 * What each case of the anti-spoofing probe sends: who sends it, where it is looked for, the frame (as a description
 * the report keeps, and as bytes carrying the case's marker), and who answers when it arrives. The order here is the
 * order the cases run in; the matrix shows them in {@link CASES} order.
 */
import { ADDR } from '../testbed/topology.js';
import {
  buildArp, buildNeighborAdvert, buildRouterAdvert, buildUdp6Frame, buildUdpFrame, ip6MulticastMac, linkLocal6, macBytes,
  ND_OPT_EXPERIMENT, ND_OPT_SOURCE_LLADDR, ND_OPT_TARGET_LLADDR, ndOption, vnetHdr,
} from '../testbed/frames.js';
import type { CaseId, CaseResult } from './schema.js';

/** Addresses nobody in the testbed owns: the forged sources, the unknown unicast destination. */
export const FORGED = {
  mac: '02:00:00:66:66:01',
  ip: '10.77.0.66',
  ip6: 'fd00:77::66',
  unknownMac: '02:00:00:66:66:99',
  unknownIp: '10.77.0.99',
} as const;

export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
export const BROADCAST_IP = '10.77.0.255';
/** All IPv6 nodes on the link: where unsolicited neighbour and router advertisements go. */
const ALL_NODES6 = 'ff02::1';
/** UDP ports of every probe frame (either direction). */
const PROBE_PORT = 7099;

/** A frame of the probe, as the report records it (see `CaseResultSchema.frame`). */
export type ProbeFrame = CaseResult['frame'] & { kind: NonNullable<CaseResult['frame']['kind']> };

/** A party of the testbed. */
export type Party = 'guest-a' | 'guest-b' | 'peer';

/** One case: who sends what to whom, and who replies (to the claimed source) when it arrives. */
export interface CaseSpec {
  id: CaseId;
  from: Party;
  target: Party;
  frame: ProbeFrame;
  replyFrom: Party | null;
}

/** Who is who in one testbed. */
export interface Identities {
  a: { mac: string; ip: string; ip6: string };
  b: { mac: string; ip: string; ip6: string };
  peer: { mac: string; ip: string; ip6: string };
}

/** The IPv6 addresses the probe gives guest A, guest B and the peer. */
export const IP6 = { a: ADDR.guestIp6, b: ADDR.guest2Ip6, peer: ADDR.peerIp6 } as const;

/** A UDP frame description between two (MAC, IP) ends, IPv4 or IPv6 by `kind`. */
export function udp(kind: 'udp' | 'udp6', srcMac: string, srcIp: string, dstMac: string, dstIp: string): ProbeFrame {
  return { kind, srcMac, srcIp, dstMac, dstIp };
}

/**
 * The cases in the order they run: `stolen-mac` last, because it moves B's MAC to A's port in a learning switch, and
 * a switch may keep forwarding by that for a while after B announces itself again.
 */
export function caseSpecs({ a, b, peer }: Identities): CaseSpec[] {
  const toPeer = (kind: 'udp' | 'udp6', srcMac: string, srcIp: string): ProbeFrame =>
    udp(kind, srcMac, srcIp, peer.mac, kind === 'udp' ? peer.ip : peer.ip6);
  const garp = (ip: string, lladdr: string): ProbeFrame => ({ kind: 'arp', srcMac: a.mac, dstMac: BROADCAST_MAC, srcIp: ip, dstIp: ip, lladdr });
  const na = (target: string, lladdr: string): ProbeFrame => ({
    kind: 'nd-na', srcMac: a.mac, dstMac: ip6MulticastMac(ALL_NODES6), srcIp: a.ip6, dstIp: ALL_NODES6, target, lladdr,
  });
  const fromA = (id: CaseId, frame: ProbeFrame, replyFrom: Party | null = 'peer'): CaseSpec => ({ id, from: 'guest-a', target: 'peer', frame, replyFrom });
  const peerToA = (id: CaseId, dstMac: string, dstIp: string): CaseSpec => ({
    id, from: 'peer', target: 'guest-a', frame: udp('udp', peer.mac, peer.ip, dstMac, dstIp), replyFrom: null,
  });
  return [
    fromA('legitimate', toPeer('udp', a.mac, a.ip)),
    fromA('forged-mac', toPeer('udp', FORGED.mac, a.ip)),
    fromA('forged-ip', toPeer('udp', a.mac, FORGED.ip)),
    { id: 'to-guest', from: 'guest-a', target: 'guest-b', frame: udp('udp', a.mac, a.ip, b.mac, b.ip), replyFrom: 'guest-b' },
    { id: 'guest-bcast', from: 'guest-a', target: 'guest-b', frame: udp('udp', a.mac, a.ip, BROADCAST_MAC, BROADCAST_IP), replyFrom: null },
    peerToA('snoop-guest', b.mac, b.ip),
    peerToA('snoop-unknown', FORGED.unknownMac, FORGED.unknownIp),
    peerToA('promisc-guest', b.mac, b.ip),
    peerToA('promisc-unknown', FORGED.unknownMac, FORGED.unknownIp),
    fromA('legitimate6', toPeer('udp6', a.mac, a.ip6)),
    fromA('forged-ip6', toPeer('udp6', a.mac, FORGED.ip6)),
    fromA('arp-legit', garp(a.ip, a.mac), null),
    fromA('arp-forged-ip', garp(peer.ip, a.mac), null),
    fromA('arp-forged-mac', garp(a.ip, FORGED.mac), null),
    fromA('na-legit', na(a.ip6, a.mac), null),
    fromA('na-forged-target', na(peer.ip6, a.mac), null),
    fromA('na-forged-lladdr', na(a.ip6, FORGED.mac), null),
    fromA('router-advert', {
      kind: 'nd-ra', srcMac: a.mac, dstMac: ip6MulticastMac(ALL_NODES6), srcIp: linkLocal6(a.mac), dstIp: ALL_NODES6, lladdr: a.mac,
    }, null),
    fromA('stolen-mac', toPeer('udp', b.mac, a.ip)),
  ];
}

/**
 * The bytes of `f` carrying `marker` (after `vnetHdrSize` zero bytes: a virtio-net header saying "nothing to
 * offload"), padded to the 60-byte Ethernet minimum. Where the marker goes: UDP in the payload; ARP after the body,
 * where Ethernet padding goes; neighbour and router advertisements in an experimental ND option (RFC 4727) after the
 * others, which receivers ignore. The probe matches frames by the marker at layer 2; no host stack has to take them in.
 */
export function probeFrame(f: ProbeFrame, marker: Buffer, vnetHdrSize: 0 | 10 | 12 = 0): Buffer {
  let frame: Buffer;
  switch (f.kind) {
    case 'udp':
      frame = buildUdpFrame({ ...f, srcPort: PROBE_PORT, dstPort: PROBE_PORT, payload: marker, pad: true });
      break;
    case 'udp6':
      frame = buildUdp6Frame({ ...f, srcPort: PROBE_PORT, dstPort: PROBE_PORT, payload: marker });
      break;
    case 'arp':
      // A gratuitous ARP reply: sender and target IP the same, broadcast.
      frame = buildArp({
        op: 2, srcMac: f.srcMac, dstMac: f.dstMac, senderMac: f.lladdr!, senderIp: f.srcIp, targetMac: BROADCAST_MAC,
        targetIp: f.dstIp, trailer: marker,
      });
      break;
    case 'nd-na':
      frame = buildNeighborAdvert({
        ...f, target: f.target!, flags: { override: true },
        options: [ndOption(ND_OPT_TARGET_LLADDR, macBytes(f.lladdr!)), ndOption(ND_OPT_EXPERIMENT, marker)],
      });
      break;
    case 'nd-ra':
      frame = buildRouterAdvert({
        ...f, lifetime: 1800,
        options: [ndOption(ND_OPT_SOURCE_LLADDR, macBytes(f.lladdr!)), ndOption(ND_OPT_EXPERIMENT, marker)],
      });
      break;
  }
  return vnetHdrSize ? Buffer.concat([vnetHdr(vnetHdrSize), frame]) : frame;
}
